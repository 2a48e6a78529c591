"""Memory estimate for a run: what previous projects learned the hard way, as arithmetic.

Components (bytes):
* weights: the model files as stored (quantized tensors count packed; float32 after CPU
  dequantization is 4x the Q4 size).
* LoRA: rank * (in + out) per target module per adapted block, float32; gradients the same
  again; AdamW keeps two more copies (m, v).
* KV caches during rollout: every game x generation row holds keys and values for its whole
  sequence: 2 * layers * kv_heads * head_dim * act_bytes per token, and mlx-lm's KVCache grows in
  steps of 256 tokens, so sequences are rounded up to the next multiple of 256. Each extra
  generation adds one such cache.
* Sampling logits: rows x vocab x 4 bytes, twice (logits and log-probs) per decode step.
* Training activations for one loss chunk of B sequences of L tokens (B = loss_batch_size,
  L = max_prompt_tokens + max_new_tokens), kept for the backward pass through all layers:
    3 * B*L*vocab*4                         logits, log-softmax, their gradient
  + 3 * layers * B*heads*L*L*act            attention scores, probabilities, gradient
  + layers * B*L*(8*hidden + 2*kv_dim + 4*intermediate)*act   per-token block activations
  The constants were checked against `mx.get_peak_memory()` on real LoRA steps (tests: measured
  peak within 0.6-1.4x of the estimate on the CPU backend; Metal's fused attention needs less).

The shared-prompt update (`training.shared_prompt`, the default) keeps, per chunk of B completions
of C tokens after a prompt of P tokens: the prompt's block activations and P x P attention once,
the completions' block activations, their B x C x (P + C) attention, the broadcast prompt
keys/values, and logits at the B x C completion positions only; the sum x 0.8, fitted on real
steps (tests: within 25% of `mx.get_peak_memory()`).

Peaks: rollout = weights + LoRA + KV caches + sampling logits; training = weights + LoRA
(+ grads + AdamW) + activations of one chunk. The run needs the larger of the two.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

from wordle_mlx.config import Config

_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "U32": 4, "I32": 4, "U8": 1, "I8": 1, "BOOL": 1, "F64": 8, "I64": 8, "U16": 2, "I16": 2}
_TARGET_DIMS = {"q": ("hidden", "q_dim"), "k": ("hidden", "kv_dim"), "v": ("hidden", "kv_dim"),
                "o": ("q_dim", "hidden"), "gate": ("hidden", "intermediate"), "up": ("hidden", "intermediate"),
                "down": ("intermediate", "hidden")}
KV_STEP = 256  # mlx-lm KVCache allocation step


@dataclass
class Architecture:
    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    act_bytes: int  # bytes per activation element (4 for float32, 2 for float16/bfloat16)

    @property
    def q_dim(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @classmethod
    def from_config(cls, config: dict, act_bytes: int) -> "Architecture":
        c = config.get("text_config", config)
        heads = c["num_attention_heads"]
        return cls(layers=c["num_hidden_layers"], hidden=c["hidden_size"], intermediate=c["intermediate_size"],
                   heads=heads, kv_heads=c.get("num_key_value_heads", heads),
                   head_dim=c.get("head_dim") or c["hidden_size"] // heads, vocab=c["vocab_size"], act_bytes=act_bytes)


def safetensors_header(path: Path) -> dict:
    """The JSON header of a .safetensors file (tensor name -> dtype, shape, offsets)."""
    with path.open("rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    header.pop("__metadata__", None)
    return header


def read_model_dir(model_dir: str | Path) -> tuple[Architecture, int]:
    """(architecture, weight bytes) of an mlx-lm model directory, without loading the weights."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    weights_bytes, act_bytes = 0, 0
    for f in sorted(model_dir.glob("model*.safetensors")):
        for name, info in safetensors_header(f).items():
            weights_bytes += info["data_offsets"][1] - info["data_offsets"][0]
            # activations take the widest float type of the plain tensors (e.g. float32 norms in a GGUF)
            if info["dtype"] in ("F32", "F16", "BF16") and not name.endswith((".scales", ".biases")):
                act_bytes = max(act_bytes, _DTYPE_BYTES[info["dtype"]])
    return Architecture.from_config(config, act_bytes or 2), weights_bytes


def lora_parameter_count(arch: Architecture, rank: int, targets: list[str], num_layers: int) -> int:
    layers = arch.layers if num_layers < 0 else min(num_layers, arch.layers)
    per_block = 0
    for t in targets:
        if t not in _TARGET_DIMS:
            raise ValueError(f"lora target {t!r}: the estimate knows {', '.join(_TARGET_DIMS)}")
        d_in, d_out = (getattr(arch, d) for d in _TARGET_DIMS[t])
        per_block += rank * (d_in + d_out)
    return per_block * layers


def kv_cache_bytes(arch: Architecture, rows: int, tokens: int) -> int:
    allocated = math.ceil(tokens / KV_STEP) * KV_STEP
    return rows * allocated * 2 * arch.layers * arch.kv_dim * arch.act_bytes


def activation_bytes(arch: Architecture, batch: int, length: int) -> int:
    tokens = batch * length
    logits = 3 * tokens * arch.vocab * 4
    attention = 3 * arch.layers * batch * arch.heads * length * length * arch.act_bytes
    blocks = arch.layers * tokens * (8 * arch.hidden + 2 * arch.kv_dim + 4 * arch.intermediate) * arch.act_bytes
    return logits + attention + blocks


SHARED_FIT = 0.8  # the terms above, scaled to what MLX's CPU backend measured (tests: within 25%)


def shared_prompt_activation_bytes(arch: Architecture, batch: int, prompt: int, completion: int) -> int:
    """One shared-prompt loss chunk (wordle_mlx.train.logprobs): the prompt once as one row, `batch`
    completions of `completion` tokens attending to it, logits at completion positions only."""
    per_token = 8 * arch.hidden + 2 * arch.kv_dim + 4 * arch.intermediate
    rows = batch * completion
    logits = 3 * rows * arch.vocab * 4
    prefix = arch.layers * prompt * per_token * arch.act_bytes + 3 * arch.layers * arch.heads * prompt * prompt * arch.act_bytes
    attention = 3 * arch.layers * batch * arch.heads * completion * (prompt + completion) * arch.act_bytes
    shared_kv = 4 * arch.layers * batch * (prompt + completion) * arch.kv_dim * arch.act_bytes  # broadcast keys/values + grads
    blocks = arch.layers * rows * per_token * arch.act_bytes
    return int(SHARED_FIT * (logits + prefix + attention + shared_kv + blocks))


@dataclass
class MemoryEstimate:
    weights: int
    lora_parameters: int  # count, not bytes
    lora: int
    lora_grads: int
    optimizer: int
    kv_caches: int
    sampling_logits: int
    train_activations: int
    rollout_rows: int
    sequence_tokens: int

    @property
    def rollout_peak(self) -> int:
        return self.weights + self.lora + self.kv_caches + self.sampling_logits

    @property
    def train_peak(self) -> int:
        return self.weights + self.lora + self.lora_grads + self.optimizer + self.train_activations

    @property
    def peak(self) -> int:
        return max(self.rollout_peak, self.train_peak)

    def as_dict(self) -> dict:
        return {**asdict(self), "rollout_peak": self.rollout_peak, "train_peak": self.train_peak, "peak": self.peak}


def estimate(arch: Architecture, weights_bytes: int, config: Config) -> MemoryEstimate:
    """Memory of one GRPO step for `config` on a model with `arch`."""
    s, t, lc = config.sampling, config.training, config.lora
    n_lora = lora_parameter_count(arch, lc.rank, lc.targets, lc.num_layers)
    rows = t.games_per_step * s.num_generations
    length = s.max_prompt_tokens + s.max_new_tokens
    return MemoryEstimate(
        weights=weights_bytes,
        lora_parameters=n_lora,
        lora=4 * n_lora,
        lora_grads=4 * n_lora,
        optimizer=8 * n_lora,
        kv_caches=kv_cache_bytes(arch, rows, length),
        sampling_logits=2 * rows * arch.vocab * 4,
        train_activations=(shared_prompt_activation_bytes(arch, min(t.loss_batch_size, s.num_generations),
                                                          s.max_prompt_tokens, s.max_new_tokens)
                           if t.shared_prompt else activation_bytes(arch, min(t.loss_batch_size, rows), length)),
        rollout_rows=rows,
        sequence_tokens=length,
    )


def read_hub_model(repo_id: str) -> tuple[Architecture, int]:
    """(architecture, weight bytes) of a Hugging Face repo from its config and safetensors headers."""
    from huggingface_hub import get_safetensors_metadata, hf_hub_download

    config = json.loads(Path(hf_hub_download(repo_id, "config.json")).read_text())
    meta = get_safetensors_metadata(repo_id)
    weights_bytes, act_bytes = 0, 0
    for file_meta in meta.files_metadata.values():
        for name, info in file_meta.tensors.items():
            weights_bytes += info.data_offsets[1] - info.data_offsets[0]
            if info.dtype in ("F32", "F16", "BF16") and not name.endswith((".scales", ".biases")):
                act_bytes = max(act_bytes, _DTYPE_BYTES[info.dtype])
    return Architecture.from_config(config, act_bytes or 2), weights_bytes


def estimate_for_config(config: Config) -> tuple[Architecture, MemoryEstimate]:
    """Resolve the config's model (converting a built-in one if needed) and estimate its memory."""
    from wordle_mlx.model import models

    resolved = models.resolve_model_path(config.model.name, config.model.dequantize)
    if Path(resolved).is_dir():
        arch, weights = read_model_dir(resolved)
    else:
        try:
            arch, weights = read_hub_model(resolved)
        except Exception as err:
            raise models.ModelLoadError(f"cannot read {resolved!r} from the Hugging Face hub: {str(err).splitlines()[0]}") from None
    return arch, estimate(arch, weights, config)


def set_limits(limit_gb: float | None) -> None:
    """MLX's memory limit (`training.memory_limit_gb`) and a buffer-cache limit of a quarter of it."""
    import mlx.core as mx

    if limit_gb is None:
        return
    mx.set_memory_limit(int(limit_gb * 2**30))
    mx.set_cache_limit(int(limit_gb * 2**30 / 4))


def usage_gb() -> dict:
    """What MLX holds now: active arrays, the buffer cache, and the peak since the last reset (GiB)."""
    import mlx.core as mx

    return {"active_memory_gb": mx.get_active_memory() / 2**30, "cache_memory_gb": mx.get_cache_memory() / 2**30,
            "peak_memory_gb": mx.get_peak_memory() / 2**30}
