"""Benchmarks (not tests): MLX pattern table vs a straightforward numpy implementation.

The numpy baseline vectorises the same two-pass rule the usual way: greens as a (c, A, 5)
comparison, unmatched copies as a (c, A, 5, 5) comparison summed over the answer's positions,
earlier non-green copies with a strict lower-triangular (5, 5) mask, in chunks of guesses.
Timings are best-of-`repeats` wall clock in one process, so the ratio is what matters on a
shared, noisy machine.
"""

from __future__ import annotations

import time

import numpy as np

import mlx.core as mx

from wordle_mlx import patterns
from wordle_mlx import words as wordlists

_POWERS = np.array([1, 3, 9, 27, 81], dtype=np.uint8)
_EARLIER = np.tri(5, k=-1, dtype=bool)  # [i, j] = j < i


def pattern_codes_numpy(guesses: np.ndarray, answers: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(G, 5) x (A, 5) uint8 letters -> (G, A) uint8 pattern codes, numpy only."""
    out = np.empty((len(guesses), len(answers)), dtype=np.uint8)
    a = answers[None, :, :]  # (1, A, 5)
    for start in range(0, len(guesses), chunk):
        g = guesses[start : start + chunk, None, :]  # (c, 1, 5)
        green = g == a  # (c, A, 5)
        avail = ((g[..., :, None] == a[..., None, :]) & ~green[..., None, :]).sum(-1, dtype=np.uint8)  # (c, A, 5)
        used = ((g[..., :, None] == g[..., None, :]) & _EARLIER & ~green[..., None, :]).sum(-1, dtype=np.uint8)
        yellow = ~green & (avail > used)
        digits = green.astype(np.uint8) * 2 + yellow
        out[start : start + chunk] = (digits * _POWERS).sum(-1, dtype=np.uint8)
    return out


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def benchmark_patterns(repeats: int = 2) -> dict:
    """Time the full 12,972 x 2,315 table with MLX and numpy; check they are bit-identical."""
    g = patterns.encode_words(wordlists.allowed())
    a = patterns.encode_words(wordlists.answers())
    on_gpu = mx.default_device() == mx.gpu
    start = time.perf_counter()
    mx.eval(patterns.pattern_codes(g[:1024], a, compiled=True))  # warm-up: mx.compile traces / JIT-builds
    mx.eval(patterns.pattern_codes(g[:1024], a, compiled=False))
    warmup = time.perf_counter() - start
    mlx_s, mlx_table = _best_time(lambda: np.array(patterns.pattern_codes(g, a)), repeats)
    other_s, other_table = _best_time(lambda: np.array(patterns.pattern_codes(g, a, compiled=not on_gpu)), 1)
    numpy_s, numpy_table = _best_time(lambda: pattern_codes_numpy(g, a), repeats)
    return {
        "shape": list(mlx_table.shape),
        "device": str(mx.default_device()),
        "mlx_warmup_s": warmup,
        "mlx_s": mlx_s,
        "mlx_kernel": "compiled" if on_gpu else "eager, one CPU stream per core",
        "mlx_other_kernel": "eager" if on_gpu else "mx.compile",
        "mlx_other_s": other_s,
        "numpy_s": numpy_s,
        "identical": bool(np.array_equal(mlx_table, numpy_table) and np.array_equal(mlx_table, other_table)),
        "speedup": numpy_s / mlx_s,
    }
