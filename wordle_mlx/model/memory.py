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

Per backend: the activation terms were fitted on MLX's CPU backend (and hold on Metal). On an
NVIDIA H200 with MLX's CUDA build a tiny 4 x 64 LoRA step peaked 13.6 MB above the CPU-fitted
estimate (20.4 vs 6.8 MB), while SFT at batch 256 (~92 tokens, SmolLM2) peaked at 37.9 GiB, near
what the same terms give (~36 GiB): a fixed workspace, not a factor. `backend_overhead()` adds
it on CUDA; two measured points, so the memory tests check it on every device that runs them.

Auto sizes (`training.loss_batch_size: auto`, `sft.batch_size: auto`): on the CPU the sizes the
benchmarks found best there (8 rows per loss chunk, SFT batches of 16: larger ones do not run
faster on a few cores); on a GPU the most rows (a power of two, at most 256) whose activations fit
in half of the memory left after weights, LoRA, its gradients and AdamW (the device's memory, or
`training.memory_limit_gb`).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

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
    return int(logits + attention + blocks) + backend_overhead()


SHARED_FIT = 0.8  # the terms above, scaled to what MLX's CPU backend measured (tests: within 25%)
CPU_LOSS_BATCH = 8  # auto on the CPU: rows per loss chunk (benchmark update: more rows are not faster there)
CPU_SFT_BATCH = 16  # auto on the CPU: the recipe's SFT batch
AUTO_MAX_ROWS = 256
ACTIVATION_SHARE = 0.5  # of the memory left after weights and LoRA state, for one chunk's activations


def backend() -> str:
    """'cuda', 'metal' or 'cpu': where the default device runs."""
    import mlx.core as mx

    if mx.default_device() != mx.gpu:
        return "cpu"
    return "metal" if mx.metal.is_available() else "cuda"


CUDA_OVERHEAD = int(13.6 * 2**20)


def backend_overhead(name: str | None = None) -> int:
    """Bytes a training step holds on this backend beyond the CPU-fitted terms (module docstring)."""
    return CUDA_OVERHEAD if (name or backend()) == "cuda" else 0


def shared_prompt_activation_bytes(arch: Architecture, batch: int, prompt: int, completion: int, groups: int = 1) -> int:
    """One shared-prompt loss chunk (wordle_mlx.train.logprobs): the prompt once as one row, `batch`
    completions of `completion` tokens attending to it, logits at completion positions only. With
    `groups` > 1 (packed chunks) each group's prompt part counts as a whole prompt more (an upper bound)."""
    per_token = 8 * arch.hidden + 2 * arch.kv_dim + 4 * arch.intermediate
    rows = batch * completion
    logits = 3 * rows * arch.vocab * 4
    prefix = groups * (arch.layers * prompt * per_token * arch.act_bytes
                       + 3 * arch.layers * arch.heads * prompt * prompt * arch.act_bytes)
    attention = 3 * arch.layers * batch * arch.heads * completion * (prompt + completion) * arch.act_bytes
    shared_kv = 4 * arch.layers * batch * (prompt + completion) * arch.kv_dim * arch.act_bytes  # broadcast keys/values + grads
    blocks = arch.layers * rows * per_token * arch.act_bytes
    return int(SHARED_FIT * (logits + prefix + attention + shared_kv + blocks)) + backend_overhead()


def device_memory_bytes(limit_gb: float | None = None) -> int:
    """Memory a run may use: `limit_gb` if given, else the GPU's (recommended working set on Metal,
    total on CUDA), else the machine's RAM."""
    import os

    import mlx.core as mx

    if limit_gb is not None:
        return int(limit_gb * 2**30)
    if backend() != "cpu":
        info = mx.device_info()
        for key in ("max_recommended_working_set_size", "total_memory", "memory_size"):
            if isinstance(info.get(key), int) and info[key] > 0:
                return int(info[key])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _largest_fitting(bytes_for_rows: Callable[[int], int], free_bytes: int) -> int:
    """The most rows (a power of two up to AUTO_MAX_ROWS, at least 1) whose bytes fit ACTIVATION_SHARE of free_bytes."""
    rows = AUTO_MAX_ROWS
    while rows > 1 and bytes_for_rows(rows) > ACTIVATION_SHARE * free_bytes:
        rows //= 2
    return rows


def auto_loss_batch_size(arch: Architecture, prompt: int, completion: int, group_size: int, free_bytes: int) -> int:
    """Rows per GRPO loss chunk on a GPU for `training.loss_batch_size: auto` (groups packed: module docstring)."""
    return _largest_fitting(lambda rows: shared_prompt_activation_bytes(
        arch, rows, prompt, completion, groups=-(-rows // max(group_size, 1))), free_bytes)


def sft_activation_bytes(arch: Architecture, batch: int, length: int, completion: int) -> int:
    """One SFT batch of `batch` examples of `length` tokens, logits at `completion` positions per row only
    (the completion-only loss)."""
    return activation_bytes(arch, batch, length) - 3 * batch * (length - completion) * arch.vocab * 4


def auto_sft_batch_size(arch: Architecture, length: int, completion: int, free_bytes: int) -> int:
    """Examples per SFT batch on a GPU for `sft.batch_size: auto`."""
    return _largest_fitting(lambda rows: sft_activation_bytes(arch, rows, length, completion), free_bytes)


def resolve_rows(value: int | str, cpu_rows: int, gpu_rows: Callable[[], int]) -> int:
    """A batch-size setting as a number: the setting itself, or for "auto" `cpu_rows` on the CPU and
    `gpu_rows()` (sized by memory, computed only then) on a GPU."""
    if value != "auto":
        return int(value)
    return cpu_rows if backend() == "cpu" else gpu_rows()


def loaded_model_sizes(model, limit_gb: float | None = None) -> tuple[Architecture, int]:
    """(architecture from a loaded mlx-lm model's args, activations in its widest float; bytes free for
    activations: the device's memory or `limit_gb`, less its weights, LoRA, LoRA gradients and AdamW)."""
    import mlx.core as mx
    from mlx.utils import tree_flatten

    params = tree_flatten(model.parameters())
    widths = [v.dtype.size for _, v in params if v.dtype in (mx.float32, mx.float16, mx.bfloat16)]
    arch = Architecture.from_config(dict(vars(model.args)), max(widths, default=4))
    lora = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    return arch, free_bytes(sum(v.nbytes for _, v in params), lora, limit_gb)


def free_bytes(weights_bytes: int, lora_parameters: int, limit_gb: float | None = None) -> int:
    """Memory left for activations: the device's (or the limit) minus weights, LoRA, its gradients and AdamW."""
    return max(device_memory_bytes(limit_gb) - weights_bytes - 16 * lora_parameters, 0)


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
    loss_batch_size: int = 0  # rows per loss chunk (the config's, or auto for this device)

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
    chunk = resolve_rows(t.loss_batch_size, CPU_LOSS_BATCH, lambda: auto_loss_batch_size(
        arch, s.max_prompt_tokens, s.max_new_tokens, s.num_generations,
        free_bytes(weights_bytes, n_lora, t.memory_limit_gb)))
    return MemoryEstimate(
        weights=weights_bytes,
        lora_parameters=n_lora,
        lora=4 * n_lora,
        lora_grads=4 * n_lora,
        optimizer=8 * n_lora,
        kv_caches=kv_cache_bytes(arch, rows, length),
        sampling_logits=2 * rows * arch.vocab * 4,
        train_activations=(shared_prompt_activation_bytes(arch, min(chunk, rows), s.max_prompt_tokens,
                                                          s.max_new_tokens, groups=-(-min(chunk, rows) // s.num_generations))
                           if t.shared_prompt else activation_bytes(arch, min(chunk, rows), length)),
        loss_batch_size=chunk,
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
