"""Loading and adapting models: GGUF import, LoRA, memory estimates, OpenBLAS, tiny test models. Knows nothing of Wordle.

Keep this file free of imports: `wordle_mlx/__init__.py` loads `model.blas` before anything imports mlx.
"""
