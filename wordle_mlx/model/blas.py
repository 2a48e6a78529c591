"""Load a fast BLAS for MLX's Linux CPU backend, before `mlx` is imported.

The `mlx[cpu]` wheel for Linux bundles a reference BLAS (float32 matmul ~3-4 GFLOP/s on a
2-core x86 box). Loading the system OpenBLAS with RTLD_GLOBAL first makes the dynamic linker
resolve MLX's `cblas_*` symbols to OpenBLAS instead (8-40x faster matmuls measured here).

On macOS (Metal + Accelerate) this does nothing. It never imports mlx itself, so importing
`wordle_mlx` keeps the pure modules (words, game, ...) free of MLX.

Set WORDLE_MLX_BLAS=0 to skip it, or WORDLE_MLX_BLAS=/path/to/libopenblas.so.0 to pick a library.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys

_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
    "/usr/lib64/libopenblas.so.0",
    "/usr/lib/libopenblas.so.0",
)

ENV_VAR = "WORDLE_MLX_BLAS"
loaded_path: str | None = None


def find_openblas() -> str | None:
    """Return the path of a system OpenBLAS shared library, or None."""
    override = os.environ.get(ENV_VAR)
    if override and override not in ("0", "1"):
        return override if os.path.exists(override) else None
    for path in _CANDIDATES:
        if os.path.exists(path):
            return path
    found = sorted(glob.glob("/usr/lib/*/openblas*/libopenblas*.so*"))
    return found[0] if found else None


def load_openblas() -> str | None:
    """Load OpenBLAS globally on Linux (once). Returns the loaded path or None."""
    global loaded_path
    if loaded_path is not None or not sys.platform.startswith("linux"):
        return loaded_path
    if os.environ.get(ENV_VAR) == "0":
        return None
    if "mlx.core" in sys.modules:  # too late: MLX already bound its BLAS symbols
        return None
    path = find_openblas()
    if path is None:
        return None
    try:
        ctypes.CDLL(path, mode=os.RTLD_GLOBAL)
    except OSError:
        return None
    loaded_path = path
    return path


def describe() -> str:
    """Which BLAS MLX uses on this machine, in words."""
    if sys.platform == "darwin":
        return "Accelerate (macOS)"
    if loaded_path:
        return f"OpenBLAS {loaded_path}"
    if os.environ.get(ENV_VAR) == "0":
        return f"MLX's bundled reference BLAS ({ENV_VAR}=0)"
    if "mlx.core" in sys.modules and find_openblas():
        return "MLX's bundled reference BLAS (mlx was imported before wordle_mlx)"
    return "MLX's bundled reference BLAS (no system OpenBLAS found: apt install libopenblas0-pthread)"
