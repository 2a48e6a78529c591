"""Tests. Importing wordle_mlx first loads OpenBLAS before any test module imports mlx (Linux CPU speed)."""

import wordle_mlx  # noqa: F401
