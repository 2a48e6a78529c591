"""What a guess is worth for winning: how the `frequent` solver fares when it plays on after it.

For a state (the turns so far) and a guess, every answer still consistent with the turns is taken as
the secret in turn (a uniform prior over the candidates, as the solvers use; the real secret is never
looked at, so the value is the same for every game that reached this state). The guess gets its
feedback, then the `frequent` solver (the SFT teacher: the commonest candidate each turn) plays until
it wins or the six turns are spent. Per secret the *score* is (7 - turns used) / 6 when won (a win
with the guess itself at turn 1 is 1, a win at turn 6 is 1/6) and 0 when lost; the guess's value is
the mean score, with the win chance and the expected turns beside it.

Exact, not sampled: the solver's move depends only on the candidate set, so its games from a set
are computed once (a cache per frozen set of answer indices) and each guess needs one partition of
the candidates by its feedback (a row of the pattern table). Candidates are answers only (training
secrets are answers); a state no answer fits (an out-of-list secret) has no value (None).

Ordering invariants (tests/test_value.py): the secret-free value is in [0, 1]; guessing the only
candidate is worth the most a guess can be at that turn; every answer's value is at least its own
share 1/|C| of that best score (it wins at once when it is the secret).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from wordle_mlx.wordle import patterns
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.wordle.game import MAX_GUESSES, WIN_CODE, Turn


@dataclass(frozen=True)
class GuessValue:
    """How the solver fares after a guess, averaged over the candidates (uniform)."""

    score: float  # mean (7 - turns used) / 6 over wins, 0 for a loss: in [0, 1]
    win_chance: float  # share of candidates won within the turns
    expected_turns: float  # mean turns used in all (the turns so far included); a loss counts max_guesses + 1


@functools.lru_cache(maxsize=1)
def _context() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """(pattern table (12972, 2315) uint8, answer frequencies (2315,), allowed word -> row)."""
    table = patterns.load_pattern_table()
    freq = wordlists.word_frequencies()
    return table, np.array([freq.get(w, 0.0) for w in wordlists.answers()]), wordlists.allowed_index()


@functools.lru_cache(maxsize=200_000)
def _solver_turns(candidates: frozenset[int]) -> dict[int, int]:
    """answer index -> turns the `frequent` solver needs to find it from this candidate set (its own guess
    counted; no turn limit: the caller applies it)."""
    table, freq, allowed_row = _context()
    cands = np.array(sorted(candidates), dtype=np.int64)
    guess = int(cands[np.argmax(freq[cands])])  # the commonest; of equals the first in answer order, as the solver
    out = {guess: 1}
    rest = cands[cands != guess]
    if len(rest) == 0:
        return out
    row = table[allowed_row[wordlists.answers()[guess]], rest]  # (|rest|,) pattern codes
    for code in np.unique(row):
        part = frozenset(int(c) for c in rest[row == code])
        for secret, turns in _solver_turns(part).items():
            out[secret] = 1 + turns
    return out


def guess_value(turns: Sequence[Turn], guess: str, max_guesses: int = MAX_GUESSES) -> GuessValue | None:
    """The value of playing `guess` (an allowed word) after `turns`; None when no answer fits the turns."""
    table, _, allowed_row = _context()
    cands = patterns.candidate_indices(turns, table)  # (C,) answer indices
    if len(cands) == 0:
        return None
    row = allowed_row.get(guess.lower())
    if row is None:
        raise ValueError(f"guess {guess!r} is not an allowed word")
    codes = table[row, cands]  # (C,)
    used_before = len(turns)
    scores, won, used = [], 0, []
    for code in np.unique(codes):
        group = cands[codes == code]
        if code == WIN_CODE:  # the guess is the secret
            after = {int(group[0]): 0}
        else:
            after = _solver_turns(frozenset(int(c) for c in group))
        for secret in group:
            total = used_before + 1 + after[int(secret)]
            win = total <= max_guesses
            won += win
            scores.append((max_guesses + 1 - total) / max_guesses if win else 0.0)
            used.append(total if win else max_guesses + 1)
    n = len(cands)
    return GuessValue(float(np.mean(scores)), won / n, float(np.mean(used)))
