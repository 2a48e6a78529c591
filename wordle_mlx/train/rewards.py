"""Reward functions for one completion in one game state, and the weighted total.

Components (each a small pure function; `score` adds them with weights from the config):

| component     | value                                                                              | range          |
|---------------|------------------------------------------------------------------------------------|----------------|
| format        | 0 no/several guess tags, 0.1 wrong length or non-letters, 0.5 not a word, 1.0 valid | 0..1           |
|               | (valid but with a broken layout under strict format: 0.8)                           |                |
| feedback      | per letter: +0.2 keeps a known green, +0.1 moves a known yellow to a new place,     | -2.5..1.25     |
|               | -0.2 puts a yellow back where it was, -0.5 uses an absent letter; +0.05 per new letter |             |
| consistency   | 1 if the guess could still be the secret (fits all feedback), else 0               | 0..1           |
| information   | expected bits of the guess over the remaining candidates / log2(#candidates)        | 0..1           |
| win           | 1 + early_win_bonus * unused guesses when the guess is the secret                  | 0..1+5*bonus   |
| repeat        | -1 for a word already guessed in this game                                          | -1..0          |
| think_length  | -(excess chars / target), capped at -1, for think text longer than the target       | -1..0          |
| value         | mean Wordle score ((7 - turns) / 6 a win, 0 a loss) when the `frequent` solver plays | 0..1           |
|               | on after the guess, over the candidates (`wordle_mlx.wordle.value`; secret unseen)   |                |

The invariant a previous project broke: a completion without a valid guess scores strictly
below every valid allowed word in the same state, whatever the weights. A valid guess's total is
at least L = sum_k w_k * min_k (the ranges above); an invalid completion scores
L - 1 + 0.5 * format_k (format_k in {0, 0.1, 0.5}), i.e. at most L - 0.75, and keeps the
ordering no tags < wrong shape < not a word. Nothing else (length, think) is scored for it.

The ordering this project needs on top of it (`rewards.ordering`, default on): among valid guesses,
one that fits all feedback so far scores strictly above every one that does not, and a repeated
word strictly below every valid word not yet played, in every state and under any non-negative
weights (both curriculum phases). With U the highest total a valid guess can reach, each valid
guess gets tier * (U - L + 1) on top of its weighted sum, tier 0 for a repeat (a repeat never fits:
it would have won), 1 for another valid word, 2 for a word that fits; the tiers cannot overlap,
and the invalid floor stays below tier 0. Within a tier the weighted sum (format layout,
feedback, information, win, think length) still orders the guesses, so information gain and the
win are kept on top of the ordering, not replaced by it. `ordering=false` is the plain weighted
sum (for ablations; a property test shows inconsistent guesses can then outscore consistent ones).

`fit_margin` (>= 1, default 1): the fitting tier sits `fit_margin` gaps above the not-fitting one
(offset (1 + fit_margin) * gap instead of 2 * gap). Between the plain ordering (1) and
`inconsistent_as_invalid` (a misfit scored like a made-up word): a group whose best sample does not
fit is ranked exactly as under the plain ordering (standardised advantages do not change with the
offset), and in a group with a fitting sample the fit gets a larger share of the advantage.

`repeat_as_invalid` (off by default; the recipe turns it on): a repeated word scores exactly what a
completion naming a word that is not allowed scores (L - 0.75). In the game both only waste a turn;
above the invalid floor, a repeat earns a positive advantage in every group whose other samples are
invalid, and copying a tried word (always a real word) is the easiest way up: GRPO runs here raised
greedy repeats from 39% to 47%. The components still record the repeat.

`inconsistent_as_invalid` (off by default): the same for every valid word that does not fit the
feedback (a repeat never fits, so repeats too). Only a guess that could still be the secret earns
anything over a wasted turn; a group in which no sample fits is flat (no gradient) instead of
pushing toward "any real word", the easy direction that measured GRPO runs here took (validity up,
consistency down under greedy decoding). Before any feedback every allowed word fits.

`rejected_again_lowest` (off by default; for GRPO with `training.play_on_invalid`, where an invalid
answer that cost a turn is listed under `not words` in the next prompts): a completion that writes
one of those listed answers again scores L - 1.25, strictly below every other completion, no tags
included (L - 1). A model stuck on a near miss writes it in most samples of a group; with every
invalid answer scoring alike such a group is flat, with this floor the samples that leave the
listed word rank above the ones that copy it, whatever else they write.

Curriculum: format-heavy weights until the rolling format compliance of the last `window`
completions reaches `switch_threshold` (default 90%), strategy-heavy weights from then on.

Information uses the MLX pattern table (`wordle_mlx.wordle.patterns`); everything else is pure Python.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from math import log2
from typing import Collection, Sequence

from wordle_mlx.config import RewardsConfig, RewardWeights
from wordle_mlx.wordle.game import GameState, Knowledge, Turn, is_consistent
from wordle_mlx.play.prompts import Parsed, parse_completion

COMPONENTS = ("format", "feedback", "consistency", "information", "win", "repeat", "think_length", "value")
_FORMAT_BY_REASON = {"no_guess_tag": 0.0, "several_guess_tags": 0.0, "not_letters": 0.1, "wrong_length": 0.1,
                     "not_allowed": 0.5}
FEEDBACK_MIN, FEEDBACK_MAX = -2.5, 1.25


def component_ranges(early_win_bonus: float, max_guesses: int = 6) -> dict[str, tuple[float, float]]:
    """(min, max) of each component for a valid guess."""
    return {"format": (0.8, 1.0), "feedback": (FEEDBACK_MIN, FEEDBACK_MAX), "consistency": (0.0, 1.0),
            "information": (0.0, 1.0), "win": (0.0, 1.0 + early_win_bonus * (max_guesses - 1)),
            "repeat": (-1.0, 0.0), "think_length": (-1.0, 0.0), "value": (0.0, 1.0)}


def format_reward(parsed: Parsed, strict: bool = True) -> float:
    """0 / 0.1 / 0.5 for invalid answers by reason, 1.0 valid (0.8 if strict and the layout is off)."""
    if parsed.guess is None:
        return _FORMAT_BY_REASON[parsed.guess_problem]
    return 0.8 if (strict and parsed.format_problems) else 1.0


def feedback_reward(guess: str, knowledge: Knowledge, turns: Sequence[Turn]) -> float:
    """Use of the feedback so far, letter by letter (see the table in the module docstring)."""
    seen = {c for t in turns for c in t.guess}
    misplaced = knowledge.misplaced
    total = 0.0
    for i, c in enumerate(guess):
        if knowledge.greens.get(i) == c:
            total += 0.2
        elif c in knowledge.absent:
            total -= 0.5
        elif c in knowledge.present and i in knowledge.excluded_positions.get(c, ()):
            total -= 0.2
        elif c in misplaced:
            total += 0.1
    total += 0.05 * len(set(guess) - seen)
    return total


def consistency_reward(guess: str, turns: Sequence[Turn]) -> float:
    return 1.0 if is_consistent(guess, turns) else 0.0


def information_reward(bits: float, n_candidates: int, guess_is_candidate: bool) -> float:
    """Expected bits normalised by the most a guess can give, log2(#candidates)."""
    if n_candidates <= 1:
        return 1.0 if guess_is_candidate else 0.0
    return max(0.0, min(1.0, bits / log2(n_candidates)))


def win_reward(guess: str, secret: str, guess_number: int, max_guesses: int, early_bonus: float) -> float:
    return 1.0 + early_bonus * (max_guesses - guess_number) if guess == secret else 0.0


def repeat_reward(guess: str, turns: Sequence[Turn]) -> float:
    return -1.0 if any(t.guess == guess for t in turns) else 0.0


def think_length_reward(think: str | None, target_chars: int) -> float:
    excess = max(0, len(think or "") - target_chars)
    return -min(1.0, excess / target_chars) if excess else 0.0


def valid_lower_bound(weights: RewardWeights, early_win_bonus: float, max_guesses: int = 6) -> float:
    """The lowest weighted sum any valid guess can get under `weights`."""
    ranges = component_ranges(early_win_bonus, max_guesses)
    return sum(getattr(weights, k) * ranges[k][0] for k in COMPONENTS)


def valid_upper_bound(weights: RewardWeights, early_win_bonus: float, max_guesses: int = 6) -> float:
    """The highest weighted sum any valid guess can get under `weights`."""
    ranges = component_ranges(early_win_bonus, max_guesses)
    return sum(getattr(weights, k) * ranges[k][1] for k in COMPONENTS)


def tier_offset(tier_index: int, gap: float, fit_margin: float = 1.0) -> float:
    """What the ordering adds for a tier: 0, gap, (1 + fit_margin) * gap."""
    return (0.0, gap, (1.0 + fit_margin) * gap)[tier_index]


def tier(components: dict[str, float]) -> int:
    """0 a repeated word, 1 a valid word that does not fit the feedback, 2 one that fits."""
    if components["repeat"] < 0:
        return 0
    return 2 if components["consistency"] >= 1.0 else 1


def tier_gap(weights: RewardWeights, early_win_bonus: float, max_guesses: int = 6) -> float:
    """Offset between tiers: wider than the whole range of valid weighted sums, so tiers never overlap."""
    return valid_upper_bound(weights, early_win_bonus, max_guesses) - valid_lower_bound(weights, early_win_bonus,
                                                                                      max_guesses) + 1.0


@dataclass
class RewardBreakdown:
    total: float
    components: dict[str, float]
    parsed: Parsed
    rejected_again: bool = False
    """The answer repeats one already rejected in this game (listed under `not words`)."""

    @property
    def valid(self) -> bool:
        return self.parsed.guess is not None

    @property
    def consistent(self) -> bool:
        """A valid guess that fits all feedback so far (never a repeat)."""
        return self.valid and self.components["consistency"] >= 1.0

    @property
    def repeated(self) -> bool:
        return self.valid and self.components["repeat"] < 0


@dataclass
class CandidateInfo:
    """Remaining candidates of a state and expected bits per guess word (filled by `information_bits`)."""

    candidates: list[str]
    bits: dict[str, float] = field(default_factory=dict)
    turns: tuple[Turn, ...] = ()
    values: dict[str, float] = field(default_factory=dict)

    def value(self, guess: str) -> float:
        """The guess's value for winning (`wordle_mlx.wordle.value` score; 0 when no answer fits), computed once."""
        if guess not in self.values:
            from wordle_mlx.wordle import value

            v = value.guess_value(self.turns, guess)
            self.values[guess] = 0.0 if v is None else v.score
        return self.values[guess]


def information_bits(turns: Sequence[Turn], guesses: Sequence[str]) -> CandidateInfo:
    """Candidates after `turns` and the expected bits of each distinct guess over them (MLX)."""
    from wordle_mlx.wordle import patterns

    candidates = patterns.candidate_words(turns)
    info = CandidateInfo(candidates, turns=tuple(turns))
    unique = sorted(set(guesses))
    if unique and len(candidates) > 1:
        bits = patterns.guess_entropies(candidates, guesses=unique)
        info.bits = {g: float(b) for g, b in zip(unique, bits)}
    return info


def is_rejected_again(parsed: Parsed, rejected: Collection[str]) -> bool:
    """The completion's answer is one of the game's rejected answers (case-insensitive; never an empty one)."""
    attempt = parsed.attempt.strip().upper()
    return parsed.guess is None and bool(attempt) and attempt in {r.strip().upper() for r in rejected}


def score_parsed(parsed: Parsed, state: GameState, weights: RewardWeights, config: RewardsConfig,
                 info: CandidateInfo, rejected: Collection[str] = ()) -> RewardBreakdown:
    """Weighted total and components for an already parsed completion; `rejected`: the game's answers
    already rejected as invalid (play_on_invalid)."""
    fmt = format_reward(parsed, config.strict_format)
    if parsed.guess is None:
        floor = valid_lower_bound(weights, config.early_win_bonus, state.max_guesses)
        components = {k: 0.0 for k in COMPONENTS}
        components["format"] = fmt
        again = is_rejected_again(parsed, rejected)
        total = floor - 1.25 if (again and config.rejected_again_lowest) else floor - 1.0 + 0.5 * fmt
        return RewardBreakdown(total, components, parsed, again)
    g, turns = parsed.guess, state.turns
    components = {
        "format": fmt,
        "feedback": feedback_reward(g, state.knowledge, turns),
        "consistency": consistency_reward(g, turns),
        "information": information_reward(info.bits.get(g, 0.0), len(info.candidates), g in info.candidates),
        "win": win_reward(g, state.secret, len(turns) + 1, state.max_guesses, config.early_win_bonus),
        "repeat": repeat_reward(g, turns),
        "think_length": think_length_reward(parsed.think, config.think_target_chars),
        "value": info.value(g) if weights.value > 0 else 0.0,  # only where it counts: a few ms a guess
    }
    wasted = (config.repeat_as_invalid and components["repeat"] < 0) or \
        (config.inconsistent_as_invalid and components["consistency"] < 1.0)
    if wasted:
        floor = valid_lower_bound(weights, config.early_win_bonus, state.max_guesses)
        return RewardBreakdown(floor - 1.0 + 0.5 * _FORMAT_BY_REASON["not_allowed"], components, parsed)
    total = sum(getattr(weights, k) * v for k, v in components.items())
    if config.ordering:
        total += tier_offset(tier(components), tier_gap(weights, config.early_win_bonus, state.max_guesses),
                             config.fit_margin)
    return RewardBreakdown(total, components, parsed)


def score_group(completions: Sequence[str], state: GameState, weights: RewardWeights | None = None,
                config: RewardsConfig | None = None, think: bool = True,
                rejected: Collection[str] = ()) -> list[RewardBreakdown]:
    """Score all completions sampled for one state (one MLX entropy call for the group);
    `think=False` when the answer layout has no think block; `rejected`: the game's answers already
    rejected as invalid (listed under `not words` in the prompt)."""
    config = config or RewardsConfig()
    weights = weights or config.weights
    parsed = [parse_completion(c, strict=config.strict_format, think=think) for c in completions]
    info = information_bits(state.turns, [p.guess for p in parsed if p.guess])
    return [score_parsed(p, state, weights, config, info, rejected) for p in parsed]


def score(completion: str, state: GameState, weights: RewardWeights | None = None,
          config: RewardsConfig | None = None, think: bool = True) -> RewardBreakdown:
    """Score one completion for the game `state` (the state before this guess)."""
    return score_group([completion], state, weights, config, think)[0]


class Curriculum:
    """Format-heavy weights until rolling format compliance reaches the threshold, then strategy-heavy."""

    def __init__(self, config: RewardsConfig):
        self.config = config
        self.recent: deque[bool] = deque(maxlen=config.window)
        self.switched = not config.curriculum

    @property
    def weights(self) -> RewardWeights:
        return self.config.weights if self.switched else self.config.format_weights

    @property
    def compliance(self) -> float:
        return sum(self.recent) / len(self.recent) if self.recent else 0.0

    def update(self, breakdowns: Sequence[RewardBreakdown]) -> bool:
        """Record the format compliance of new completions; returns True when this call switches."""
        self.recent.extend(b.components["format"] == 1.0 for b in breakdowns)
        if not self.switched and len(self.recent) == self.recent.maxlen and self.compliance >= self.config.switch_threshold:
            self.switched = True
            return True
        return False
