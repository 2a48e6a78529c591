"""The game and its maths: word lists, the engine, feedback patterns, solvers. No model imports, no mlx-lm."""
