"""The assistant for a real game played elsewhere (today's puzzle): nobody here knows the secret.

Each turn the player (a model with its adapters, or a solver) suggests a guess from the turns so far;
the person types the word they played (Enter = the suggestion) and the colours it got (`gyxxg`: g
green, y yellow, x grey; `b`, `.` and `-` count as grey). Input that cannot be used is re-asked with
one line and never costs a turn: a word that is not an allowed five-letter word or was played
before, colours that are not five of g/y/x, or colours that no allowed word could have given with
the earlier ones (a typo). The game ends at `ggggg`, after six turns, or when input ends.

No model import: the player is anything with `guess_batch(histories[, rejected])`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from wordle_mlx.wordle import patterns
from wordle_mlx.wordle.game import GREEN, MAX_GUESSES, WORD_LENGTH, Turn, guess_problem

_COLOURS = {"g": "G", "y": "Y", "x": "X", "b": "X", ".": "X", "-": "X"}


class InputEnded(Exception):
    """The person's input ended (Ctrl-D, end of a pipe) before the game did; `turn`: the turn it was at."""

    turn: int = 0


def parse_colours(text: str) -> str:
    """`gyxxg` (case-insensitive; b . - for grey; spaces ignored) -> 'GYXXG'. ValueError: one line."""
    letters = text.replace(" ", "").lower()
    if len(letters) != WORD_LENGTH or any(c not in _COLOURS for c in letters):
        raise ValueError(f"colours: expected {WORD_LENGTH} of g (green), y (yellow), x (grey), e.g. gyxxg; "
                         f"got {text.strip()!r}")
    return "".join(_COLOURS[c] for c in letters)


def word_problem(word: str, turns: Sequence[Turn]) -> str | None:
    """Why `word` cannot be the word played this turn (one line), or None."""
    problem = guess_problem(word)
    if problem:
        return problem[1]
    if word.lower() in {t.guess for t in turns}:
        return f"{word.upper()} was played already"
    return None


@dataclass
class AssistGame:
    """The turns of a game played elsewhere, as typed in."""

    turns: list[Turn] = field(default_factory=list)

    @property
    def won(self) -> bool:
        return bool(self.turns) and self.turns[-1].feedback == GREEN * WORD_LENGTH

    @property
    def finished(self) -> bool:
        return self.won or len(self.turns) >= MAX_GUESSES

    def candidates(self) -> list[str]:
        """Words that can still be the secret (answers first, else allowed words by frequency)."""
        return patterns.candidate_words(self.turns)


def suggest(player, turns: Sequence[Turn]) -> str:
    """The player's guess for `turns`, lowercase (a model's answer may not be a word: the caller checks)."""
    return str(player.guess_batch([list(turns)])[0]).strip().lower()


def assist(player, ask: Callable[[str], str], say: Callable[[str], None],
           show_turn: Callable[[Turn], None] | None = None) -> AssistGame:
    """Play one game with `player` suggesting and a person typing; `ask(prompt)` returns a line or raises
    InputEnded (or EOFError); `say` prints one line. Returns the game as played."""
    game = AssistGame()
    show_turn = show_turn or (lambda t: say(f"{t.guess.upper()}  {t.feedback}"))
    while not game.finished:
        try:
            _turn(player, game, ask, say, show_turn)
        except InputEnded as ended:
            ended.turn = len(game.turns) + 1
            raise
    return game


def _turn(player, game: AssistGame, ask, say, show_turn) -> None:
    """One turn: suggest, read the word played and its colours (re-asked until usable), record it."""
    n = len(game.turns) + 1
    suggestion = suggest(player, game.turns)
    usable = word_problem(suggestion, game.turns) is None
    say(f"turn {n}/{MAX_GUESSES}: suggestion {suggestion.upper()}" if usable
        else f"turn {n}/{MAX_GUESSES}: the player's answer {suggestion.upper()!r} is not a new allowed word; "
             "type the word you play")
    while True:
        typed = _ask(ask, f"word played{f' (Enter = {suggestion.upper()})' if usable else ''}: ").strip().lower()
        word = typed or (suggestion if usable else "")
        problem = word_problem(word, game.turns) if word else "type a five-letter word"
        if problem is None:
            break
        say(f"  {problem}; try again")
    while True:
        text = _ask(ask, f"colours for {word.upper()} (g/y/x, e.g. gyxxg): ")
        try:
            colours = parse_colours(text)
        except ValueError as err:
            say(f"  {err}; try again")
            continue
        turn = Turn(word, colours)
        if not patterns.candidate_words([*game.turns, turn]):
            say("  no allowed word gives these colours with the earlier ones; check them and try again")
            continue
        break
    game.turns.append(turn)
    show_turn(turn)
    if not game.finished:
        left = game.candidates()
        shown = ", ".join(w.upper() for w in left[:8]) + (" ..." if len(left) > 8 else "")
        say(f"  {len(left)} word{'s' if len(left) != 1 else ''} left: {shown}")


def _ask(ask: Callable[[str], str], prompt: str) -> str:
    try:
        return ask(prompt)
    except EOFError:
        raise InputEnded from None
