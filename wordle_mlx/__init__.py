"""wordle-mlx: teach small instruct LLMs to play Wordle with GRPO + LoRA on MLX."""

from wordle_mlx.model import blas as _blas

_blas.load_openblas()  # must run before anything imports mlx (Linux CPU speed-up)

__version__ = "0.1.0"
