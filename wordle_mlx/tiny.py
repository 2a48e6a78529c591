"""A tiny random llama model with a byte-level BPE tokenizer, built locally (no download).

Registered as the built-in model `tiny-random-llama` for fast tests and `config/tiny_test.json`:
2 layers, hidden 64, 265-token vocabulary (3 control tokens, the 256 GPT-2 byte symbols, 6 merges),
ChatML-style chat template. Deterministic for a given seed.
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


def model_config(layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, intermediate: int = 128) -> dict:
    return {"model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": intermediate,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads, "rms_norm_eps": 1e-5,
            "vocab_size": len(vocabulary()), "rope_traditional": True, "tie_word_embeddings": True, "rope_theta": 10000.0,
            "max_position_embeddings": 1024, "bos_token_id": 1, "eos_token_id": 2}


def make_model(seed: int = 0, **dims):
    """The tiny llama model in memory (random weights from `seed`); `dims` as in `model_config`."""
    import mlx.core as mx
    from mlx_lm.models import llama

    mx.random.seed(seed)
    model = llama.Model(llama.ModelArgs.from_dict(model_config(**dims)))
    mx.eval(model.parameters())
    return model


def write_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Create the tiny model directory (atomically)."""
    from mlx.utils import tree_flatten

    from wordle_mlx import gguf

    weights = dict(tree_flatten(make_model(seed).parameters()))
    tokenizer, tok_config = gguf.build_tokenizer(tokenizer_metadata())
    return gguf.write_model_dir(out_dir, weights, model_config(), tokenizer, tok_config, {"tiny_random_seed": seed})
