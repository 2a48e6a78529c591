"""How much of a GRPO step's gradient is signal: the gradient noise scale, measured game by game.

McCandlish et al. (2018), "An Empirical Model of Large-Batch Training". At fixed weights, games are
played exactly as training steps play them (the config's start states, sampling, mask, rewards and
group advantages, in batches of `training.games_per_step`), and the policy gradient of each game's
sequences is taken as the update takes it (the same loss; no clipping, no optimizer step), divided
by the mean completion tokens per game, so that a step of B games follows the mean of B such
per-game gradients h_1..h_B. With G the expected gradient and S the covariance of one game's h:

    E <h_i, h_j> = |G|^2 (i != j),      E |h_i|^2 = |G|^2 + tr S
    |G|^2 ~ mean over pairs <h_i, h_j>,  tr S ~ mean |h_i|^2 - |G|^2,  B_noise = tr S / |G|^2

B_noise is the number of games per step at which a step's gradient holds as much signal as noise:
a step of B games has B / (B + B_noise) of its expected squared norm in the mean gradient. In the
paper's model, reaching a given loss takes S_min (1 + B_noise / B) steps of B examples, so a run
at B << B_noise needs about B_noise / B times the steps it would need at large batches.
Standard errors are leave-one-game-out jackknife estimates.

Simplifications: only the N x N Gram matrix of the per-game gradients is kept; a game's gradient is
scaled by the mean tokens per game, not by its step's token total (the same up to that step's
count); LoRA parameters only. Adam's step is not the gradient: B_noise says how much of the
gradient is signal, not how far the optimizer moves along it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from wordle_mlx.config import Config
from wordle_mlx.play import rollout
from wordle_mlx.train import grpo, rewards


@dataclass
class NoiseScale:
    games: int
    signal: float  # |G|^2, the squared norm of the expected per-game gradient
    signal_se: float  # its jackknife standard error
    noise: float  # tr S, the per-game gradient's total variance
    b_noise: float  # tr S / |G|^2 games (inf when the signal estimate is not above zero)
    b_noise_low: float  # B_noise at the signal + 2 se
    b_noise_high: float  # B_noise at the signal - 2 se (inf when that is not above zero)
    mean_cosine: float  # mean cosine between two games' gradients

    def signal_fraction(self, games_per_step: int) -> float:
        """The share of a step's expected squared gradient norm that is the mean gradient."""
        return 0.0 if math.isinf(self.b_noise) else games_per_step / (games_per_step + self.b_noise)

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in asdict(self).items()}


def _signal_and_noise(gram: np.ndarray) -> tuple[float, float]:
    n = len(gram)
    diagonal = float(np.trace(gram)) / n
    signal = (float(gram.sum()) - n * diagonal) / (n * (n - 1))
    return signal, diagonal - signal


def _b_noise(noise: float, signal: float) -> float:
    return noise / signal if signal > 0 else math.inf


def noise_scale(gram: np.ndarray) -> NoiseScale:
    """The noise scale from the Gram matrix (N, N) of N >= 3 per-game gradients."""
    gram = np.asarray(gram, dtype=np.float64)
    n = len(gram)
    if gram.shape != (n, n) or n < 3:
        raise ValueError(f"noise scale: needs the Gram matrix of at least 3 games, got shape {gram.shape}")
    signal, noise = _signal_and_noise(gram)
    keep = [np.delete(np.arange(n), i) for i in range(n)]
    leave_one_out = np.array([_signal_and_noise(gram[np.ix_(k, k)])[0] for k in keep])
    se = float(np.sqrt((n - 1) / n * np.sum((leave_one_out - leave_one_out.mean()) ** 2)))
    norms = np.sqrt(np.clip(np.diag(gram), 0, None))
    i, j = np.triu_indices(n, 1)
    both = (norms[i] > 0) & (norms[j] > 0)
    cosines = gram[i, j][both] / (norms[i] * norms[j])[both]
    return NoiseScale(games=n, signal=signal, signal_se=se, noise=noise, b_noise=_b_noise(noise, signal),
                      b_noise_low=_b_noise(noise, signal + 2 * se), b_noise_high=_b_noise(noise, signal - 2 * se),
                      mean_cosine=float(cosines.mean()) if len(cosines) else 0.0)


def _flat(grads: dict | None, size: int) -> mx.array:
    if grads is None:  # every advantage of the game was zero: no gradient
        return mx.zeros((size,), dtype=mx.float32)
    return mx.concatenate([v.astype(mx.float32).reshape(-1) for _, v in tree_flatten(grads)])


def game_gradients_gram(model, tokenizer, config: Config, games: int, settings: grpo.UpdateSettings,
                        pad_id: int = 0, seed: int = 0,
                        on_batch: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, dict]:
    """Play `games` games in batches of training.games_per_step at the model's current weights, as
    training steps play them, and return the Gram matrix (games, games) of their per-game gradients
    (each divided by the mean completion tokens per game) with counts: tokens, games_with_gradient,
    wins. `seed` picks the start states and the sampling (any seed: the weights stay fixed)."""
    from wordle_mlx.train.train_rl import StartStates, play_step

    size = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    starts = StartStates(config.model_copy(update={"training": config.training.model_copy(update={"seed": seed})}))
    curriculum = rewards.Curriculum(config.rewards)
    flats: list[mx.array] = []
    tokens: list[int] = []
    wins = 0
    batch = 0
    while len(flats) < games:
        batch += 1
        mx.random.seed(seed * 1_000_003 + batch)
        states = starts.for_step(batch)[: games - len(flats)]
        played = play_step(model, tokenizer, states, config, curriculum, {"reward_s": 0.0}, rollout.RolloutStats())
        wins += sum(g.won for g in played["games"])
        for g in range(len(states)):
            seqs = [s for s, i in zip(played["seqs"], played["seq_games"]) if i == g]
            grads, n = grpo.policy_gradient(model, seqs, settings, pad_id, normalizer=1.0)
            flat = _flat(grads, size)
            mx.eval(flat)
            flats.append(flat)
            tokens.append(n)
        if on_batch is not None:
            on_batch(len(flats), games)
    stacked = mx.stack(flats)  # (games, parameters)
    gram = np.array(stacked @ stacked.T, dtype=np.float64)
    mean_tokens = max(float(np.mean(tokens)), 1.0)
    return gram / mean_tokens**2, {"tokens": int(sum(tokens)), "games_with_gradient": int(sum(t > 0 for t in tokens)),
                                   "wins": wins}
