"""Tiny random llama models for fast tests: built in memory, or written as a GGUF file and
converted by wordle_mlx.gguf into an mlx-lm directory (with a small byte-level BPE tokenizer)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models import llama

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["h e", "l l", "o r", "he ll", "Ġ w", "Ġw or"]
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def byte_alphabet() -> list[str]:
    """GPT-2's printable stand-ins for the 256 bytes."""
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


def tiny_args(layers: int = 2, hidden: int = 64, heads: int = 4, kv_heads: int = 2, intermediate: int = 128) -> llama.ModelArgs:
    return llama.ModelArgs(model_type="llama", hidden_size=hidden, num_hidden_layers=layers,
                           intermediate_size=intermediate, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           rms_norm_eps=1e-5, vocab_size=len(vocabulary()), rope_traditional=True,
                           tie_word_embeddings=True, rope_theta=10000.0)


def tiny_model(seed: int = 0, **kwargs) -> llama.Model:
    mx.random.seed(seed)
    model = llama.Model(tiny_args(**kwargs))
    mx.eval(model.parameters())
    return model


_TO_GGUF = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
            "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm",
            "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def gguf_name(name: str) -> str:
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    rest = name[len("model.layers."):]
    layer, inner = rest.split(".", 1)
    module, suffix = inner.rsplit(".", 1)
    return f"blk.{layer}.{_TO_GGUF[module]}.{suffix}"


def write_tiny_gguf(path: Path, model: llama.Model, architecture: str = "llama") -> Path:
    """Write `model` as a float32 GGUF with llama metadata and the tiny tokenizer."""
    args = model.args
    tensors = {gguf_name(k): v.astype(mx.float32) for k, v in tree_flatten(model.parameters())}
    vocab = vocabulary()
    u32 = lambda v: mx.array(v, dtype=mx.uint32)  # noqa: E731
    meta = {
        "general.architecture": architecture,
        "general.name": "tiny-test-llama",
        "llama.block_count": u32(args.num_hidden_layers),
        "llama.embedding_length": u32(args.hidden_size),
        "llama.feed_forward_length": u32(args.intermediate_size),
        "llama.attention.head_count": u32(args.num_attention_heads),
        "llama.attention.head_count_kv": u32(args.num_key_value_heads),
        "llama.attention.layer_norm_rms_epsilon": mx.array(args.rms_norm_eps, dtype=mx.float32),
        "llama.rope.freq_base": mx.array(args.rope_theta, dtype=mx.float32),
        "llama.context_length": u32(512),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": vocab,
        "tokenizer.ggml.merges": MERGES,
        "tokenizer.ggml.token_type": mx.array([3] * len(SPECIALS) + [1] * (len(vocab) - len(SPECIALS)), dtype=mx.int32),
        "tokenizer.ggml.bos_token_id": u32(1),
        "tokenizer.ggml.eos_token_id": u32(2),
        "tokenizer.ggml.unknown_token_id": u32(0),
        "tokenizer.ggml.padding_token_id": u32(2),
        "tokenizer.chat_template": CHAT_TEMPLATE,
    }
    mx.save_gguf(str(path), tensors, meta)
    return path


def tiny_model_dir(tmp: Path, seed: int = 0) -> tuple[Path, llama.Model]:
    """(mlx-lm directory converted from a tiny GGUF, the in-memory model it came from)."""
    from wordle_mlx import gguf

    model = tiny_model(seed)
    src = write_tiny_gguf(Path(tmp) / "tiny.gguf", model)
    return gguf.convert_gguf(src, Path(tmp) / "tiny-mlx"), model
