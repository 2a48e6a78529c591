"""Tiny random llama models for fast tests: built in memory, or written as a GGUF file and
converted by wordle_mlx.model.gguf into an mlx-lm directory (with the tiny byte-level BPE tokenizer)."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.models import llama

from wordle_mlx.model.tiny import MERGES, SPECIALS, tokenizer_metadata, vocabulary  # noqa: F401
from wordle_mlx.model.tiny import make_model as tiny_model  # noqa: F401


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
    u32 = lambda v: mx.array(v, dtype=mx.uint32)  # noqa: E731
    meta = {k: (mx.array(v, dtype=mx.int32) if k.endswith("token_type") else u32(v) if isinstance(v, int) else v)
            for k, v in tokenizer_metadata().items()}
    meta.update({
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
    })
    mx.save_gguf(str(path), tensors, meta)
    return path


def tiny_model_dir(tmp: Path, seed: int = 0) -> tuple[Path, llama.Model]:
    """(mlx-lm directory converted from a tiny GGUF, the in-memory model it came from)."""
    from wordle_mlx.model import gguf

    model = tiny_model(seed)
    src = write_tiny_gguf(Path(tmp) / "tiny.gguf", model)
    return gguf.convert_gguf(src, Path(tmp) / "tiny-mlx"), model
