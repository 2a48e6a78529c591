"""Solver policies: the yardstick every model is measured against.

A policy maps the turns played so far (never the secret) to the next guess. Policies expose
`guess_batch(histories)` so the evaluator can play many games in lock-step, the same way a
batched language-model policy will.

* `random`: a uniformly random allowed word not guessed before.
* `consistent`: a uniformly random answer still consistent with all feedback.
* `entropy`: the opener with the most expected information over all answers (from the saved
  opener table), then the allowed word with the most expected information over the remaining
  candidates; a word that can still be the answer gets `tie_bonus` extra bits, so when information
  is nearly equal it prefers a possible winner. With 1-2 candidates it plays a candidate.
  Decisions are memoised by history (the policy is deterministic).
* `frequent`: the most common English word (by `freq_map.json`) among the answers still consistent
  with all feedback; opens with the entropy-best answer word. Every guess can win: easy to imitate.
* `candidate-entropy`: the answer still consistent with the feedback that splits the remaining
  candidates best (most expected information); the same opener.
* `optimal`: the proven optimal decision tree of alex1770/wordle (normal mode: opener SALET,
  7,920 guesses over the 2,315 answers). A history the tree does not cover falls back to `entropy`.

Candidates are the answers consistent with the feedback; when none is (a secret outside the 2,315
answers: an allowed word, as the daily puzzle has used since 2023), the consistent allowed words,
most frequent first (`patterns.candidate_words`). Simplifications: a uniform prior over the
candidates (word frequencies rank, they do not weight), and the answer list is always tried first.
"""

from __future__ import annotations

import random
import re
from typing import Sequence

import numpy as np

from wordle_mlx.wordle import patterns
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.wordle.game import GREEN, WORD_LENGTH, Turn, feedback

HistoryKey = tuple[tuple[str, str], ...]


def history_key(history: Sequence[Turn]) -> HistoryKey:
    return tuple((t.guess.lower(), t.feedback.upper()) for t in history)


class Policy:
    """Base class: subclasses implement `guess(history)`; `guess_batch` maps it."""

    name = "policy"

    def guess(self, history: Sequence[Turn]) -> str:
        raise NotImplementedError

    def guess_batch(self, histories: Sequence[Sequence[Turn]]) -> list[str]:
        return [self.guess(h) for h in histories]

    def describe(self) -> dict:
        return {"name": self.name}


class RandomPolicy(Policy):
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.seed = seed

    def guess(self, history: Sequence[Turn]) -> str:
        played = {t.guess for t in history}
        allowed = wordlists.allowed()
        while True:
            word = allowed[self.rng.randrange(len(allowed))]
            if word not in played:
                return word

    def describe(self) -> dict:
        return {"name": self.name, "seed": self.seed}


class ConsistentPolicy(Policy):
    name = "consistent"

    def __init__(self, seed: int = 0, table: np.ndarray | None = None):
        self.rng = random.Random(seed)
        self.seed = seed
        self.table = patterns.load_pattern_table() if table is None else table

    def guess(self, history: Sequence[Turn]) -> str:
        cands = _candidates(history, self.table)
        return cands[self.rng.randrange(len(cands))]

    def describe(self) -> dict:
        return {"name": self.name, "seed": self.seed}


def _candidates(history: Sequence[Turn], table: np.ndarray) -> list[str]:
    """`patterns.candidate_words`, never empty: ValueError (one line) when the feedback contradicts itself."""
    cands = patterns.candidate_words(history, table)
    if not cands:
        raise ValueError("no allowed word is consistent with this feedback")
    return cands


class MemoisedPolicy(Policy):
    """A deterministic policy: `_decide(history)` is computed once per history."""

    _memo: dict

    def guess(self, history: Sequence[Turn]) -> str:
        key = history_key(history)
        if key not in self._memo:
            self._memo[key] = self._decide(history)
        return self._memo[key]

    def _decide(self, history: Sequence[Turn]) -> str:
        raise NotImplementedError


class EntropyPolicy(MemoisedPolicy):
    name = "entropy"

    def __init__(self, tie_bonus: float = 0.1, opener: str | None = None, table: np.ndarray | None = None):
        self.tie_bonus = tie_bonus
        self.table = patterns.load_pattern_table() if table is None else table
        self.opener = opener or patterns.load_opener_entropies()[0][0]
        self._memo: dict[HistoryKey, str] = {}

    def _decide(self, history: Sequence[Turn]) -> str:
        if not history:
            return self.opener
        cands = _candidates(history, self.table)
        if len(cands) <= 2:
            return cands[0]
        bits = patterns.guess_entropies(cands, table=self.table)  # (12972,)
        allowed_index = wordlists.allowed_index()
        bits[[allowed_index[w] for w in cands]] += self.tie_bonus
        return wordlists.allowed()[int(np.argmax(bits))]

    def describe(self) -> dict:
        return {"name": self.name, "opener": self.opener, "tie_bonus": self.tie_bonus}


_TOKEN = re.compile(r"\S+")
_PAIR = re.compile(r"^([BYG]{5})(\d+)$")


def parse_optimal_tree(text: str) -> dict[str, list[tuple[str, str]]]:
    """Parse an alex1770 tree file -> {answer: [(guess, feedback G/Y/X), ...]} (last pair GGGGG).

    Each line is a game path of `guess PATTERNn` pairs; an indented line shares the tokens of
    the line above that start left of its first token.
    """
    paths: dict[str, list[tuple[str, str]]] = {}
    previous: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        tokens = [(m.start(), m.group()) for m in _TOKEN.finditer(line)]
        tokens = [t for t in previous if t[0] < tokens[0][0]] + tokens
        previous = tokens
        words = [t for _, t in tokens]
        if len(words) % 2:
            raise ValueError(f"optimal tree line {lineno}: expected guess/pattern pairs, got {line.strip()!r}")
        path = []
        for i in range(0, len(words), 2):
            guess, pattern = words[i], _PAIR.match(words[i + 1])
            if pattern is None or int(pattern.group(2)) != i // 2 + 1:
                raise ValueError(f"optimal tree line {lineno}: bad pattern token {words[i + 1]!r}")
            path.append((guess.lower(), pattern.group(1).replace("B", "X")))
        if path[-1][1] != GREEN * WORD_LENGTH:
            raise ValueError(f"optimal tree line {lineno}: path does not end in GGGGG")
        paths[path[-1][0]] = path
    return paths


def load_optimal_tree(mode: str = "normal") -> dict[str, list[tuple[str, str]]]:
    """The shipped optimal tree for 'normal' or 'hard' mode, as {answer: path}."""
    if mode not in ("normal", "hard"):
        raise ValueError(f"mode: expected 'normal' or 'hard', got {mode!r}")
    return parse_optimal_tree(wordlists.read_data_text(f"optimal_tree_{mode}.txt"))


class OptimalTreePolicy(Policy):
    name = "optimal"

    def __init__(self, mode: str = "normal", table: np.ndarray | None = None):
        self.mode = mode
        self.moves: dict[HistoryKey, str] = {}
        for path in load_optimal_tree(mode).values():
            for k, (guess, _) in enumerate(path):
                self.moves.setdefault(tuple(path[:k]), guess)
        self._table = table
        self._fallback: EntropyPolicy | None = None

    def guess(self, history: Sequence[Turn]) -> str:
        move = self.moves.get(history_key(history))
        if move is not None:
            return move
        if self._fallback is None:
            self._fallback = EntropyPolicy(table=self._table)
        return self._fallback.guess(history)

    def describe(self) -> dict:
        return {"name": self.name, "mode": self.mode, "opener": self.moves[()]}


class CandidatePolicy(MemoisedPolicy):
    """Only ever guesses an answer that fits all feedback so far, chosen by `rank`."""

    def __init__(self, rank: str = "frequent", table: np.ndarray | None = None):
        if rank not in ("frequent", "entropy"):
            raise ValueError(f"rank: expected 'frequent' or 'entropy', got {rank!r}")
        self.rank = rank
        self.name = "frequent" if rank == "frequent" else "candidate-entropy"
        self.table = patterns.load_pattern_table() if table is None else table
        self._freq = wordlists.word_frequencies()
        self._memo: dict[HistoryKey, str] = {}

    def _decide(self, history: Sequence[Turn]) -> str:
        words = _candidates(history, self.table)
        if history and self.rank == "frequent":
            return max(words, key=lambda w: self._freq.get(w, 0.0))  # the first of equals
        bits = patterns.guess_entropies(words, table=self.table)  # (12972,) over allowed guesses
        allowed_index = wordlists.allowed_index()
        cand_bits = bits[[allowed_index[w] for w in words]]  # (C,)
        return words[int(np.argmax(cand_bits))]

    def describe(self) -> dict:
        return {"name": self.name}


POLICIES = ("random", "consistent", "frequent", "candidate-entropy", "entropy", "optimal")


def make_policy(name: str, seed: int = 0) -> Policy:
    """A solver policy by name (one of POLICIES)."""
    if name == "random":
        return RandomPolicy(seed)
    if name == "consistent":
        return ConsistentPolicy(seed)
    if name == "entropy":
        return EntropyPolicy()
    if name == "optimal":
        return OptimalTreePolicy()
    if name == "frequent":
        return CandidatePolicy("frequent")
    if name == "candidate-entropy":
        return CandidatePolicy("entropy")
    raise ValueError(f"policy: expected one of {', '.join(POLICIES)}, got {name!r}")


def check_tree_path(answer: str, path: list[tuple[str, str]]) -> bool:
    """True if every pattern in the path is the feedback its guess gets against `answer`."""
    return all(feedback(g, answer) == fb for g, fb in path)
