"""Word lists and the fixed train/eval split of the answers.

* `answers()`: the 2,315 original Wordle answers (alphabetical).
* `allowed()`: the 12,972 accepted guesses (answers included).
* The split: the answers, sorted, are shuffled with `random.Random(SPLIT_SEED)` and the first
  `EVAL_SIZE` (315) become the eval set; the other 2,000 are the train set. Both are returned
  sorted. `random.Random` with a string seed and `shuffle` are stable across CPython versions,
  and a test pins the eval set's sha256 so any change is caught.
* Eval answers must never become training data: code that makes training data passes its
  secrets through `check_training_secrets`, which raises on any eval word.

No MLX here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from importlib import resources
from typing import Literal, Sequence

WORD_LENGTH = 5
SPLIT_SEED = "wordle-mlx-eval-split-v1"
EVAL_SIZE = 315

Split = Literal["train", "eval", "all"]
SPLITS: tuple[str, ...] = ("train", "eval", "all")


def _read_lines(name: str) -> tuple[str, ...]:
    text = resources.files("wordle_mlx").joinpath("data", name).read_text(encoding="utf-8")
    return tuple(line.strip().lower() for line in text.splitlines() if line.strip())


def read_data_text(name: str) -> str:
    """Text of a file shipped in `wordle_mlx/data/`."""
    return resources.files("wordle_mlx").joinpath("data", name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def answers() -> tuple[str, ...]:
    """The 2,315 possible secrets, lowercase, alphabetical."""
    return _read_lines("answers.txt")


@functools.lru_cache(maxsize=None)
def allowed() -> tuple[str, ...]:
    """The 12,972 accepted guesses, lowercase, alphabetical (answers included)."""
    return _read_lines("allowed.txt")


@functools.lru_cache(maxsize=None)
def allowed_set() -> frozenset[str]:
    return frozenset(allowed())


@functools.lru_cache(maxsize=None)
def allowed_index() -> dict[str, int]:
    """word -> row in `allowed()` (and in the pattern table)."""
    return {w: i for i, w in enumerate(allowed())}


@functools.lru_cache(maxsize=None)
def answer_index() -> dict[str, int]:
    """word -> column in `answers()` (and in the pattern table)."""
    return {w: i for i, w in enumerate(answers())}


@functools.lru_cache(maxsize=None)
def word_frequencies() -> dict[str, float]:
    """word -> relative English frequency, for every allowed word."""
    return json.loads(read_data_text("freq_map.json"))


def is_allowed(word: str) -> bool:
    return word.lower() in allowed_set()


@functools.lru_cache(maxsize=None)
def _split() -> tuple[tuple[str, ...], tuple[str, ...]]:
    shuffled = sorted(answers())
    random.Random(SPLIT_SEED).shuffle(shuffled)
    eval_words = tuple(sorted(shuffled[:EVAL_SIZE]))
    train_words = tuple(sorted(shuffled[EVAL_SIZE:]))
    return train_words, eval_words


def split_words(split: str) -> tuple[str, ...]:
    """Answers of one split: 'train' (2,000), 'eval' (315) or 'all' (2,315), sorted."""
    if split == "train":
        return _split()[0]
    if split == "eval":
        return _split()[1]
    if split == "all":
        return answers()
    raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")


@functools.lru_cache(maxsize=None)
def eval_set() -> frozenset[str]:
    return frozenset(split_words("eval"))


def words_sha256(words: tuple[str, ...] | list[str]) -> str:
    """sha256 of the words joined by newlines: a fingerprint of a list."""
    return hashlib.sha256("\n".join(words).encode()).hexdigest()


class EvalLeakError(ValueError):
    """Raised when an eval answer is about to be used for training."""


def check_training_secrets(secrets) -> None:
    """Raise EvalLeakError if any secret belongs to the eval split."""
    leaked = sorted({s.lower() for s in secrets} & eval_set())
    if leaked:
        shown = ", ".join(leaked[:5]) + (" ..." if len(leaked) > 5 else "")
        raise EvalLeakError(f"{len(leaked)} eval answer(s) used as training secrets: {shown}")


def sample_split(split: str, n: int | None, seed: int = 0) -> list[str]:
    """`n` secrets from a split, a seeded sample (the same words for every policy), or all if n is None."""
    return sample_words(split_words(split), n, seed)


class WordListError(ValueError):
    """A user's word list that cannot be used (one line naming the first bad word)."""


def parse_word_list(text: str, name: str = "word list") -> list[str]:
    """One allowed word per line (case-insensitive; blank lines and `#` comments skipped), in file order
    with duplicates dropped. WordListError names the first line that is not an allowed word."""
    out: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        word = line.split("#", 1)[0].strip().lower()
        if not word:
            continue
        if not is_allowed(word):
            raise WordListError(f"{name} line {lineno}: {line.strip()!r} is not an allowed five-letter word")
        if word not in out:
            out.append(word)
    if not out:
        raise WordListError(f"{name} has no words")
    return out


def sample_words(words: Sequence[str], n: int | None, seed: int = 0) -> list[str]:
    """`n` of `words`, a seeded sample (sorted), or all of them (sorted) if n is None or not smaller."""
    if n is not None and n < 1:
        raise ValueError(f"n: expected a positive number of games, got {n}")
    if n is None or n >= len(words):
        return sorted(words)
    return sorted(random.Random(seed).sample(list(words), n))
