"""Prompts the policy sees and the parser for what it answers.

The system prompt states the rules and the answer format: `<think>short reasoning</think>` then
`<guess>WORD</guess>`. The user turn describes the game in one of three formats:

* `plain` (default; plain English worked best before): every past guess with per-letter feedback
  (`1. CRANE: C gray, R yellow, A gray, N gray, E green`), then what is known (letters in place,
  letters in the word but not at given places, letter counts when known, absent letters) and
  the guesses left.
* `symbols`: the Predibase course style, `C(x) R(-) A(x) N(x) E(✓)` per guess, plus guesses left.
* `rows`: one `CRANE XYXXG` row per guess (G/Y/X), plus guesses left.
* `compact`: few tokens, the facts as the scratchpad states them (letter counts left out):
  `tried CRANE SLATE | pattern ??A?E | has R (not 1) | not C L N S T | 4 left`, one field per line,
  with a one-line system prompt (`COMPACT_SYSTEM_PROMPT`). Fewer tokens = more examples per minute.

`parse_completion(text, strict=False)` finds the guess (case-insensitive, whitespace tolerant, letters
separated by single spaces read as one word: the `letters` guess style) or
says precisely why there is none: no_guess_tag, several_guess_tags, not_letters, wrong_length,
not_allowed. With `strict=True` the layout must also be exactly one non-empty `<think>` block
followed by one `<guess>` block and nothing else: no_think, empty_think, extra_text.

Pure Python, no MLX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from wordle_mlx.wordle.game import ABSENT, GREEN, MAX_GUESSES, WORD_LENGTH, Turn, guess_problem, knowledge_from_history

FORMATS = ("plain", "symbols", "rows", "compact")

SYSTEM_PROMPT = (
    "You play Wordle: find the secret 5-letter word in 6 guesses. Each guessed letter gets feedback: "
    "green = right place, yellow = in the word but elsewhere, gray = not in the word (or no more copies). "
    "Keep greens, move yellows, avoid grays, never repeat a guess. Answer as:\n"
    "<think>short reasoning</think>\n<guess>WORD</guess>"
)

COMPACT_SYSTEM_PROMPT = (
    "Wordle: guess the secret 5-letter word. pattern = letters in place, has = in the word elsewhere, "
    "not = absent. Answer <think>..</think><guess>WORD</guess>"
)

_COLOUR = {GREEN: "green", "Y": "yellow", ABSENT: "gray"}
_SYMBOL = {GREEN: "✓", "Y": "-", ABSENT: "x"}
_ORDINAL = ["1st", "2nd", "3rd", "4th", "5th"]


def _letters(letters) -> str:
    return " ".join(sorted(letter.upper() for letter in letters))


def _places(positions) -> str:
    return "/".join(_ORDINAL[p] for p in sorted(positions))


def describe_knowledge(turns: Sequence[Turn]) -> list[str]:
    """Plain-English lines of what the feedback so far proves (empty before the first guess)."""
    if not turns:
        return []
    k = knowledge_from_history(turns)
    lines = [f"Letters in place: {k.pattern('_')}"]
    misplaced = k.misplaced
    if misplaced:
        parts = [f"{c.upper()} (not {_places(p)})" if p else c.upper() for c, p in misplaced.items()]
        lines.append("In the word, place unknown: " + ", ".join(parts))
    counts = []
    for c in sorted(k.present):
        lo, hi = k.min_counts[c], k.max_counts.get(c)
        if hi is not None and hi == lo and (lo > 1 or sum(t.guess.count(c) for t in turns) > 1):
            counts.append(f"exactly {lo} {c.upper()}")
        elif lo > 1:
            counts.append(f"at least {lo} {c.upper()}")
    if counts:
        lines.append("Letter counts: " + ", ".join(counts))
    if k.absent:
        lines.append("Not in the word: " + _letters(k.absent))
    return lines


def describe_compact(turns: Sequence[Turn]) -> list[str]:
    """The `compact` format's knowledge lines: pattern, has (with excluded places), not."""
    k = knowledge_from_history(turns)
    lines = [f"pattern {k.pattern('?')}"]
    if k.misplaced:
        lines.append("has " + ", ".join(f"{c.upper()} (not {','.join(str(p + 1) for p in sorted(pos))})" if pos
                                        else c.upper() for c, pos in k.misplaced.items()))
    if k.absent:
        lines.append("not " + _letters(k.absent))
    return lines


def render_state(turns: Sequence[Turn], fmt: str = "plain", max_guesses: int = MAX_GUESSES,
                 rejected: Sequence[str] = ()) -> str:
    """The user message for a game after `turns`; `rejected` lists earlier answers that were not
    valid guesses (they cost a turn in evaluation), so the model is told not to repeat them."""
    left = max_guesses - len(turns) - len(rejected)  # every rejected answer cost a turn
    rejected = [r.strip().upper() for r in rejected if r and r.strip()]
    if fmt not in FORMATS:
        raise ValueError(f"prompt format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    not_accepted = [f"Not valid words (not accepted): {', '.join(dict.fromkeys(rejected))}"] if rejected else []
    if fmt == "compact":
        lines = ["tried " + " ".join(t.guess.upper() for t in turns)] if turns else ["new game"]
        lines += describe_compact(turns) if turns else []
        if rejected:
            lines.append("not words " + " ".join(dict.fromkeys(rejected)))
        return "\n".join(lines + [f"{left} left"])
    if not turns and left == max_guesses:
        return f"New game, {left} guesses. Make your first guess."
    if not turns:
        return "\n".join(not_accepted + [f"{left} guess{'es' if left != 1 else ''} left. Make your next guess."])
    lines = []
    for i, t in enumerate(turns, 1):
        g, fb = t.guess.upper(), t.feedback.upper()
        if fmt == "plain":
            lines.append(f"{i}. {g}: " + ", ".join(f"{c} {_COLOUR[f]}" for c, f in zip(g, fb)))
        elif fmt == "symbols":
            lines.append(f"{i}. " + " ".join(f"{c}({_SYMBOL[f]})" for c, f in zip(g, fb)))
        else:
            lines.append(f"{g} {fb}")
    if fmt == "plain":
        lines += describe_knowledge(turns)
    lines += not_accepted
    lines.append(f"{left} guess{'es' if left != 1 else ''} left. Make your next guess.")
    return "\n".join(lines)


def build_messages(turns: Sequence[Turn], fmt: str = "plain", max_guesses: int = MAX_GUESSES,
                   system_prompt: str | None = None, rejected: Sequence[str] = ()) -> list[dict]:
    """Chat messages (system + user) for the next turn of a game; the system prompt defaults to
    the format's (`COMPACT_SYSTEM_PROMPT` for compact, else `SYSTEM_PROMPT`)."""
    if system_prompt is None:
        system_prompt = COMPACT_SYSTEM_PROMPT if fmt == "compact" else SYSTEM_PROMPT
    return [{"role": "system", "content": system_prompt},
            {"role": "user", "content": render_state(turns, fmt, max_guesses, rejected)}]


GUESS_STYLES = ("upper", "word", "letters")


def guess_text(guess: str, style: str = "upper") -> str:
    """How a guess is written: `upper` = CRANE; `word` = ` crane`, lowercase with a leading space,
    which most BPE vocabularies (SmolLM2's included) hold as one whole-word token; `letters` =
    ` C R A N E`, one token per letter, the same tokens as the letters of the compact prompt's
    `has` and `not` lines, so a letter can be copied or avoided position by position."""
    if style not in GUESS_STYLES:
        raise ValueError(f"guess style: expected one of {', '.join(GUESS_STYLES)}, got {style!r}")
    if style == "letters":
        return "".join(" " + c for c in guess.upper())
    return guess.upper() if style == "upper" else " " + guess.lower()


def format_completion(think: str | None, guess: str, style: str = "upper") -> str:
    """The exact answer format the model is trained to produce (`think=None`: the guess only)."""
    if think is None:
        return f"<guess>{guess_text(guess, style)}</guess>"
    return f"<think>{think}</think>\n<guess>{guess_text(guess, style)}</guess>"


_GUESS = re.compile(r"<guess>(.*?)</guess>", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think>(.*?)</think>", re.IGNORECASE | re.DOTALL)
_STRICT = re.compile(r"\s*<think>(.*?)</think>\s*<guess>(.*?)</guess>\s*", re.IGNORECASE | re.DOTALL)
_SPELLED = re.compile(r"[A-Za-z](?: [A-Za-z])+")
_STRICT_NO_THINK = re.compile(r"\s*<guess>(.*?)</guess>\s*", re.IGNORECASE | re.DOTALL)

GUESS_REASONS = ("no_guess_tag", "several_guess_tags", "not_letters", "wrong_length", "not_allowed")
FORMAT_REASONS = ("no_think", "empty_think", "extra_text")


@dataclass
class Parsed:
    """What a completion says: the valid guess (lowercase) or why there is none."""

    guess: str | None
    raw_guess: str | None
    think: str | None
    guess_problem: str | None
    format_problems: list[str] = field(default_factory=list)
    strict: bool = False

    @property
    def reason(self) -> str | None:
        """The first problem: the guess's, else (in strict mode) the layout's."""
        if self.guess_problem:
            return self.guess_problem
        return self.format_problems[0] if (self.strict and self.format_problems) else None

    @property
    def valid(self) -> bool:
        return self.reason is None

    @property
    def attempt(self) -> str:
        """What to play: the guess, else the raw text in the tag (so the engine reports why it is
        invalid and the turn is spent), else "" (no tag, or several)."""
        if self.guess:
            return self.guess
        return (self.raw_guess if self.guess_problem != "several_guess_tags" else "") or ""


def parse_completion(text: str, strict: bool = False, think: bool = True) -> Parsed:
    """Extract the guess from a completion; see the module docstring for the reasons.

    `think=False` is the no-think answer format: the strict layout is `<guess>WORD</guess>` alone
    (a think block is then extra_text)."""
    guesses = _GUESS.findall(text or "")
    format_problems: list[str] = []
    think_text = None
    if not think:
        if not _STRICT_NO_THINK.fullmatch(text or ""):
            format_problems.append("extra_text")
    else:
        thinks = _THINK.findall(text or "")
        think_text = thinks[0].strip() if thinks else None
        if not thinks:
            format_problems.append("no_think")
        elif not think_text:
            format_problems.append("empty_think")
        if thinks and len(guesses) == 1 and (len(thinks) > 1 or _STRICT.fullmatch(text) is None):
            format_problems.append("extra_text")
    if not guesses:
        return Parsed(None, None, think_text, "no_guess_tag", format_problems, strict)
    if len(guesses) > 1:
        return Parsed(None, guesses[0].strip(), think_text, "several_guess_tags", format_problems, strict)
    raw = guesses[0].strip()
    if _SPELLED.fullmatch(raw):  # the `letters` style, C R A N E
        raw = raw.replace(" ", "")
    problem = guess_problem(raw)
    if problem is not None:
        return Parsed(None, raw, think_text, problem[0], format_problems, strict)
    return Parsed(raw.lower(), raw, think_text, None, format_problems, strict)
