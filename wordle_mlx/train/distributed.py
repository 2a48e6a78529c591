"""Data parallelism over processes and machines with MLX's own distributed layer.

Launch the unchanged training command under `mlx.launch` (ring backend over TCP, or MPI):

    mlx.launch --backend ring -n 2 -- python -m scripts.train_rl --config config/quickstart.json

`World` wraps `mx.distributed.init()`; a plain `python -m ...` run is a world of size 1 and every
helper below is then a no-op, so a single process needs nothing extra.

Algorithm (both trainers): every rank builds the same step plan from the run seed (the GRPO start
states for the step, the SFT batch order), takes its own shard of it (rank r of n: games / batches
r, r + n, ...), computes its local gradient of a loss normalised by the *global* token count, and
the ranks average gradients with `mlx.nn.average_gradients`; the local loss is scaled by n first,
so the average is exactly the gradient of the loss over the union of all ranks' tokens (what one
process would compute on all the games). Identical start weights (same seed) and identical averaged
gradients keep the ranks' weights identical without broadcasting them. Metrics are reduced (counts
summed, rates recomputed from the sums, other values averaged); rank 0 alone writes logs,
samples and checkpoints. Every rank reads the same checkpoint on `--resume` (the run directory
must be visible to all ranks: a shared or copied folder on several machines).

Simplifications: no gradient compression or overlap of communication with compute; evaluation
during GRPO runs on rank 0 while the others wait at the next collective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import mlx.core as mx
import mlx.nn as nn

T = TypeVar("T")


@dataclass
class World:
    """The group of training processes (size 1 when not launched with mlx.launch)."""

    group: Any = None
    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of a list every rank holds in the same order (items r, r + n, ...)."""
        return list(items[self.rank :: self.size])

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks of a short list of numbers (float64 precision not kept)."""
        if self.size == 1:
            return [float(v) for v in values]
        total = mx.distributed.all_sum(mx.array([float(v) for v in values], dtype=mx.float32), group=self.group)
        return [float(v) for v in total.tolist()]

    def agree(self, ok: bool) -> bool:
        """True when every rank says ok (use it before work that needs all ranks, so one rank's
        error does not leave the others waiting forever)."""
        return self.all_sum([1.0 if ok else 0.0])[0] == self.size

    def average_gradients(self, grads):
        """mlx.nn.average_gradients over this world (identity for one process)."""
        if self.size == 1:
            return grads
        return nn.average_gradients(grads, group=self.group)


def init_world() -> World:
    """The launched group, or a world of one process."""
    group = mx.distributed.init()
    return World(group, group.rank(), group.size())


SUMMED = ("games", "wins", "groups", "zero_variance_groups", "resampled_groups", "games_ended_no_valid_guess",
          "rejected_answers", "groups_after_invalid_temperature", "samples_after_invalid", "samples_rejected_again",
          "trained_sequences", "trained_tokens", "generated_tokens", "tokens", "examples", "completion_tokens",
          "processed_tokens", "update_chunks", "groups_with_consistent", "tokens_per_s", "examples_per_s",
          "generation_tps", "training_tps", "masked_games", "masked_wins")  # throughputs add up: the ranks run at once


def reduce_metrics(metrics: dict, world: World, summed: Sequence[str] = SUMMED,
                   ratios: dict[str, tuple[str, str]] | None = None) -> dict:
    """Metrics of all ranks as one line: `summed` keys added, every other number averaged,
    `ratios` ({key: (numerator, denominator)}) recomputed from the summed counts."""
    if world.size == 1:
        return dict(metrics)
    keys = [k for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    totals = world.all_sum([metrics[k] for k in keys])
    out = dict(metrics)
    for k, total in zip(keys, totals):
        if k in summed:
            out[k] = int(round(total)) if isinstance(metrics[k], int) else total
        else:
            mean = total / world.size
            out[k] = int(mean) if isinstance(metrics[k], int) and mean == int(mean) else mean
    for key, (num, den) in (ratios or {}).items():
        if num in out and den in out:
            out[key] = out[num] / out[den] if out[den] else 0.0
    out["world_size"] = world.size
    return out
