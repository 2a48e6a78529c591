"""Tiny random models with a byte-level BPE tokenizer, built locally (no download).

Registered as built-in models for fast tests: `tiny-random-llama` (`config/tiny_test.json`; 2 layers,
hidden 64), `tiny-random-qwen3` (Qwen3: q/k norms, explicit head_dim) and `tiny-random-gemma3`
(Gemma 3 text: 3 layers with a sliding window of 8 tokens on every layer but every 2nd, local and
global rope bases, scaled embeddings, (1 + w) norms, query pre-attention scaling, GELU MLP, untied
output head), all with a 265-token vocabulary (3 control tokens, the 256 GPT-2 byte symbols,
6 merges) and a ChatML-style chat template. Deterministic for a given seed. They exist to run every
architecture-specific code path (LoRA targets, fuse, forked rollout caches incl. Gemma's rotating
ones, shared-prefix log-probs with sliding-window masks) in the unit tests.
"""

from __future__ import annotations

from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "o r", "he ll", "Ġ w", "Ġw or"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def vocabulary() -> list[str]:
    return SPECIALS + byte_alphabet() + ["".join(m.split(" ")) for m in MERGES]


def tokenizer_metadata() -> dict:
    """GGUF-style tokenizer metadata for the tiny vocabulary (plain Python values)."""
    vocab = vocabulary()
    return {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm", "tokenizer.ggml.tokens": vocab,
        "tokenizer.ggml.merges": MERGES, "tokenizer.ggml.token_type": [3] * len(SPECIALS) + [1] * (len(vocab) - len(SPECIALS)),
        "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.padding_token_id": 2, "tokenizer.chat_template": CHAT_TEMPLATE, "llama.context_length": 1024,
    }


ARCHITECTURES = ("llama", "qwen3", "gemma3_text")
MODEL_NAMES = {"tiny-random-llama": "llama", "tiny-random-qwen3": "qwen3", "tiny-random-gemma3": "gemma3_text"}


def model_config(layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, intermediate: int = 128,
                 arch: str = "llama") -> dict:
    """The tiny model's config.json for one of ARCHITECTURES (mlx-lm model_type)."""
    common = {"hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": intermediate,
              "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": len(vocabulary()),
              "max_position_embeddings": 1024, "bos_token_id": 1, "eos_token_id": 2}
    if arch == "llama":
        return {"model_type": "llama", **common, "rms_norm_eps": 1e-5, "rope_traditional": True,
                "tie_word_embeddings": True, "rope_theta": 10000.0}
    if arch == "qwen3":
        return {"model_type": "qwen3", **common, "head_dim": hidden // heads, "rms_norm_eps": 1e-6,
                "tie_word_embeddings": True, "rope_theta": 1_000_000.0}
    if arch == "gemma3_text":
        return {"model_type": "gemma3_text", **common, "num_hidden_layers": max(layers, 3), "head_dim": hidden // heads,
                "rms_norm_eps": 1e-6, "query_pre_attn_scalar": hidden // heads, "sliding_window": 8,
                "sliding_window_pattern": 2, "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0}
    raise ValueError(f"architecture: expected one of {', '.join(ARCHITECTURES)}, got {arch!r}")


def make_model(seed: int = 0, arch: str = "llama", **dims):
    """A tiny model in memory (random weights from `seed`); `dims` as in `model_config`."""
    import importlib

    import mlx.core as mx

    config = model_config(arch=arch, **dims)
    module = importlib.import_module(f"mlx_lm.models.{config['model_type']}")
    mx.random.seed(seed)
    model = module.Model(module.ModelArgs.from_dict(config))
    if arch == "gemma3_text":  # random (1 + w) norm weights and a visible output head, as a trained model has
        from mlx.utils import tree_flatten, tree_unflatten

        params = [(k, mx.random.normal(v.shape) * 0.1 if k.endswith("norm.weight") else v)
                  for k, v in tree_flatten(model.parameters())]
        model.update(tree_unflatten(params))
    mx.eval(model.parameters())
    return model


def write_tiny_model(out_dir: str | Path, seed: int = 0, arch: str = "llama") -> Path:
    """Create a tiny model directory (atomically)."""
    from mlx.utils import tree_flatten

    from wordle_mlx.model import gguf

    weights = dict(tree_flatten(make_model(seed, arch).parameters()))
    tokenizer, tok_config = gguf.build_tokenizer(tokenizer_metadata())
    return gguf.write_model_dir(out_dir, weights, model_config(arch=arch), tokenizer, tok_config,
                                {"tiny_random_seed": seed})
