"""Report the environment: platform, MLX and mlx-lm versions, device, BLAS, caches.

    python -m scripts.doctor [--fetch-model]

--fetch-model downloads and converts the default built-in model now (install.sh does this).
"""

from __future__ import annotations

import os
import platform
import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from scripts import make_parser, run


def device_in_words(mx) -> str:
    """Which device and backend MLX runs on here, and why."""
    cuda = getattr(mx, "cuda", None) is not None and mx.cuda.is_available()
    if mx.default_device() == mx.gpu:
        if mx.metal.is_available():
            return "GPU, Metal backend (Apple silicon; the default when Metal is available)"
        if not cuda:
            return "GPU"
        return ("GPU, CUDA backend (mlx-cuda installed and an NVIDIA GPU visible); " + tf32_in_words())
    why = ("no GPU backend in this MLX build (the mlx[cpu] wheel)" if not (mx.metal.is_available() or cuda)
           else "the GPU is available but the default device was set to the CPU")
    return f"CPU backend: {why}"


def wordle_math_in_words() -> str:
    """Where pattern codes and partition counts run (`patterns.wordle_device`), and why."""
    from wordle_mlx.wordle import patterns

    device = patterns.wordle_device()  # a bad setting already stopped `run` with one line
    counting = "numpy bincount" if device == "cpu" else "MLX scatter-add"
    if os.environ.get(patterns.DEVICE_ENV, "").strip():
        why = f"{patterns.DEVICE_ENV} is set"
    elif device == "gpu":
        why = "the default device is a Metal GPU"
    else:
        why = "the default everywhere but on a Metal GPU (a CUDA GPU measured far slower at this integer work)"
    return f"{device.upper()}, counts by {counting}: {why}"


def tf32_in_words() -> str:
    """float32 matmul precision on CUDA: MLX asks cuBLAS for TF32 (10-bit mantissa) unless MLX_ENABLE_TF32=0."""
    if os.environ.get("MLX_ENABLE_TF32", "1") == "0":
        return "float32 matmuls in full float32 (MLX_ENABLE_TF32=0)"
    return "float32 matmuls at TF32 precision, MLX's default (MLX_ENABLE_TF32=0 for full float32)"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--fetch-model", action="store_true", help="download and convert the default model now")
    args = parser.parse_args(argv)

    import mlx.core as mx
    import mlx_lm

    from wordle_mlx.model import blas, models
    from wordle_mlx.wordle import patterns

    if args.fetch_model:
        try:
            models.fetch_builtin(models.DEFAULT_MODEL, models.resolve_dequantize("auto"))
        except models.ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    from rich.console import Console

    rows = [("platform", f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"),
            ("mlx / mlx-lm", f"{mx.__version__} / {mlx_lm.__version__}"),
            ("device", device_in_words(mx)),
            ("wordle math", wordle_math_in_words()),
            ("BLAS", blas.describe()),
            ("data home", str(patterns.data_home())),
            ("pattern table", "cached" if (patterns.data_home() / patterns.TABLE_FILE).exists()
             else "not yet (computed on first use)")]
    for name in models.BUILTIN_MODELS:
        variants = [v or "quantized" for v in (None, "float32", "bfloat16") if models.is_cached(name, v)]
        source = models.models_home() / "sources" / models.BUILTIN_MODELS[name].gguf_name
        broken = [f"{v or 'quantized'}: {problem}" for v in (None, "float32", "bfloat16")
                  if models.is_cached(name, v) and (problem := models.cached_copy_problem(name, v))]
        if broken:
            status = (f"BROKEN {'; '.join(broken)} (delete {models.models_home()}/{name}* and it is rebuilt "
                      f"on next use)")
        elif variants:
            status = ", ".join(variants)
        elif source.exists():
            status = "GGUF downloaded, converted on first use (a few seconds)"
        else:
            status = "not cached (fetched on first use)"
        rows.append((f"model {name}", status))
    console = Console()
    console.print("[bold]wordle-mlx doctor[/]")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:  # plain lines: a long path is never cut to fit the terminal
        console.print(f"  {key:<{width}}  {value}", soft_wrap=True, highlight=False, markup=False)
    return 0


if __name__ == "__main__":
    run(main)
