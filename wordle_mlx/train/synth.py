"""Synthetic data: RL start states and SFT traces made by solvers.

* RL states: a secret from one split plus 0..`max_turns` earlier turns (default 0-4), each played by
  a policy drawn from a mix (entropy-greedy, random consistent candidate, a plain valid word from
  the answer list), never already won: a guess that would win is replaced by another plain word.
* SFT examples: such a state, and as target the guess of a solver (`entropy`; `optimal`: the
  proven tree, which falls back to entropy-greedy off its own paths; `frequent`: the most common
  word that still fits; `candidate-entropy`: the best-splitting word that still fits), written in
  the exact answer format with a short think text that is true for the state.
* Data mix: the number of earlier turns is uniform in `min_turns..max_turns`; with probability
  `rejected_rate` a state also lists 1-2 earlier answers that were not valid words (a 4-letter word
  or a made-up string, as a model writes them), each of which cost a turn, so the model sees how a
  game goes on after its own mistakes. `mistake_style` says what they look like: `random` (the
  above, made from unrelated words) or `near` (the target with one letter changed into a string that
  is not a word, off the greens and the gray letters: the near miss a model that fits the feedback
  but not the lexicon writes, and then repeats when the `not words` line means nothing to it). With probability `repeat_rate` a state with at least one turn
  also holds one earlier guess played again (greedy models get stuck repeating a word that nearly
  fits; these states show the solver's way out). With probability `consistent_target_rate` the
  target is a uniformly random answer that still fits (the `consistent` solver, sharing the
  sampler's RNG) instead of the policy's word: frequent targets alone spell only the words that are
  some state's commonest candidate. The target is never a word already tried. `cap_copies` keeps
  each (prompt, answer) pair at most k times: with no earlier turn every state is the same opening.

Think styles:
* `scratchpad` (default): the constraints a small model cannot track silently, then why this word:
  `pattern ??LL? | has E O | not A C N R | E not 5, O not 2 | 3 fit | HELLO fits`
  (pattern = greens, has = letters in the word whose place is unknown, not = absent letters)
  or, for a probing word, `SLATE splits 12 into 9`.
* `count`: only `N words still fit` (what a failed probe used; kept for comparison).
* `none`: no think block at all, the answer is `<guess>WORD</guess>` (fewest tokens).

Guess style (`prompts.guess_text`): `upper` writes CRANE (SmolLM2 splits it into CR|AN|E); `word`
writes ` crane`, one whole-word token in most BPE vocabularies, so the model picks a word it knows
instead of spelling one; `letters` writes ` C R A N E`, one token per letter (the tokens of the
compact prompt's letter lists).
`think_max_chars` drops the least important scratchpad fields until the text fits.

Everything is seeded (`random.Random(seed)`) and reproducible. Train files never contain eval
secrets (`words.check_training_secrets`). No model imports; the solvers use the pattern table.
"""

from __future__ import annotations

import functools
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from wordle_mlx.wordle import solvers
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.wordle.game import GameState, Turn, filter_candidates, is_consistent, knowledge_from_history
from wordle_mlx.play.prompts import build_messages, format_completion

THINK_STYLES = ("scratchpad", "count", "none")
MISTAKE_STYLES = ("random", "near")
TARGET_POLICIES = ("entropy", "optimal", "frequent", "candidate-entropy")
PREFIX_MIX = (("entropy", 0.5), ("consistent", 0.3), ("plain", 0.2))


@dataclass
class ThinkField:
    text: str
    priority: int  # higher is kept longer when trimming


def scratchpad_fields(turns: Sequence[Turn], guess: str, n_candidates: int, splits: int | None,
                      guess_style: str = "upper") -> list[ThinkField]:
    """The scratchpad's fields for a state and the chosen guess (all true by construction)."""
    g = guess.lower() if guess_style == "word" else guess.upper()
    if not turns:
        return [ThinkField("no clues yet", 3), ThinkField(f"{n_candidates} possible", 1), ThinkField(f"open with {g}", 10)]
    k = knowledge_from_history(turns)
    fields = [ThinkField(f"pattern {k.pattern('?')}", 9)]
    if k.misplaced:
        fields.append(ThinkField("has " + " ".join(c.upper() for c in k.misplaced), 8))
    if k.absent:
        fields.append(ThinkField("not " + " ".join(sorted(c.upper() for c in k.absent)), 7))
    placed = [f"{c.upper()} not {','.join(str(p + 1) for p in sorted(pos))}" for c, pos in k.misplaced.items() if pos]
    if placed:
        fields.append(ThinkField(", ".join(placed), 5))
    fields.append(ThinkField(f"{n_candidates} fit", 4))
    if is_consistent(guess, turns):
        fields.append(ThinkField(f"{g} fits", 10))
    else:
        fields.append(ThinkField(f"{g} splits {n_candidates} into {splits}" if splits else f"{g} probes", 10))
    return fields


def think_text(turns: Sequence[Turn], guess: str, style: str = "scratchpad", max_chars: int = 200,
               guess_style: str = "upper") -> str | None:
    """A short, true think text for playing `guess` after `turns` (None for style `none`)."""
    if style == "none":
        return None
    candidates = filter_candidates(turns)
    if style == "count":
        return f"{len(candidates)} words still fit"
    if style != "scratchpad":
        raise ValueError(f"think style: expected one of {', '.join(THINK_STYLES)}, got {style!r}")
    splits = None
    if not is_consistent(guess, turns):
        from wordle_mlx.wordle.game import feedback

        splits = len({feedback(guess, c) for c in candidates})
    fields = scratchpad_fields(turns, guess, len(candidates), splits, guess_style)
    while len(fields) > 1 and len(" | ".join(f.text for f in fields)) > max_chars:
        fields.remove(min(fields, key=lambda f: f.priority))
    return " | ".join(f.text for f in fields)


class StateSampler:
    """Plays 0..max_turns earlier turns for a secret with a seeded mix of policies."""

    def __init__(self, seed: int = 0, max_turns: int = 4, min_turns: int = 0, rejected_rate: float = 0.0,
                 repeat_rate: float = 0.0):
        if not 0 <= min_turns <= max_turns <= 5:
            raise ValueError(f"turns: expected 0 <= min_turns <= max_turns <= 5, got {min_turns}..{max_turns}")
        if not 0.0 <= rejected_rate <= 1.0:
            raise ValueError(f"rejected_rate: expected 0..1, got {rejected_rate}")
        if not 0.0 <= repeat_rate <= 1.0:
            raise ValueError(f"repeat_rate: expected 0..1, got {repeat_rate}")
        self.repeat_rate = repeat_rate
        self.rng = random.Random(seed)
        self.min_turns, self.max_turns, self.rejected_rate = min_turns, max_turns, rejected_rate
        self.entropy = solvers.EntropyPolicy()
        self.consistent = solvers.ConsistentPolicy(seed=seed, table=self.entropy.table)
        self.consistent.rng = self.rng

    def _plain(self, state: GameState) -> str:
        answers = wordlists.answers()
        while True:
            word = answers[self.rng.randrange(len(answers))]
            if word != state.secret and word not in state.guesses:
                return word

    def sample(self, secret: str) -> GameState:
        state = GameState(secret)
        for _ in range(self.rng.randint(self.min_turns, self.max_turns)):
            name = self.rng.choices([n for n, _ in PREFIX_MIX], [w for _, w in PREFIX_MIX])[0]
            guess = self._plain(state) if name == "plain" else getattr(self, name).guess(state.turns)
            if guess == state.secret or guess in state.guesses:
                guess = self._plain(state)
            state = state.play(guess)
        # no extra draw when repeat_rate is 0, so earlier seeds make the same data
        if self.repeat_rate and state.turns and len(state.turns) < state.max_guesses - 1 \
                and self.rng.random() < self.repeat_rate:
            state = state.play(self.rng.choice(state.turns).guess)
        return state

    def mistakes(self, state: GameState, target: str | None = None, style: str = "random") -> list[str]:
        """0-2 invalid answers (uppercase) a model might have written before, if turns remain:
        `random` ones from unrelated words, or `near` misses of `target` (see the module docstring)."""
        room = state.max_guesses - len(state.turns) - 1
        if room <= 0 or self.rng.random() >= self.rejected_rate:
            return []
        out = []
        for _ in range(min(room, self.rng.randint(1, 2))):
            near = self._near_miss(state, target, out) if style == "near" and target else None
            if near:
                out.append(near)
                continue
            word = self._plain(state)
            if self.rng.random() < 0.5:
                bad = word[:4]  # a 4-letter answer, the commonest model mistake
            else:
                letters = list(word)
                self.rng.shuffle(letters)
                bad = "".join(letters)
            if wordlists.is_allowed(bad):
                bad = bad[:4]
            out.append(bad.upper())
        return out

    def _near_miss(self, state: GameState, target: str, taken: Sequence[str]) -> str | None:
        """`target` with one non-green letter changed to one not known gray, not a word (uppercase);
        the new letter is drawn as often as letters occur in the answer list."""
        k = knowledge_from_history(state.turns)
        places = [i for i in range(len(target)) if i not in k.greens]
        weights = _letter_weights()
        for _ in range(20):
            if not places:
                return None
            i = self.rng.choice(places)
            letters = [c for c in weights if c != target[i] and c not in k.absent]
            letter = self.rng.choices(letters, [weights[c] for c in letters])[0]  # E more often than Q
            bad = (target[:i] + letter + target[i + 1:]).upper()
            if not wordlists.is_allowed(bad.lower()) and bad not in taken:
                return bad
        return None


@functools.cache
def _letter_weights() -> dict[str, int]:
    """Letter -> how often it occurs in the answer list (alphabetical)."""
    return dict(sorted(Counter("".join(wordlists.answers())).items()))


def _turns_json(state: GameState) -> list[list[str]]:
    return [[t.guess, t.feedback] for t in state.turns]


def rl_records(secrets: Sequence[str], split: str, seed: int = 0, fmt: str = "plain", max_turns: int = 4,
               on_record: Callable[[], None] | None = None) -> Iterator[dict]:
    """One RL start state per secret (in order), as JSON-ready dicts."""
    sampler = StateSampler(seed, max_turns)
    for secret in secrets:
        state = sampler.sample(secret)
        yield {"secret": secret, "split": split, "turns": _turns_json(state),
               "messages": build_messages(state.turns, fmt), "format": fmt}
        if on_record:
            on_record()


def target_policy(name: str, table=None) -> solvers.Policy:
    """The SFT target solver by name (one of TARGET_POLICIES)."""
    if name not in TARGET_POLICIES:
        raise ValueError(f"policy: expected one of {', '.join(TARGET_POLICIES)}, got {name!r}")
    if name == "entropy":
        return solvers.EntropyPolicy(table=table)
    if name == "optimal":
        return solvers.OptimalTreePolicy(table=table)
    return solvers.CandidatePolicy("frequent" if name == "frequent" else "entropy", table=table)


def sft_records(secrets: Sequence[str], split: str, seed: int = 0, fmt: str = "plain", max_turns: int = 4,
                policy: str = "entropy", think_style: str = "scratchpad", think_max_chars: int = 200,
                on_record: Callable[[], None] | None = None, min_turns: int = 0,
                rejected_rate: float = 0.0, guess_style: str = "upper", repeat_rate: float = 0.0,
                mistake_style: str = "random", consistent_target_rate: float = 0.0) -> Iterator[dict]:
    """One SFT example per secret: state, solver target and a true think text; with probability
    `consistent_target_rate` the target is a uniformly random answer that still fits instead (policy
    `consistent`), so the examples spell more of the answer list than one solver's favourites."""
    if think_style not in THINK_STYLES:
        raise ValueError(f"think style: expected one of {', '.join(THINK_STYLES)}, got {think_style!r}")
    if mistake_style not in MISTAKE_STYLES:
        raise ValueError(f"mistake style: expected one of {', '.join(MISTAKE_STYLES)}, got {mistake_style!r}")
    if not 0.0 <= consistent_target_rate <= 1.0:
        raise ValueError(f"consistent_target_rate: expected 0..1, got {consistent_target_rate}")
    sampler = StateSampler(seed, max_turns, min_turns, rejected_rate, repeat_rate)
    target = target_policy(policy, table=sampler.entropy.table)
    for secret in secrets:
        state = sampler.sample(secret)
        # no extra draw when the rate is 0, so earlier seeds make the same data
        consistent = bool(consistent_target_rate) and sampler.rng.random() < consistent_target_rate
        # the target solvers draw nothing from the sampler's RNG; the consistent one shares it
        guess = (sampler.consistent if consistent else target).guess(state.turns)
        rejected = sampler.mistakes(state, guess, mistake_style)
        think = think_text(state.turns, guess, think_style, think_max_chars, guess_style)
        record = {"secret": secret, "split": split, "turns": _turns_json(state),
                  "messages": build_messages(state.turns, fmt, rejected=rejected),
                  "completion": format_completion(think, guess, guess_style),
                  "target": guess, "policy": "consistent" if consistent else policy, "think_style": think_style, "format": fmt}
        if rejected:
            record["rejected"] = rejected
        yield record
        if on_record:
            on_record()


def cap_copies(records: Sequence[dict], max_copies: int) -> list[dict]:
    """`records` in order, each (prompt, completion) pair kept at most `max_copies` times: the opening
    move (no earlier turn) is the same example in about one made state in eight, all but learnt early
    and a waste of steps after that."""
    if max_copies < 1:
        raise ValueError(f"max_copies: expected >= 1, got {max_copies}")
    seen: Counter = Counter()
    out = []
    for record in records:
        key = (json.dumps(record["messages"], sort_keys=True), record["completion"])
        seen[key] += 1
        if seen[key] <= max_copies:
            out.append(record)
    return out


def onpolicy_records(games: Sequence[dict], split: str = "train", fmt: str = "plain", policy: str = "frequent",
                     think_style: str = "none", think_max_chars: int = 200, guess_style: str = "upper",
                     table=None) -> Iterator[dict]:
    """One SFT example per distinct state a model reached in its own games (the `games` of a
    `scripts.evaluate --json` report): its earlier valid guesses with their feedback (repeats
    included) and its rejected answers listed as evaluation listed them, with the `policy` solver's
    guess there as target. DAgger's data step: the model's own states, a solver's labels; synthetic
    states rarely look like the ones a greedy model gets stuck in. `model_answer` keeps what it wrote."""
    if think_style not in THINK_STYLES:
        raise ValueError(f"think style: expected one of {', '.join(THINK_STYLES)}, got {think_style!r}")
    if split == "train":
        wordlists.check_training_secrets([g["secret"] for g in games])
    target = target_policy(policy, table=table)
    seen: set[str] = set()
    for game in games:
        turns: list[Turn] = []
        rejected: list[str] = []
        for answer, feedback in zip(game["guesses"], game["feedback"]):
            messages = build_messages(turns, fmt, rejected=rejected)
            key = messages[-1]["content"]
            if key not in seen:
                seen.add(key)
                guess = target.guess(turns)
                record = {"secret": game["secret"], "split": split, "turns": [[t.guess, t.feedback] for t in turns],
                          "messages": messages,
                          "completion": format_completion(think_text(turns, guess, think_style, think_max_chars,
                                                                     guess_style), guess, guess_style),
                          "target": guess, "policy": policy, "think_style": think_style, "format": fmt,
                          "model_answer": str(answer)}
                if rejected:
                    record["rejected"] = list(rejected)
                yield record
            if feedback is None:
                rejected.append(str(answer))
            else:
                turns.append(Turn(str(answer).lower(), feedback))


def secrets_for(split: str, n: int, seed: int = 0) -> list[str]:
    """`n` secrets drawn with replacement-free cycles from a split (seeded); train never sees eval."""
    pool = list(wordlists.split_words(split))
    rng = random.Random(f"{seed}-{split}-secrets")
    secrets: list[str] = []
    while len(secrets) < n:
        cycle = pool[:]
        rng.shuffle(cycle)
        secrets.extend(cycle[: n - len(secrets)])
    if split == "train":
        wordlists.check_training_secrets(secrets)
    return secrets
