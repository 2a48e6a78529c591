"""The Wordle engine: feedback, game state, what is known, consistency and candidates.

Feedback is five letters: G (right letter, right place), Y (in the word, elsewhere),
X (absent). Repeated letters follow the standard two-pass rule: greens are marked first,
then, left to right, a guess letter is yellow while the secret still has copies of it that
are not already matched (by a green or an earlier yellow); otherwise it is X.

A pattern code packs feedback in base 3 with position i worth 3**i and X=0, Y=1, G=2, so
codes run 0..242 and GGGGG is 242. `wordle_mlx.wordle.patterns` computes the same codes in MLX.

`GameState` is immutable: `state.play(word)` returns the next state. Hard mode here means
*every guess must be consistent with all feedback so far* (stricter than the NYT rule,
which only forces reuse of greens and yellows).

Pure Python, no MLX import.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from wordle_mlx.wordle import words as wordlists

GREEN, YELLOW, ABSENT = "G", "Y", "X"
WORD_LENGTH = 5
MAX_GUESSES = 6
NUM_PATTERNS = 3**WORD_LENGTH  # 243
WIN_CODE = NUM_PATTERNS - 1  # GGGGG
_DIGIT = {ABSENT: 0, YELLOW: 1, GREEN: 2}
_LETTER = {v: k for k, v in _DIGIT.items()}


def _normalise_pair_word(word: str, what: str) -> str:
    if not isinstance(word, str):
        raise TypeError(f"{what}: expected a string, got {type(word).__name__}")
    w = word.strip().lower()
    if len(w) != WORD_LENGTH or not (w.isascii() and w.isalpha()):
        raise ValueError(f"{what}: expected {WORD_LENGTH} letters a-z, got {word!r}")
    return w


def feedback(guess: str, secret: str) -> str:
    """Feedback of `guess` against `secret` as five letters of G/Y/X (case-insensitive)."""
    g = _normalise_pair_word(guess, "guess")
    s = _normalise_pair_word(secret, "secret")
    result = [ABSENT] * WORD_LENGTH
    unmatched = Counter()
    for i in range(WORD_LENGTH):  # pass 1: greens
        if g[i] == s[i]:
            result[i] = GREEN
        else:
            unmatched[s[i]] += 1
    for i in range(WORD_LENGTH):  # pass 2: yellows, left to right
        if result[i] != GREEN and unmatched[g[i]] > 0:
            result[i] = YELLOW
            unmatched[g[i]] -= 1
    return "".join(result)


def feedback_to_code(fb: str) -> int:
    """'GYXXG' -> base-3 code (position i worth 3**i; X=0, Y=1, G=2)."""
    if len(fb) != WORD_LENGTH or any(c not in _DIGIT for c in fb.upper()):
        raise ValueError(f"feedback: expected {WORD_LENGTH} letters of G/Y/X, got {fb!r}")
    return sum(_DIGIT[c] * 3**i for i, c in enumerate(fb.upper()))


def code_to_feedback(code: int) -> str:
    """Inverse of `feedback_to_code`."""
    code = int(code)
    if not 0 <= code < NUM_PATTERNS:
        raise ValueError(f"pattern code: expected 0..{NUM_PATTERNS - 1}, got {code}")
    letters = []
    for _ in range(WORD_LENGTH):
        code, digit = divmod(code, 3)
        letters.append(_LETTER[digit])
    return "".join(letters)


def feedback_code(guess: str, secret: str) -> int:
    """Pattern code (0..242) of `guess` against `secret`."""
    return feedback_to_code(feedback(guess, secret))


@dataclass(frozen=True)
class Turn:
    """One played guess and the feedback it got."""

    guess: str
    feedback: str


History = Sequence[Turn]


def is_consistent(word: str, history: History) -> bool:
    """True if `word` could be the secret given every (guess, feedback) in `history`."""
    return all(feedback(t.guess, word) == t.feedback for t in history)


def filter_candidates(history: History, words: Iterable[str] | None = None) -> list[str]:
    """The words (default: all answers) still consistent with `history`."""
    pool = wordlists.answers() if words is None else words
    return [w for w in pool if is_consistent(w, history)]


BROKEN_RULES = ("green", "missing", "place", "absent")


@dataclass(frozen=True)
class Knowledge:
    """What the feedback so far tells about the secret.

    greens: position -> letter known there.
    min_counts: letter -> at least this many copies (letters known present).
    max_counts: letter -> at most this many copies (known when a copy got X).
    excluded_positions: letter -> positions where it is known not to be.
    """

    greens: dict[int, str] = field(default_factory=dict)
    min_counts: dict[str, int] = field(default_factory=dict)
    max_counts: dict[str, int] = field(default_factory=dict)
    excluded_positions: dict[str, frozenset[int]] = field(default_factory=dict)

    @property
    def present(self) -> frozenset[str]:
        """Letters known to be in the secret."""
        return frozenset(k for k, v in self.min_counts.items() if v > 0)

    @property
    def absent(self) -> frozenset[str]:
        """Letters known not to be in the secret at all."""
        return frozenset(k for k, v in self.max_counts.items() if v == 0)

    @property
    def misplaced(self) -> dict[str, frozenset[int]]:
        """Present letters whose place is not known, with the positions they are not at."""
        fixed = Counter(self.greens.values())
        return {
            letter: self.excluded_positions.get(letter, frozenset())
            for letter in sorted(self.present)
            if self.min_counts[letter] > fixed[letter]
        }

    def pattern(self, unknown: str = "?") -> str:
        """Known greens as a 5-letter pattern, e.g. '??INT'."""
        return "".join(self.greens[i].upper() if i in self.greens else unknown for i in range(WORD_LENGTH))

    def allows(self, word: str) -> bool:
        """True if `word` satisfies every constraint (equivalent to `is_consistent`)."""
        return not self.broken(word)

    def broken(self, word: str) -> tuple[str, ...]:
        """The kinds of constraint `word` breaks, in `BROKEN_RULES` order (empty iff `word` fits):
        green (a known letter not kept in its place), missing (a letter known to be in the word left
        out, or too few copies), place (a letter of the word put where feedback said it is not),
        absent (a letter known not to be in the word, or more copies than the secret has)."""
        w = word.lower()
        counts = Counter(w)
        broken = {
            "green": any(w[i] != letter for i, letter in self.greens.items()),
            "missing": any(counts[c] < n for c, n in self.min_counts.items()),
            "place": any(w[i] == c for c, positions in self.excluded_positions.items()
                         if self.min_counts.get(c, 0) > 0 for i in positions),
            "absent": any(counts[c] > n for c, n in self.max_counts.items()),
        }
        return tuple(rule for rule in BROKEN_RULES if broken[rule])


def knowledge_from_history(history: History) -> Knowledge:
    """Fold every turn's feedback into a `Knowledge`."""
    greens: dict[int, str] = {}
    min_counts: dict[str, int] = {}
    max_counts: dict[str, int] = {}
    excluded: dict[str, set[int]] = {}
    for turn in history:
        g, fb = turn.guess.lower(), turn.feedback.upper()
        marked = Counter(g[i] for i in range(WORD_LENGTH) if fb[i] != ABSENT)
        for i, (c, f) in enumerate(zip(g, fb)):
            if f == GREEN:
                greens[i] = c
            else:  # Y or X: the letter is not at this position
                excluded.setdefault(c, set()).add(i)
            if f == ABSENT:  # a copy got X: the secret has exactly `marked[c]` copies
                max_counts[c] = min(max_counts.get(c, WORD_LENGTH), marked[c])
        for c, n in marked.items():
            min_counts[c] = max(min_counts.get(c, 0), n)
    return Knowledge(greens, min_counts, max_counts, {c: frozenset(p) for c, p in excluded.items()})


class InvalidGuess(ValueError):
    """A guess the game refuses. `reason` is a short code: wrong_length, not_letters,
    not_allowed, repeated (never raised by the engine), hard_mode."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class GameOver(RuntimeError):
    """Raised when playing a guess in a finished game."""


def guess_problem(word: str, check_allowed: bool = True) -> tuple[str, str] | None:
    """(reason, message) if `word` is not a valid guess, else None."""
    if not isinstance(word, str):
        return "not_letters", f"guess must be a string, got {type(word).__name__}"
    w = word.strip()
    if not (w.isascii() and w.isalpha()):
        return "not_letters", f"guess {word!r} must contain only letters a-z"
    if len(w) != WORD_LENGTH:
        return "wrong_length", f"guess {word!r} has {len(w)} letters, expected {WORD_LENGTH}"
    if check_allowed and not wordlists.is_allowed(w):
        return "not_allowed", f"guess {word!r} is not in the allowed word list"
    return None


@dataclass(frozen=True)
class GameState:
    """An immutable game: the secret, the turns played, and the rules."""

    secret: str
    turns: tuple[Turn, ...] = ()
    max_guesses: int = MAX_GUESSES
    hard_mode: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "secret", _normalise_pair_word(self.secret, "secret"))
        if self.max_guesses < 1:
            raise ValueError(f"max_guesses: expected >= 1, got {self.max_guesses}")

    @property
    def won(self) -> bool:
        return bool(self.turns) and self.turns[-1].feedback == GREEN * WORD_LENGTH

    @property
    def lost(self) -> bool:
        return not self.won and len(self.turns) >= self.max_guesses

    @property
    def finished(self) -> bool:
        return self.won or self.lost

    @property
    def guesses_used(self) -> int:
        return len(self.turns)

    @property
    def guesses_left(self) -> int:
        return self.max_guesses - len(self.turns)

    @property
    def guesses(self) -> tuple[str, ...]:
        return tuple(t.guess for t in self.turns)

    @functools.cached_property
    def knowledge(self) -> Knowledge:
        return knowledge_from_history(self.turns)

    def candidates(self, words: Iterable[str] | None = None) -> list[str]:
        """Answers (or `words`) still consistent with the feedback so far."""
        return filter_candidates(self.turns, words)

    def check_guess(self, word: str) -> tuple[str, str] | None:
        """(reason, message) if this game would refuse `word`, else None."""
        problem = guess_problem(word)
        if problem is None and self.hard_mode and not is_consistent(word.strip().lower(), self.turns):
            problem = ("hard_mode", f"hard mode: {word!r} contradicts the feedback so far")
        return problem

    def play(self, word: str) -> "GameState":
        """Play `word`; return the next state. Raises InvalidGuess or GameOver."""
        if self.finished:
            raise GameOver(f"the game is over ({'won' if self.won else 'lost'}); no more guesses")
        problem = self.check_guess(word)
        if problem is not None:
            raise InvalidGuess(*problem)
        w = word.strip().lower()
        turn = Turn(w, feedback(w, self.secret))
        return GameState(self.secret, self.turns + (turn,), self.max_guesses, self.hard_mode)
