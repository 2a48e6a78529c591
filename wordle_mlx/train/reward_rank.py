"""How well a reward orders a group's sampled guesses the way winning does.

A group is one GRPO prompt: the turns so far and the completions sampled for it, each with the total
reward (and components) it got. The yardstick is each guess's value for winning
(`wordle_mlx.wordle.value`: the mean Wordle score when the `frequent` solver plays on after the guess,
over the candidates, the secret unseen). Per group with at least two different values:

* Kendall's tau-b between reward and value (1: the same order, 0: unrelated, -1: reversed);
* whether the reward's best sample is a best-value sample, and the value lost by playing the
  reward's best instead (regret, in score units: 1/6 = one turn sooner);
* the push: the value the update moves probability toward, sum_i A_i (v_i - mean v) / n with A the
  group-normalised reward advantages (> 0: the update favours guesses that win more).

Samples without a valid guess (or a repeat) get value 0, the score of a wasted turn that ends nothing
(a simplification: a wasted turn is worth less than a loss only through the turns it takes).
Reads `samples.jsonl` groups (train_rl logs `logging.samples_per_step` records a step: the first game's
first group); no model needed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from wordle_mlx.wordle import value as values
from wordle_mlx.wordle.game import Turn


@dataclass
class Group:
    turns: list[Turn]
    guesses: list[str | None]  # None: no valid new guess
    rewards: list[float]
    components: list[dict[str, float]]


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties in either variable allowed); None when either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), 1)
    dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
    n0 = len(i)
    tx, ty = np.sum(dx == 0), np.sum(dy == 0)
    if tx == n0 or ty == n0:
        return None
    return float(np.sum(dx * dy) / np.sqrt((n0 - tx) * (n0 - ty)))


def groups_from_samples(paths: Iterable[str | Path]) -> list[Group]:
    """The groups in train_rl samples.jsonl files: records of one step, game and state, in order."""
    out = []
    for path in paths:
        by_key: dict[tuple, list[dict]] = defaultdict(list)
        for line in Path(path).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                by_key[(r["step"], r["game"], json.dumps(r["turns"]))].append(r)
        for records in by_key.values():
            turns = [Turn(g, f) for g, f in records[0]["turns"]]
            played = {t.guess for t in turns}
            guesses = []
            for r in records:
                word = _guess(r["completion"]) if r["valid"] else None
                guesses.append(word if word not in played else None)
            out.append(Group(turns, guesses, [r["reward"] for r in records], [r["components"] for r in records]))
    return out


def _guess(completion: str) -> str | None:
    from wordle_mlx.play.prompts import parse_completion

    return parse_completion(completion, strict=False, think=False).guess


def guess_values(group: Group) -> list[float] | None:
    """Each sample's value score (0 without a valid new guess); None when no answer fits the turns."""
    out = []
    for g in group.guesses:
        if g is None:
            out.append(0.0)
            continue
        v = values.guess_value(group.turns, g)
        if v is None:
            return None
        out.append(v.score)
    return out


def agreement(groups: Sequence[Group], keys: Sequence[str] = ("total", "consistency", "information", "win")) -> dict:
    """Per ranking key (the total reward, or one component): mean tau-b, share of groups whose best sample is a
    best-value one, mean regret and mean push, over the groups where the values differ; and the group count."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in keys}
    used = 0
    for group in groups:
        v = guess_values(group)
        if v is None or len(set(v)) < 2:
            continue
        used += 1
        v = np.asarray(v)
        for key in keys:
            r = np.asarray(group.rewards if key == "total" else [c.get(key, 0.0) for c in group.components], float)
            tau = kendall_tau_b(r, v)
            best = r == r.max()
            regret = float(v.max() - v[best].mean())
            adv = (r - r.mean()) / (r.std() + 1e-4) if r.std() > 0 else np.zeros_like(r)
            push = float(np.mean(adv * (v - v.mean())))
            rows[key].append((np.nan if tau is None else tau, float(v[best].max() == v.max()), regret, push))
    out = {"groups": used}
    for key, vals in rows.items():
        a = np.array(vals) if vals else np.full((1, 4), np.nan)
        out[key] = {"tau_b": float(np.nanmean(a[:, 0])) if np.any(~np.isnan(a[:, 0])) else None,
                    "best_is_best_value": float(np.mean(a[:, 1])), "regret": float(np.mean(a[:, 2])),
                    "push": float(np.mean(a[:, 3])), "push_positive": float(np.mean(a[:, 3] > 0))}
    return out
