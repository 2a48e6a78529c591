"""LoRA adapters with mlx-lm's own layers and file format, a zero-copy reference policy, fusing.

* `apply_lora(model, settings)`: freezes the base and swaps the target projections of the last
  `num_layers` blocks for `mlx_lm.tuner.lora.LoRALinear` (works on float and quantized bases:
  QLoRA). `scale` is alpha / rank unless given directly.
* `save_adapters` / `load_adapters`: `adapters.safetensors` + `adapter_config.json` with
  `fine_tune_type`, `num_layers` and `lora_parameters`, exactly what `mlx_lm.generate
  --adapter-path` reads.
* `adapters_disabled(model)`: a context manager that sets every LoRA scale to 0 and restores
  it; `adapters_swapped(model, weights)`: runs with other LoRA weights (by reference) and restores
  the current ones. The KL reference policy is the same model either way, never a second copy.
* `average_adapters(sources, out)`: one adapter whose weight update is exactly the mean of the
  sources' updates (kept checkpoints of one run): mean_k A_k B_k = [A_1 .. A_K] [B_1; ..; B_K] / K,
  a LoRA of rank sum_k r_k. Averaging the factors instead (mean A times mean B) is not the mean
  of the players; the gap is reported.
* `update_distances(paths)`: how far adapters' weight updates lie apart (relative to the first's), from
  their Gram matrix (`update_gram`, computed from the factors); `increment_cosines`: whether
  successive checkpoints keep a direction.
* `fuse_adapters(model, dequantize)`: merges W + scale * B^T A^T into plain linears (mlx-lm's
  `fuse`); on a quantized base, fused weights are re-quantized unless `dequantize=True`.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

TARGET_MODULES = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
}
DEFAULT_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")
ADAPTER_WEIGHTS = "adapters.safetensors"
ADAPTER_CONFIG = "adapter_config.json"


@dataclass
class LoraSettings:
    """rank, alpha (scale = alpha / rank unless `scale` is set), dropout, layers (-1 = all), targets."""

    rank: int = 16
    alpha: float = 32.0
    scale: float | None = None
    dropout: float = 0.0
    num_layers: int = -1
    targets: tuple[str, ...] = field(default_factory=lambda: DEFAULT_TARGETS)

    @property
    def effective_scale(self) -> float:
        return self.scale if self.scale is not None else self.alpha / self.rank

    def module_keys(self) -> list[str]:
        """Module paths inside a transformer block (short names mapped, dotted paths kept)."""
        keys = []
        for t in self.targets:
            if t in TARGET_MODULES:
                keys.append(TARGET_MODULES[t])
            elif "." in t:
                keys.append(t)
            else:
                raise ValueError(f"lora target {t!r}: expected one of {', '.join(TARGET_MODULES)} or a module path")
        return keys


def _layers(model: nn.Module) -> list:
    layers = getattr(model, "layers", None)
    if layers is None:
        raise ValueError("model has no .layers: not an mlx-lm transformer")
    return layers


def lora_parameters(model: nn.Module, settings: LoraSettings) -> tuple[int, dict]:
    """(num_layers, lora_parameters) as mlx-lm's adapter_config.json stores them."""
    n = len(_layers(model)) if settings.num_layers < 0 else min(settings.num_layers, len(_layers(model)))
    return n, {"rank": settings.rank, "scale": settings.effective_scale, "dropout": settings.dropout,
               "keys": settings.module_keys()}


def apply_lora(model: nn.Module, settings: LoraSettings) -> nn.Module:
    """Freeze the base and add LoRA layers (in place). Returns the model."""
    from mlx_lm.tuner.utils import linear_to_lora_layers

    num_layers, params = lora_parameters(model, settings)
    missing = [k for k in params["keys"] if not any(name == k for name, _ in _layers(model)[-1].named_modules())]
    if missing:
        raise ValueError(f"lora targets not found in the model's blocks: {', '.join(missing)}")
    model.freeze()
    linear_to_lora_layers(model, num_layers, params)
    model.lora_settings = settings  # remembered for save_adapters
    return model


def lora_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if hasattr(m, "lora_a") and hasattr(m, "scale")]


def save_adapters(model: nn.Module, path: str | Path, settings: LoraSettings | None = None) -> Path:
    """Write adapters.safetensors + adapter_config.json (mlx-lm format) into `path`; `model` in the config
    names the base model the adapters were trained on (`model.base_model`, when the trainer set it)."""
    settings = settings or getattr(model, "lora_settings", None)
    if settings is None:
        raise ValueError("save_adapters: no LoRA settings (apply_lora first or pass settings)")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    weights = dict(tree_flatten(model.trainable_parameters()))
    if not weights:
        raise ValueError("save_adapters: the model has no trainable (LoRA) parameters")
    num_layers, params = lora_parameters(model, settings)
    tmp = path / (ADAPTER_WEIGHTS + ".tmp.safetensors")
    mx.save_safetensors(str(tmp), weights)
    tmp.replace(path / ADAPTER_WEIGHTS)
    config = {"fine_tune_type": "lora", "num_layers": num_layers, "lora_parameters": params,
              "wordle_mlx": {"lora": {**asdict(settings), "targets": list(settings.targets)}}}
    if getattr(model, "base_model", None):
        config = {"model": model.base_model, **config}
    (path / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return path


def _require_adapter(path: Path) -> None:
    """FileNotFoundError naming `path` unless it holds an adapter config and weights."""
    if not (path / ADAPTER_CONFIG).exists() or not (path / ADAPTER_WEIGHTS).exists():
        raise FileNotFoundError(f"adapter: {path} needs {ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}")


def export_adapters(src: str | Path, out: str | Path, dtype: str = "float16", answer_settings: dict | None = None,
                    base_model: str | None = None, training_minutes: float | None = None) -> Path:
    """Copy trained adapters (mlx-lm format) to `out` with the weights cast to `dtype` (float16 halves
    the file) and the prompt format / think layout they were trained with stored in
    adapter_config.json (`wordle_mlx.sampling`), so a shipped adapter directory stands alone; the
    training minutes behind them, when known, go to `wordle_mlx.training_minutes`."""
    src, out = Path(src), Path(out)
    _require_adapter(src)
    if dtype not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"dtype: expected float16, bfloat16 or float32, got {dtype!r}")
    weights = {k: v.astype(getattr(mx, dtype)) for k, v in mx.load(str(src / ADAPTER_WEIGHTS)).items()}
    config = json.loads((src / ADAPTER_CONFIG).read_text())
    if base_model and "model" not in config:
        config = {"model": base_model, **config}
    if answer_settings:
        config.setdefault("wordle_mlx", {})["sampling"] = dict(answer_settings)
    if training_minutes is not None:
        config.setdefault("wordle_mlx", {})["training_minutes"] = round(float(training_minutes), 2)
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / ADAPTER_WEIGHTS), weights)
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    return out


def average_adapters(sources: list[str | Path], out: str | Path, dtype: str = "float16",
                     training_minutes: float | None = None) -> tuple[Path, float | None]:
    """Write to `out` the adapters whose weight update is the mean of the sources' updates, exactly.

    A LoRA layer adds scale * x A B (A: (in, r), B: (r, out)), so the mean over K sources is
    scale * x [A_1 .. A_K] [B_1; ..; B_K] / K: a LoRA of rank sum_k r_k that mlx-lm loads as it loads
    any other. The sources must share the base model, layers, targets, scale and answer settings.
    Returns (out, factor gap): ||mean(A) mean(B) - mean(A B)|| / ||mean(A B)|| over all layers, how far
    averaging the factors would land from the mean update (None when the ranks differ)."""
    sources = [Path(s) for s in sources]
    if len(sources) < 2:
        raise ValueError("average: give at least two adapter directories")
    configs, weights = [], []
    for src in sources:
        _require_adapter(src)
        configs.append(json.loads((src / ADAPTER_CONFIG).read_text()))
        weights.append({k: v.astype(mx.float32) for k, v in mx.load(str(src / ADAPTER_WEIGHTS)).items()})

    def shared(config: dict) -> tuple:
        params = {k: v for k, v in config.get("lora_parameters", {}).items() if k != "rank"}
        mine = config.get("wordle_mlx", {})
        return (config.get("model"), config.get("fine_tune_type"), config.get("num_layers"),
                json.dumps(params, sort_keys=True), json.dumps(mine.get("sampling"), sort_keys=True))

    for src, config, w in zip(sources[1:], configs[1:], weights[1:]):
        if shared(config) != shared(configs[0]):
            raise ValueError(f"average: {src} was not trained like {sources[0]} (base model, layers, targets, "
                             "scale or answer settings differ)")
        if set(w) != set(weights[0]):
            raise ValueError(f"average: {src} has other LoRA layers than {sources[0]}")
    if any(not k.endswith((".lora_a", ".lora_b")) for k in weights[0]):
        raise ValueError(f"average: {sources[0]} holds weights that are not LoRA factors")
    k = len(sources)
    names = sorted(n[: -len(".lora_a")] for n in weights[0] if n.endswith(".lora_a"))
    ranks = [w[names[0] + ".lora_a"].shape[1] for w in weights]
    same_rank = len(set(ranks)) == 1
    averaged, gap_num, gap_den = {}, 0.0, 0.0
    for name in names:
        a = [w[name + ".lora_a"] for w in weights]  # K x (in, r_k)
        b = [w[name + ".lora_b"] for w in weights]  # K x (r_k, out)
        averaged[name + ".lora_a"] = mx.concatenate(a, axis=1)  # (in, sum r)
        averaged[name + ".lora_b"] = mx.concatenate(b, axis=0) / k  # (sum r, out)
        if same_rank:
            mean_update = sum(x @ y for x, y in zip(a, b)) / k  # (in, out)
            factor_update = (sum(a) / k) @ (sum(b) / k)
            gap_num += float(mx.sum((factor_update - mean_update) ** 2))
            gap_den += float(mx.sum(mean_update ** 2))
    rank = sum(ranks)
    config = json.loads(json.dumps(configs[0]))
    config["lora_parameters"]["rank"] = rank
    mine = config.setdefault("wordle_mlx", {})
    if "lora" in mine:
        settings = LoraSettings(**{**mine["lora"], "targets": tuple(mine["lora"]["targets"])})
        mine["lora"].update(rank=rank, scale=settings.effective_scale)
    mine["averaged_from"] = [str(s) for s in sources]
    mine.pop("training_minutes", None)
    if training_minutes is not None:
        mine["training_minutes"] = round(float(training_minutes), 2)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / ADAPTER_WEIGHTS), {n: v.astype(getattr(mx, dtype)) for n, v in averaged.items()})
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    gap = (gap_num / gap_den) ** 0.5 if same_rank and gap_den > 0 else None
    return out, gap


def weight_updates(path: str | Path) -> dict[str, mx.array]:
    """An adapter directory's weight update per LoRA layer, A B (scale left out: (in, out) float32 each)."""
    path = Path(path)
    if not (path / ADAPTER_WEIGHTS).exists():
        raise FileNotFoundError(f"adapter: {path} needs {ADAPTER_WEIGHTS}")
    w = {k: v.astype(mx.float32) for k, v in mx.load(str(path / ADAPTER_WEIGHTS)).items()}
    return {n[: -len(".lora_a")]: w[n] @ w[n[: -len(".lora_a")] + ".lora_b"] for n in w if n.endswith(".lora_a")}


def update_gram(paths: list[str | Path]) -> np.ndarray:
    """(K, K) inner products <U_i, U_j> of the adapters' weight updates U = A B over all layers, from the
    factors: <A1 B1, A2 B2> = sum((A1^T A2) * (B1 B2^T)), so no (in, out) update is ever formed.
    Raises ValueError when the adapters hold other LoRA layers."""
    factors = []
    for p in paths:
        if not (Path(p) / ADAPTER_WEIGHTS).exists():
            raise FileNotFoundError(f"adapter: {p} needs {ADAPTER_WEIGHTS}")
        w = {k: np.array(v.astype(mx.float32), dtype=np.float64) for k, v in mx.load(str(Path(p) / ADAPTER_WEIGHTS)).items()}
        factors.append({n[: -len(".lora_a")]: (w[n], w[n[: -len(".lora_a")] + ".lora_b"])
                        for n in w if n.endswith(".lora_a")})
    first = factors[0]
    for p, f in zip(paths[1:], factors[1:]):
        if set(f) != set(first) or any(f[k][0].shape[0] != first[k][0].shape[0]
                                       or f[k][1].shape[1] != first[k][1].shape[1] for k in f):
            raise ValueError(f"distances: {p} has other LoRA layers than {paths[0]}")
    gram = np.zeros((len(paths), len(paths)))
    for i, fi in enumerate(factors):
        for j in range(i, len(paths)):
            fj = factors[j]
            gram[i, j] = gram[j, i] = sum(float(np.sum((fi[k][0].T @ fj[k][0]) * (fi[k][1] @ fj[k][1].T))) for k in fi)
    return gram


def update_distances(paths: list[str | Path]) -> list[list[float]]:
    """Frobenius distances between the adapters' weight updates (over all layers), each divided by the
    first adapter's update norm: [i][j] = ||U_i - U_j|| / ||U_0||. Raises ValueError on other layers."""
    return gram_distances(update_gram(paths))


def gram_distances(gram: np.ndarray) -> list[list[float]]:
    """`update_distances` from the updates' Gram matrix (K, K)."""
    squared = np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2 * gram
    return (np.sqrt(np.clip(squared, 0, None)) / (np.sqrt(gram[0, 0]) or 1.0)).tolist()


def increment_cosines(gram: np.ndarray) -> np.ndarray:
    """(K-1, K-1) cosines between the successive increments U_{i+1} - U_i of K updates, from their Gram
    matrix: 1 for a run that keeps its direction, about 0 for a random walk's non-overlapping steps."""
    k = len(gram)
    step = np.zeros((k - 1, k))  # row i: the increment i -> i+1 as a combination of the updates
    step[np.arange(k - 1), np.arange(1, k)] = 1.0
    step[np.arange(k - 1), np.arange(k - 1)] = -1.0
    inc = step @ gram @ step.T
    norms = np.sqrt(np.clip(np.diag(inc), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.outer(norms, norms) > 0, inc / np.outer(norms, norms), 0.0)


def stored_training_minutes(path: str | Path) -> float | None:
    """The training minutes `export_adapters` stored in an adapter directory, or None."""
    try:
        minutes = json.loads((Path(path) / ADAPTER_CONFIG).read_text())["wordle_mlx"]["training_minutes"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(minutes) if isinstance(minutes, (int, float)) else None


def adapter_base_model(path: str | Path) -> str | None:
    """The base model an adapter directory was trained on (its adapter_config.json `model`), or None."""
    config = Path(path) / ADAPTER_CONFIG
    try:
        name = json.loads(config.read_text()).get("model")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) and name else None


def load_adapters(model: nn.Module, path: str | Path) -> nn.Module:
    """Add the LoRA layers described in `path` and load their weights (mlx-lm's loader), as float32
    whatever the file holds: shipped adapters are float16, and training on from them (GRPO from
    `adapters/recipe`) must not take AdamW steps on float16 weights (fresh mlx-lm adapters are float32)."""
    from mlx_lm.tuner.utils import load_adapters as mlx_load_adapters

    path = Path(path)
    _require_adapter(path)
    model = mlx_load_adapters(model, str(path))
    for _, m in lora_modules(model):
        m.lora_a, m.lora_b = m.lora_a.astype(mx.float32), m.lora_b.astype(mx.float32)
    saved = json.loads((path / ADAPTER_CONFIG).read_text()).get("wordle_mlx", {}).get("lora")
    if saved:
        model.lora_settings = LoraSettings(**{**saved, "targets": tuple(saved["targets"])})
    return model


@contextmanager
def adapters_disabled(model: nn.Module):
    """Run the base model (the KL reference) by zeroing every LoRA scale, then restore them."""
    modules = lora_modules(model)
    scales = [m.scale for _, m in modules]
    try:
        for _, m in modules:
            m.scale = 0.0
        yield model
    finally:
        for (_, m), s in zip(modules, scales):
            m.scale = s


@contextmanager
def adapters_swapped(model: nn.Module, weights: dict[str, mx.array]):
    """Run with other LoRA weights (e.g. the starting adapters, the KL reference), then restore the current ones.

    `weights` maps parameter names (as in adapters.safetensors) to arrays; swapping is by reference (no copy).
    """
    current = dict(tree_flatten(model.trainable_parameters()))
    missing = sorted(set(current) - set(weights))
    if missing:
        raise ValueError(f"reference adapters lack {len(missing)} LoRA weights, e.g. {missing[0]}")
    try:
        model.update(tree_unflatten([(k, weights[k]) for k in current]))
        yield model
    finally:
        model.update(tree_unflatten(list(current.items())))


def fuse_adapters(model: nn.Module, dequantize: bool = False) -> nn.Module:
    """Merge LoRA layers into their base linears (in place). Returns the model."""
    fused = [(n, m.fuse(dequantize=dequantize)) for n, m in model.named_modules() if hasattr(m, "fuse")]
    if fused:
        model.update_modules(tree_unflatten(fused))
    return model


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts (quantized weights counted as stored elements)."""
    trainable = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    total = sum(v.size for _, v in tree_flatten(model.parameters()))
    return trainable, total
