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

import wordle_mlx  # noqa: F401
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
