"""The MLX reward core: pattern codes for word arrays, candidate partitions and entropy.

Pattern codes (see `wordle_mlx.wordle.game`): base 3, position i worth 3**i, X=0 Y=1 G=2, 0..242.

`pattern_codes(guesses, answers)` computes the (G, A) uint8 code matrix with one elementwise
kernel, unrolled over the 5x5 letter positions and fused by `mx.compile`:

    green[i]  = g[i] == a[i]
    avail[i]  = sum_k (g[i] == a[k]) & ~green[k]      # copies of g[i] in the secret not matched by a green
    used[i]   = sum_{j<i} (g[i] == g[j]) & ~green[j]  # earlier non-green copies of g[i] in the guess
    yellow[i] = ~green[i] & (avail[i] > used[i])      # the two-pass rule, left to right
    code      = sum_i (2*green[i] + yellow[i]) * 3**i

Every term is a (G, A) broadcast of a (G, 1) guess column against a (1, A) answer column, so no
(G, A, 5, 5) tensor is ever materialised; guesses are processed in chunks of 512, which on the
CPU are spread over one MLX stream per core (2 here) and on a GPU fused by `mx.compile`.

Where this integer work runs (`wordle_device()`): on a Metal GPU when that is MLX's default
device, on the CPU otherwise, CUDA included: an H100 run took 33 s on the GPU for the table that
the 2-core CPU computes in 0.46 s, and did not finish the opener entropies in 90 s.
`WORDLE_MLX_PATTERNS_DEVICE=cpu|gpu` forces either; `python -m scripts.benchmark patterns` times
every variant (device, kernel, chunk, counting) on the machine at hand.

The full table (12,972 allowed guesses x 2,315 answers, uint8, 30 MB) is computed once by
`python -m scripts.calculate_word_entropy` and saved as `pattern_table.npy` (+ a `.json` sidecar
with the word-list fingerprints) in `$WORDLE_MLX_HOME` (default `~/.cache/wordle_mlx`).
`load_pattern_table()` memory-maps it, and computes (and saves) it when absent or stale, saying so.

Entropy of a guess over candidates C with prior w (uniform by default):
    P_k = sum_{c in C, code(guess, c) = k} w_c / sum_{c in C} w_c,   H = -sum_k P_k log2 P_k
Partition counts put the (G, C) codes into (G, 243) bins, by one of three methods
(`partition_counts(method=...)`): numpy's `bincount` of row * 243 + code (the CPU default:
118 ms for the full table on this 2-core CPU against 696 ms for MLX's CPU scatter-add), an MLX
scatter-add on the default device (the Metal GPU default), or one-hot comparisons summed per
pattern (no scatter; many more operations, for GPUs whose scatter is slow).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

import mlx.core as mx

from wordle_mlx.wordle import words as wordlists
from wordle_mlx.paths import data_home
from wordle_mlx.wordle.game import NUM_PATTERNS, WORD_LENGTH, History, feedback_code, feedback_to_code

TABLE_FILE = "pattern_table.npy"
OPENERS_FILE = "opener_entropy.tsv"
TABLE_FORMAT = "wordle-mlx pattern table v1: uint8[allowed, answers], code = sum (X0/Y1/G2) * 3**i"
_POWERS = (1, 3, 9, 27, 81)


def encode_words(words: Sequence[str]) -> np.ndarray:
    """Words -> (N, 5) uint8 letter indices 0..25. Raises ValueError on a non 5-letter a-z word."""
    words = [w.lower() for w in words]
    for w in words:
        if len(w) != WORD_LENGTH or not (w.isascii() and w.isalpha()):
            raise ValueError(f"words: expected {WORD_LENGTH} letters a-z each, got {w!r}")
    joined = "".join(words)
    return (np.frombuffer(joined.encode("ascii"), dtype=np.uint8) - ord("a")).reshape(-1, WORD_LENGTH)


def _codes_kernel(g: mx.array, a: mx.array) -> mx.array:
    """g: (G, 5) letters, a: (A, 5) letters -> (G, A) uint8 pattern codes."""
    gi = [g[:, i : i + 1] for i in range(WORD_LENGTH)]  # (G, 1) each
    ak = [a[None, :, k] for k in range(WORD_LENGTH)]  # (1, A) each
    green = [gi[i] == ak[i] for i in range(WORD_LENGTH)]  # (G, A) bool each
    not_green = [mx.logical_not(x) for x in green]
    code = None
    for i in range(WORD_LENGTH):
        # k == i never counts: g[i] == a[i] means green[i]
        avail = sum(((gi[i] == ak[k]) & not_green[k]).astype(mx.uint8) for k in range(WORD_LENGTH) if k != i)
        used = sum((((gi[i] == gi[j]) & not_green[j]).astype(mx.uint8) for j in range(i)), mx.array(0, mx.uint8))
        yellow = not_green[i] & (avail > used)
        digit = mx.where(green[i], mx.array(2 * _POWERS[i], mx.uint8), yellow.astype(mx.uint8) * _POWERS[i])
        code = digit if code is None else code + digit
    return code


_compiled_kernel = mx.compile(_codes_kernel)
_cpu_streams: list = []


def _streams(n: int) -> list:
    """n CPU streams (each runs on its own thread), created once."""
    while len(_cpu_streams) < n:
        _cpu_streams.append(mx.new_stream(mx.cpu))
    return _cpu_streams[:n]


def _as_letters(x) -> mx.array:
    if isinstance(x, mx.array):
        return x.astype(mx.uint8)
    if isinstance(x, np.ndarray):
        return mx.array(x.astype(np.uint8))
    return mx.array(encode_words(list(x)))


DEVICE_ENV = "WORDLE_MLX_PATTERNS_DEVICE"


def wordle_device() -> str:
    """"cpu" or "gpu": where pattern codes and partition counts run by default (module docstring).

    `WORDLE_MLX_PATTERNS_DEVICE=cpu|gpu` forces either; otherwise "gpu" only when MLX's default
    device is a Metal GPU. Raises ValueError on another value, or "gpu" without a GPU backend.
    """
    forced = os.environ.get(DEVICE_ENV, "").strip().lower()
    if forced not in ("", "cpu", "gpu"):
        raise ValueError(f"{DEVICE_ENV}={forced!r}: expected cpu or gpu (or unset)")
    if forced == "gpu" and not mx.is_available(mx.gpu):
        raise ValueError(f"{DEVICE_ENV}=gpu: this MLX build has no GPU backend (python -m scripts.doctor says why)")
    if forced:
        return forced
    return "gpu" if mx.default_device() == mx.gpu and mx.metal.is_available() else "cpu"


CHUNK = 512  # guesses per kernel call


def pattern_codes(guesses, answers, chunk: int = CHUNK, compiled: bool | None = None,
                  device: str | None = None) -> mx.array:
    """Pattern codes of every (guess, answer) pair -> (G, A) uint8 MLX array.

    `guesses` / `answers`: word lists, or (N, 5) letter arrays from `encode_words`.
    `device` ("cpu" / "gpu", default `wordle_device()`): on a GPU the kernel is fused with
    `mx.compile` and runs on the GPU's default stream. On the CPU, where MLX runs each stream's
    ops on one thread and fusion measured no faster here, chunks are spread over one CPU stream
    per core (up to 4) and the kernel runs eagerly. `compiled` forces either choice of kernel.
    """
    g, a = _as_letters(guesses), _as_letters(answers)
    on_gpu = (device or wordle_device()) == "gpu"
    kernel = _compiled_kernel if (on_gpu if compiled is None else compiled) else _codes_kernel
    streams = [mx.default_stream(mx.gpu)] if on_gpu else _streams(max(1, min(os.cpu_count() or 1, 4)))
    parts = []
    for n, start in enumerate(range(0, g.shape[0], chunk)):
        with mx.stream(streams[n % len(streams)]):
            parts.append(kernel(g[start : start + chunk], a))
    mx.eval(parts)
    if not parts:
        return mx.zeros((0, a.shape[0]), dtype=mx.uint8)
    if len(parts) == 1:
        return parts[0]
    with mx.stream(streams[0]):  # where the parts were made
        return mx.concatenate(parts, axis=0)


def compute_pattern_table() -> np.ndarray:
    """The full (12,972 allowed x 2,315 answers) uint8 table, computed with MLX."""
    return np.array(pattern_codes(wordlists.allowed(), wordlists.answers()))


def _table_meta() -> dict:
    return {
        "format": TABLE_FORMAT,
        "rows": "allowed.txt",
        "cols": "answers.txt",
        "shape": [len(wordlists.allowed()), len(wordlists.answers())],
        "allowed_sha256": wordlists.words_sha256(wordlists.allowed()),
        "answers_sha256": wordlists.words_sha256(wordlists.answers()),
    }


def save_pattern_table(table: np.ndarray, path: str | Path) -> Path:
    """Write the table as .npy (atomically, a temporary file per process, so processes that compute
    the table at once, as SFT data chunks do, never move each other's file) plus a .json sidecar."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.ascontiguousarray(table, dtype=np.uint8))
    os.replace(tmp, path)
    path.with_suffix(".json").write_text(json.dumps(_table_meta(), indent=2) + "\n")
    return path


def _read_valid_table(path: Path) -> np.ndarray | None:
    """The memory-mapped table at `path` if it matches the shipped word lists, else None."""
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        table = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    expected = _table_meta()
    if meta != expected or list(table.shape) != expected["shape"] or table.dtype != np.uint8:
        return None
    # spot-check a fixed sample of cells against the scalar engine (catches a corrupt file)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, table.shape[0], 64), rng.integers(0, table.shape[1], 64)
    allowed, answers = wordlists.allowed(), wordlists.answers()
    if any(int(table[r, c]) != feedback_code(allowed[r], answers[c]) for r, c in zip(rows, cols)):
        return None
    return table


_table_cache: dict[str, np.ndarray] = {}


def load_pattern_table(path: str | Path | None = None, compute_if_missing: bool = True) -> np.ndarray:
    """The (12,972, 2,315) uint8 table, memory-mapped from disk (cached per process).

    When the file is absent or does not match the word lists, computes it (saying so on
    stderr) and tries to save it for next time; with `compute_if_missing=False` raises
    FileNotFoundError instead.
    """
    path = Path(path) if path is not None else data_home() / TABLE_FILE
    key = str(path)
    if key in _table_cache:
        return _table_cache[key]
    table = _read_valid_table(path)
    if table is None:
        if not compute_if_missing:
            raise FileNotFoundError(
                f"pattern table {path} is missing or stale; run: python -m scripts.calculate_word_entropy"
            )
        print(f"[wordle_mlx] pattern table not found or stale at {path}; computing it with MLX ...", file=sys.stderr)
        start = time.perf_counter()
        table = compute_pattern_table()
        try:
            save_pattern_table(table, path)
            where = f"saved to {path}"
        except OSError as err:
            where = f"not saved ({err})"
        print(f"[wordle_mlx] pattern table computed in {time.perf_counter() - start:.1f}s, {where}", file=sys.stderr)
    _table_cache[key] = table
    return table


def candidate_indices(history: History, table: np.ndarray | None = None) -> np.ndarray:
    """Answer indices (columns of the table) still consistent with `history`.

    Uses the table for guesses in allowed.txt; any other guess falls back to `pattern_codes`.
    """
    table = load_pattern_table() if table is None else table
    index = wordlists.allowed_index()
    mask = np.ones(table.shape[1], dtype=bool)
    for turn in history:
        row = index.get(turn.guess.lower())
        codes = table[row] if row is not None else np.array(pattern_codes([turn.guess.lower()], wordlists.answers()))[0]
        mask &= codes == feedback_to_code(turn.feedback)
    return np.flatnonzero(mask)


@functools.lru_cache(maxsize=4096)
def _codes_over_allowed(guess: str) -> np.ndarray:
    """(12972,) pattern codes of `guess` against every allowed word as the secret."""
    return np.array(pattern_codes([guess], wordlists.allowed()))[0]


def allowed_candidates(history: History) -> list[str]:
    """Allowed words (not only answers) still consistent with `history`, most frequent English word
    first (`freq_map.json`: the answer prior), then alphabetical."""
    allowed = wordlists.allowed()
    mask = np.ones(len(allowed), dtype=bool)
    for turn in history:
        mask &= _codes_over_allowed(turn.guess.lower()) == feedback_to_code(turn.feedback)
    freq = wordlists.word_frequencies()
    return sorted((allowed[i] for i in np.flatnonzero(mask)), key=lambda w: (-freq.get(w, 0.0), w))


def candidate_words(history: History, table: np.ndarray | None = None) -> list[str]:
    """The words that can still be the secret: the answers consistent with `history` (answer-list order);
    when none is (the secret is an allowed word outside the 2,315 answers, as the daily puzzle has used
    since 2023), the consistent allowed words, most frequent first. Empty only when the feedback
    contradicts itself."""
    answers = wordlists.answers()
    found = candidate_indices(history, table)
    return [answers[i] for i in found] if len(found) else allowed_candidates(history)


COUNTING_METHODS = ("bincount", "scatter", "onehot")


def partition_counts(codes, weights=None, method: str | None = None, chunk: int = 256) -> mx.array:
    """(G, C) pattern codes -> (G, 243) float32 weight (default count) of candidates per pattern.

    `codes`, `weights` ((C,)): MLX or numpy arrays. `method` (module docstring): "bincount"
    (numpy, CPU), "scatter" (MLX scatter-add on the default device) or "onehot" (MLX, `chunk`
    guesses at a time); default "bincount" when `wordle_device()` is the CPU, else "scatter".
    """
    method = method or ("bincount" if wordle_device() == "cpu" else "scatter")
    n_guesses, n_cands = codes.shape
    if method == "bincount":
        flat = (np.arange(n_guesses, dtype=np.int64)[:, None] * NUM_PATTERNS + np.asarray(codes)).reshape(-1)
        w = None if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64)[None, :],
                                                         (n_guesses, n_cands)).reshape(-1)
        counts = np.bincount(flat, weights=w, minlength=n_guesses * NUM_PATTERNS)  # int64, or float64 with weights
        return mx.array(counts.astype(np.float32).reshape(n_guesses, NUM_PATTERNS))
    codes = mx.array(codes) if isinstance(codes, np.ndarray) else codes
    w = None if weights is None else mx.array(np.asarray(weights, dtype=np.float32)).astype(mx.float32)
    if method == "scatter":
        flat = (mx.arange(n_guesses, dtype=mx.int32)[:, None] * NUM_PATTERNS + codes.astype(mx.int32)).reshape(-1)
        values = (mx.ones(flat.shape, dtype=mx.float32) if w is None
                  else mx.broadcast_to(w[None, :], (n_guesses, n_cands)).reshape(-1))
        bins = mx.zeros((n_guesses * NUM_PATTERNS,), dtype=mx.float32).at[flat].add(values)
        return bins.reshape(n_guesses, NUM_PATTERNS)
    if method == "onehot":
        ks = mx.arange(NUM_PATTERNS, dtype=mx.uint8)[None, :, None]  # (1, 243, 1)
        parts = []
        for start in range(0, n_guesses, chunk):
            hits = codes[start : start + chunk, None, :] == ks  # (c, 243, C) bool
            parts.append(hits.sum(axis=2).astype(mx.float32) if w is None
                         else (hits.astype(mx.float32) * w[None, None, :]).sum(axis=2))
        return mx.concatenate(parts, axis=0) if parts else mx.zeros((0, NUM_PATTERNS), dtype=mx.float32)
    raise ValueError(f"partition counting method {method!r}: expected one of {', '.join(COUNTING_METHODS)}")


def entropy_from_counts(counts: mx.array) -> mx.array:
    """(G, 243) partition weights -> (G,) expected information in bits."""
    total = counts.sum(axis=1, keepdims=True)
    p = counts / mx.maximum(total, 1e-30)
    plogp = mx.where(counts > 0, p * mx.log2(mx.maximum(p, 1e-30)), 0.0)
    return -plogp.sum(axis=1)


def _codes_for(guesses: Sequence[str] | None, candidates: Sequence[str], table: np.ndarray | None):
    """(G, C) codes for guesses (None = all allowed) x candidates: a numpy slice of the table when
    every word is in it, else MLX's `pattern_codes`."""
    ans_index, allowed_index = wordlists.answer_index(), wordlists.allowed_index()
    cols = [ans_index.get(w) for w in candidates]
    rows = None if guesses is None else [allowed_index.get(w) for w in guesses]
    if all(c is not None for c in cols) and (rows is None or all(r is not None for r in rows)):
        table = load_pattern_table() if table is None else table
        return table[:, cols] if rows is None else table[np.ix_(rows, cols)]
    return pattern_codes(wordlists.allowed() if guesses is None else guesses, candidates)


def guess_entropies(
    candidates: Sequence[str],
    guesses: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    table: np.ndarray | None = None,
) -> np.ndarray:
    """Expected information (bits) of each guess (default: every allowed word) over `candidates`.

    Returns a float32 numpy array, one entry per guess.
    """
    if len(candidates) == 0:
        raise ValueError("candidates: expected at least one candidate word")
    codes = _codes_for(guesses, [w.lower() for w in candidates], table)  # (G, C)
    return np.array(entropy_from_counts(partition_counts(codes, weights)))


def partition_sizes(
    candidates: Sequence[str], guesses: Sequence[str] | None = None, table: np.ndarray | None = None
) -> np.ndarray:
    """(G, 243) int32 number of candidates each guess sends to each feedback pattern."""
    codes = _codes_for(guesses, [w.lower() for w in candidates], table)
    return np.array(partition_counts(codes)).astype(np.int32)


def compute_opener_entropies(table: np.ndarray | None = None) -> list[tuple[str, float]]:
    """(word, bits) for every allowed word over all answers (uniform prior), best first."""
    table = load_pattern_table() if table is None else table
    bits = np.array(entropy_from_counts(partition_counts(np.asarray(table))))
    order = np.lexsort((np.arange(len(bits)), -bits))  # by bits desc, then alphabetical
    allowed = wordlists.allowed()
    return [(allowed[i], float(bits[i])) for i in order]


def save_opener_entropies(openers: list[tuple[str, float]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["word\tbits"] + [f"{w}\t{b:.6f}" for w, b in openers]
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


def load_opener_entropies(path: str | Path | None = None) -> list[tuple[str, float]]:
    """Saved opener entropies (best first); computed from the table when the file is absent."""
    path = Path(path) if path is not None else data_home() / OPENERS_FILE
    if path.exists():
        rows = [line.split("\t") for line in path.read_text().splitlines()[1:] if line]
        if len(rows) == len(wordlists.allowed()):
            return [(w, float(b)) for w, b in rows]
    print(f"[wordle_mlx] opener entropies not found at {path}; computing them once (the expected "
          f"information of all {len(wordlists.allowed()):,} openers: about 1-2 minutes on 2 CPU cores) ...",
          file=sys.stderr)
    start = time.perf_counter()
    openers = compute_opener_entropies()
    try:
        save_opener_entropies(openers, path)
        where = f"saved to {path}"
    except OSError as err:
        where = f"not saved ({err.strerror or err}): computed again next time"
    print(f"[wordle_mlx] opener entropies computed in {time.perf_counter() - start:.0f}s, {where}", file=sys.stderr)
    return openers
