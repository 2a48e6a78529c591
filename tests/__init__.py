"""Tests. Importing wordle_mlx first loads OpenBLAS before any test module imports mlx (Linux CPU speed).

The suite leaves the user's cache alone: WORDLE_MLX_HOME points at a temporary directory for the
whole run (subprocesses inherit it), removed at exit. Only the downloaded GGUF sources are shared
with the user's cache (`models/sources`, a link), so the default model is downloaded once per
machine and converted once per test run (~5 s).
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Equality tests (fused == unfused, rollout == teacher forcing) check code, not kernels: they compare
# float32 results in full float32. On CUDA (and M5 Metal) MLX runs float32 matmuls at TF32 precision
# unless MLX_ENABLE_TF32=0 (~1e-3 relative error;
# the 4e-4..2e-3 differences an H100 run of these tests showed are of that size);
# mlx's own test harness pins it the same way. Read at the first matmul, so set before any test runs.
os.environ.setdefault("MLX_ENABLE_TF32", "0")

import wordle_mlx  # noqa: E402,F401
from wordle_mlx import paths

if not os.environ.get("WORDLE_MLX_TEST_HOME_SET"):
    _user_sources = paths.data_home() / "models" / "sources"
    _home = Path(tempfile.mkdtemp(prefix="wordle_mlx-tests-"))
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    try:
        _user_sources.mkdir(parents=True, exist_ok=True)
        (_home / "models").mkdir()
        (_home / "models" / "sources").symlink_to(_user_sources, target_is_directory=True)
    except OSError:
        pass  # a read-only user cache: the test home downloads its own copy
    os.environ["WORDLE_MLX_HOME"] = str(_home)
    os.environ["WORDLE_MLX_TEST_HOME_SET"] = "1"  # subprocesses that import tests keep this home
