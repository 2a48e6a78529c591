"""Where wordle-mlx keeps computed data and converted models."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """Cache directory: $WORDLE_MLX_HOME, or ~/.cache/wordle_mlx."""
    home = os.environ.get("WORDLE_MLX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "wordle_mlx"
