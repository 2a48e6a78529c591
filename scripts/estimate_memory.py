"""Estimate the memory of one GRPO step for a config: weights, LoRA, optimizer, KV caches, activations.

    python -m scripts.estimate_memory --config config/FILE.json [--set training.loss_batch_size=2]
"""

from __future__ import annotations

import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.config import ConfigError, load_config
from scripts import make_parser, run


def _mb(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--config", default=None, help="JSON/YAML run config (default: built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, repeatable")
    args = parser.parse_args(argv)
    from wordle_mlx.model import memory, models

    try:
        config = load_config(args.config, args.set)
        arch, est = memory.estimate_for_config(config)
    except (ConfigError, models.ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    from rich.console import Console
    from rich.table import Table

    s, t = config.sampling, config.training
    table = Table(title=f"memory estimate: {config.model.name}")
    table.add_column("component")
    table.add_column("size", justify="right")
    table.add_column("from")
    table.add_row("weights", _mb(est.weights), f"{arch.layers} layers, hidden {arch.hidden}, vocab {arch.vocab}")
    table.add_row("LoRA parameters", _mb(est.lora), f"{est.lora_parameters:,} params (rank {config.lora.rank}), float32")
    table.add_row("LoRA gradients", _mb(est.lora_grads), "same shape as LoRA")
    table.add_row("AdamW state", _mb(est.optimizer), "m and v")
    table.add_row("KV caches (rollout)", _mb(est.kv_caches),
                  f"{t.games_per_step} games x {s.num_generations} generations x {est.sequence_tokens} tokens "
                  f"(allocated in steps of {memory.KV_STEP})")
    table.add_row("sampling logits", _mb(est.sampling_logits), f"{est.rollout_rows} rows x vocab")
    if t.shared_prompt:
        table.add_row("training activations", _mb(est.train_activations),
                      f"{min(est.loss_batch_size, est.rollout_rows)} completions x {s.max_new_tokens} tokens after "
                      f"{s.max_prompt_tokens}-token prompts per loss chunk (shared prompt; chunks of "
                      f"{est.loss_batch_size}{' = auto on ' + memory.backend() if t.loss_batch_size == 'auto' else ''})")
    else:
        table.add_row("training activations", _mb(est.train_activations),
                      f"{min(est.loss_batch_size, est.rollout_rows)} sequences x {est.sequence_tokens} tokens per loss chunk")
    table.add_row("[bold]rollout peak", _mb(est.rollout_peak), "weights + LoRA + KV + logits")
    table.add_row("[bold]training peak", _mb(est.train_peak), "weights + LoRA + grads + AdamW + activations")
    table.add_row("[bold]run peak", _mb(est.peak), "the larger of the two")
    Console().print(table)
    return 0


if __name__ == "__main__":
    run(main)
