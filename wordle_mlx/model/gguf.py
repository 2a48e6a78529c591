"""Import a GGUF file into an mlx-lm model directory (config.json, model.safetensors, tokenizer).

Weights come from `mx.load(path, return_metadata=True)`, which turns GGUF Q4_0/Q4_1/Q8_0 blocks
into MLX affine-quantized tensors (`weight` packed in uint32, `scales`, `biases`, group size 32).
They stay quantized: bits per tensor are inferred from the shapes (packed columns * 32 / input
dim), so a file that mixes 8-bit embeddings and 4-bit projections (SmolLM2's Q4_1 file) loads as
such, and mlx-lm's loader infers the same per tensor. F16/F32 tensors are kept as they are.
`dequantize="float32"|"bfloat16"|"float16"` expands everything to float instead (for training or
for an exact float reference).

Architecture: llama only (SmolLM2, Llama, and friends). llama.cpp stores q/k projections permuted
for interleaved rotary embeddings, so the config sets `rope_traditional=True` instead of
un-permuting (verified by coherent greedy text in the integration test).

Tokenizer: gpt2-style byte-level BPE rebuilt with `tokenizers` from the metadata (tokens, merges,
token types: type 3 = control tokens become special tokens; bos/eos/unk/pad ids), with the
pre-tokenizer llama.cpp uses for the named `tokenizer.ggml.pre` (digits split one by one for
smollm/starcoder-like vocabularies, then the GPT-2 regex), and the chat template from metadata.
K-quants (Q4_K, Q6_K, ...) are not read by `mx.load`: files of architecture `gemma3` (Gemma 3,
llama.cpp's Q4_K_M mixes Q4_K/Q5_0/Q6_K/Q8_0) go through `wordle_mlx.model.ggml` (numpy reader and
dequantizer) instead: weights dequantized, Gemma's shifted norm weights restored, the `gemma3_text`
config from the metadata, the SentencePiece vocabulary turned into a tokenizer by transformers'
GGUF builders, and Gemma's turn-format chat template when the file has none (the base model).

The output directory is written to a temporary sibling and renamed when complete, so a failure
never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import mlx.core as mx

from wordle_mlx.model import ggml

GROUP_SIZE = 32  # GGUF Q4_0/Q4_1/Q8_0 block size
_LAYER_MAP = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
_TOP_MAP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_DIGIT_SPLIT_PRE = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"}
GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}


class GGUFError(ValueError):
    """A GGUF file that cannot be imported (one clear line)."""


def _scalar(meta: dict, key: str, default=None):
    value = meta.get(key, default)
    if isinstance(value, mx.array):
        value = value.item()
    return value


GGUF_VERSIONS = ggml.VERSIONS


def check_header(path: str | Path) -> int:
    """The GGUF version of `path`; GGUFError unless it starts with the magic `GGUF` and a known version."""
    try:
        return ggml.check_header(path)
    except ggml.GGMLError as err:
        raise GGUFError(str(err)) from None


def read_gguf(path: str | Path) -> tuple[dict[str, mx.array], dict]:
    """(tensors, metadata) of a GGUF file; GGUFError with the reason on failure."""
    path = Path(path)
    check_header(path)
    try:
        return mx.load(str(path), return_metadata=True)
    except Exception as err:  # mlx raises RuntimeError/ValueError with long messages
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GGUFError(f"cannot read GGUF file {path}: {first} (K-quants such as Q4_K are not supported)") from None


def _mlx_name(gguf_name: str) -> str:
    parts = gguf_name.split(".")
    if parts[0] == "blk":
        layer, kind, suffix = parts[1], parts[2], parts[3]
        if kind not in _LAYER_MAP:
            raise GGUFError(f"unexpected tensor {gguf_name!r} for a llama model")
        return f"model.layers.{layer}.{_LAYER_MAP[kind]}.{suffix}"
    if parts[0] not in _TOP_MAP:
        raise GGUFError(f"unexpected tensor {gguf_name!r} for a llama model")
    return f"{_TOP_MAP[parts[0]]}.{parts[1]}"


def quantized_bits(weight: mx.array, scales: mx.array) -> int:
    """Bits of an MLX-quantized tensor from its shapes (group size 32)."""
    in_dim = scales.shape[-1] * GROUP_SIZE
    return weight.shape[-1] * 32 // in_dim


def convert_weights(tensors: dict[str, mx.array], dequantize: str | None = None) -> tuple[dict[str, mx.array], dict]:
    """GGUF tensor names -> mlx-lm llama names; returns (weights, quantization info per module)."""
    if dequantize is not None and dequantize not in _DTYPES:
        raise GGUFError(f"dequantize: expected one of {', '.join(_DTYPES)}, got {dequantize!r}")
    out: dict[str, mx.array] = {}
    bits_per_module: dict[str, int] = {}
    for name, value in tensors.items():
        if name.endswith((".scales", ".biases")):
            continue
        target = _mlx_name(name)
        base = name[: -len(".weight")]
        if f"{base}.scales" in tensors:
            scales, biases = tensors[f"{base}.scales"], tensors[f"{base}.biases"]
            bits = quantized_bits(value, scales)
            module = target[: -len(".weight")]
            if dequantize is None:
                out[target] = value
                out[f"{module}.scales"] = scales
                out[f"{module}.biases"] = biases
                bits_per_module[module] = bits
            else:
                w = mx.dequantize(value, scales, biases, group_size=GROUP_SIZE, bits=bits)
                out[target] = w.astype(_DTYPES[dequantize])
        else:
            out[target] = value.astype(_DTYPES[dequantize]) if dequantize else value
    return out, bits_per_module


def model_config(meta: dict, bits_per_module: dict[str, int], tied: bool) -> dict:
    """mlx-lm config.json for a llama GGUF."""
    arch = _scalar(meta, "general.architecture")
    if arch != "llama":
        raise GGUFError(f"architecture {arch!r} is not supported (llama only)")
    p = "llama."
    n_heads = int(_scalar(meta, p + "attention.head_count"))
    hidden = int(_scalar(meta, p + "embedding_length"))
    config = {
        "model_type": "llama",
        "hidden_size": hidden,
        "num_hidden_layers": int(_scalar(meta, p + "block_count")),
        "intermediate_size": int(_scalar(meta, p + "feed_forward_length")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": int(_scalar(meta, p + "attention.head_count_kv", n_heads)),
        "rms_norm_eps": float(_scalar(meta, p + "attention.layer_norm_rms_epsilon", 1e-5)),
        "vocab_size": len(meta["tokenizer.ggml.tokens"]),
        "rope_theta": float(_scalar(meta, p + "rope.freq_base", 10000.0)),
        "rope_traditional": True,  # GGUF q/k are permuted for interleaved rotary pairs
        "max_position_embeddings": int(_scalar(meta, p + "context_length", 2048)),
        "tie_word_embeddings": tied,
        "head_dim": int(_scalar(meta, p + "rope.dimension_count", hidden // n_heads)),
        "bos_token_id": int(_scalar(meta, "tokenizer.ggml.bos_token_id", 1)),
        "eos_token_id": int(_scalar(meta, "tokenizer.ggml.eos_token_id", 2)),
    }
    if bits_per_module:
        default_bits = max(set(bits_per_module.values()), key=list(bits_per_module.values()).count)
        config["quantization"] = {"group_size": GROUP_SIZE, "bits": default_bits, "mode": "affine"}
        for module, bits in bits_per_module.items():
            if bits != default_bits:
                config["quantization"][module] = {"group_size": GROUP_SIZE, "bits": bits, "mode": "affine"}
    return config


def build_tokenizer(meta: dict):
    """(tokenizers.Tokenizer, tokenizer_config dict) rebuilt from GGUF metadata."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, Regex

    model = _scalar(meta, "tokenizer.ggml.model")
    if model != "gpt2":
        raise GGUFError(f"tokenizer model {model!r} is not supported (gpt2-style BPE only)")
    tokens = list(meta["tokenizer.ggml.tokens"])
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    types = meta.get("tokenizer.ggml.token_type")
    types = [1] * len(tokens) if types is None else [int(t) for t in (types.tolist() if hasattr(types, "tolist") else types)]
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, fuse_unk=False))
    split = pre_tokenizers.Split(Regex(GPT2_REGEX), behavior="isolated")
    stages = [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]
    if _scalar(meta, "tokenizer.ggml.pre") in _DIGIT_SPLIT_PRE:
        stages.insert(0, pre_tokenizers.Digits(individual_digits=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence(stages)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])

    def token(key: str, default: int | None) -> str | None:
        idx = _scalar(meta, key, default)
        return None if idx is None else tokens[int(idx)]

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token("tokenizer.ggml.bos_token_id", None),
        "eos_token": token("tokenizer.ggml.eos_token_id", None),
        "unk_token": token("tokenizer.ggml.unknown_token_id", None),
        "pad_token": token("tokenizer.ggml.padding_token_id", None),
        "add_bos_token": bool(_scalar(meta, "tokenizer.ggml.add_bos_token", False)),
        "model_max_length": int(_scalar(meta, "llama.context_length", 2048)),
        "clean_up_tokenization_spaces": False,
    }
    template = _scalar(meta, "tokenizer.chat_template")
    if template:
        config["chat_template"] = template
    return tok, {k: v for k, v in config.items() if v is not None}


def write_model_dir(out_dir: str | Path, weights: dict[str, mx.array], config: dict, tokenizer, tok_config: dict,
                    source: dict | None = None) -> Path:
    """Write an mlx-lm model directory atomically (a temporary sibling renamed into place)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.partial-"))
    try:
        mx.save_safetensors(str(tmp / "model.safetensors"), weights, metadata={"format": "mlx"})
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        tokenizer.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2) + "\n")
        if source is not None:
            (tmp / "wordle_mlx_source.json").write_text(json.dumps(source, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


# ---- Gemma 3 (llama.cpp's `gemma3` files: K-quants, SentencePiece vocabulary), read with wordle_mlx.model.ggml

_GEMMA3_LAYER_MAP = {
    "attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm", "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
GEMMA3_SLIDING_WINDOW_PATTERN = 6  # every 6th layer global (llama.cpp hard-codes it for gemma3 too)
GEMMA3_LOCAL_ROPE_BASE = 10_000.0
END_OF_TURN = "<end_of_turn>"
# Gemma 3's turn format (the base model's file has no template): a system message is folded into
# the first user turn, as Google's template does.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') + message['content'] | trim "
    "+ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


def _gemma3_name(gguf_name: str) -> str:
    parts = gguf_name.split(".")
    if parts[0] == "blk" and parts[2] in _GEMMA3_LAYER_MAP:
        return f"model.layers.{parts[1]}.{_GEMMA3_LAYER_MAP[parts[2]]}.{parts[3]}"
    if parts[0] in ("token_embd", "output_norm", "output"):
        return f"{_TOP_MAP[parts[0]]}.{parts[1]}"
    raise GGUFError(f"unexpected tensor {gguf_name!r} for a gemma3 model")


def gemma3_config(meta: dict, tied: bool = True) -> dict:
    """mlx-lm `gemma3_text` config.json from llama.cpp's gemma3 metadata."""
    p = "gemma3."
    n_heads = int(meta[p + "attention.head_count"])
    head_dim = int(meta.get(p + "attention.key_length", int(meta[p + "embedding_length"]) // n_heads))
    eos = [int(meta.get("tokenizer.ggml.eos_token_id", 1))]
    if END_OF_TURN in meta["tokenizer.ggml.tokens"]:
        eos.append(meta["tokenizer.ggml.tokens"].index(END_OF_TURN))  # chat turns end here
    return {
        "model_type": "gemma3_text", "hidden_size": int(meta[p + "embedding_length"]),
        "num_hidden_layers": int(meta[p + "block_count"]), "intermediate_size": int(meta[p + "feed_forward_length"]),
        "num_attention_heads": n_heads, "num_key_value_heads": int(meta.get(p + "attention.head_count_kv", n_heads)),
        "head_dim": head_dim, "rms_norm_eps": float(meta.get(p + "attention.layer_norm_rms_epsilon", 1e-6)),
        "vocab_size": len(meta["tokenizer.ggml.tokens"]), "rope_theta": float(meta.get(p + "rope.freq_base", 1e6)),
        "rope_local_base_freq": GEMMA3_LOCAL_ROPE_BASE, "query_pre_attn_scalar": head_dim,
        "sliding_window": int(meta.get(p + "attention.sliding_window", 512)),
        "sliding_window_pattern": GEMMA3_SLIDING_WINDOW_PATTERN,
        "max_position_embeddings": int(meta.get(p + "context_length", 32768)), "rope_scaling": None,
        "tie_word_embeddings": tied, "bos_token_id": int(meta.get("tokenizer.ggml.bos_token_id", 2)),
        "eos_token_id": eos,
    }


def gemma3_weights(f, dtype: str = "float32") -> dict[str, mx.array]:
    """Every tensor dequantized (K-quants have no exact MLX form) to `dtype`, under mlx-lm names.
    llama.cpp stores Gemma's RMSNorm weights as 1 + w (its norm multiplies by the weight itself);
    mlx-lm's Gemma norm computes 1 + w, so 1 is taken off again."""
    out = {}
    for name in f.tensors:
        w = f.tensor(name)
        if name.endswith("norm.weight"):
            w = w - 1.0
        out[_gemma3_name(name)] = mx.array(w).astype(_DTYPES[dtype])
    return out


def sentencepiece_tokenizer(meta: dict, architecture: str):
    """(tokenizers.Tokenizer, tokenizer_config) of a SentencePiece (`llama`-model) GGUF vocabulary,
    built by transformers' GGUF tokenizer builders from the metadata this module read."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer

    fields = {name: meta[f"tokenizer.{key}"] for key, name in GGUF_TOKENIZER_MAPPING["tokenizer"].items()
              if f"tokenizer.{key}" in meta}
    tokenizer, _ = convert_gguf_tokenizer(architecture, fields)
    tokens = meta["tokenizer.ggml.tokens"]
    if meta.get("tokenizer.ggml.add_bos_token", True) and "tokenizer.ggml.bos_token_id" in meta:
        from tokenizers import processors  # the backend alone adds no BOS; Gemma is lost without one

        bos = tokens[int(meta["tokenizer.ggml.bos_token_id"])]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, int(meta["tokenizer.ggml.bos_token_id"]))])

    def token(key: str) -> str | None:
        return tokens[int(meta[key])] if key in meta else None

    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": token("tokenizer.ggml.bos_token_id"),
        "eos_token": token("tokenizer.ggml.eos_token_id"), "unk_token": token("tokenizer.ggml.unknown_token_id"),
        "pad_token": token("tokenizer.ggml.padding_token_id"),
        "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", True)),
        "add_eos_token": bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        "model_max_length": int(meta.get(f"{architecture}.context_length", 2048)),
        "clean_up_tokenization_spaces": False,
        "chat_template": meta.get("tokenizer.chat_template") or GEMMA_CHAT_TEMPLATE,
    }
    return tokenizer, {k: v for k, v in config.items() if v is not None}


def _convert_gemma3(f, out_dir: str | Path, dequantize: str | None) -> Path:
    """`f`: the file as a wordle_mlx.model.ggml.GGUFFile."""
    try:
        weights = gemma3_weights(f, dequantize or "bfloat16")
    except ggml.GGMLError as err:
        raise GGUFError(str(err)) from None
    config = gemma3_config(f.metadata, tied="lm_head.weight" not in weights)
    tokenizer, tok_config = sentencepiece_tokenizer(f.metadata, "gemma3")
    source = {"gguf": str(f.path), "dequantize": dequantize or "bfloat16", "name": f.metadata.get("general.name")}
    return write_model_dir(out_dir, weights, config, tokenizer, tok_config, source)


def convert_gguf(gguf_path: str | Path, out_dir: str | Path, dequantize: str | None = None) -> Path:
    """Write an mlx-lm model directory for a GGUF file (atomically). Returns `out_dir`.
    llama files keep their 4/8-bit blocks (or are dequantized); gemma3 files are dequantized to
    `dequantize` (bfloat16 when None). The file is parsed once by wordle_mlx.model.ggml (it reads K-quant
    files too) to see its architecture."""
    check_header(gguf_path)
    try:
        f = ggml.GGUFFile(gguf_path)
    except ggml.GGMLError as err:
        raise GGUFError(str(err)) from None
    if f.metadata.get("general.architecture") == "gemma3":
        return _convert_gemma3(f, out_dir, dequantize)
    tensors, meta = read_gguf(gguf_path)
    weights, bits = convert_weights(tensors, dequantize)
    config = model_config(meta, bits, tied="lm_head.weight" not in weights)
    tokenizer, tok_config = build_tokenizer(meta)
    source = {"gguf": str(gguf_path), "dequantize": dequantize, "name": _scalar(meta, "general.name")}
    return write_model_dir(out_dir, weights, config, tokenizer, tok_config, source)
