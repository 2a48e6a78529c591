"""How much of a GRPO step's gradient is signal (wordle_mlx.train.noise_scale).

    python -m scripts.noise_scale --config config/grpo_gemma_long.json [--adapter DIR] [--games 32]
        [--seed 1] [--json OUT]

Plays --games games at the adapters' fixed weights (default: the config's model.adapter_path), as the
config's training steps play them, takes each game's policy gradient, and prints the gradient noise
scale B_noise: the games per step at which a step's gradient is as much signal as noise, and the
signal's share of one step of the config's games_per_step.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.config import ConfigError, load_config
from scripts import make_parser, run


def _games(value: str) -> int:
    import argparse

    if not value.isdigit() or int(value) < 3:
        raise argparse.ArgumentTypeError(f"needs a whole number of at least 3 games, not {value!r}")
    return int(value)


def _b(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--config", required=True, help="the GRPO run config (JSON or YAML)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, repeatable")
    parser.add_argument("--adapter", help="measure at these adapters (default: the config's model.adapter_path)")
    parser.add_argument("--games", type=_games, default=32, help="games played, each one gradient (at least 3)")
    parser.add_argument("--seed", type=int, default=1, help="start states and sampling")
    parser.add_argument("--json", type=Path, help="write the figures and the Gram matrix here")
    args = parser.parse_args(argv)
    from rich.progress import Progress

    from wordle_mlx.model import models
    from wordle_mlx.train import noise_scale, train_rl

    try:
        overrides = args.set + ([f"model.adapter_path={args.adapter}"] if args.adapter else [])
        config = load_config(args.config, overrides)
        model, tokenizer = train_rl.load_policy_model(config)
        settings = train_rl.update_settings(config, model, train_rl.kl_reference_adapters(model, config))
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        start = time.perf_counter()
        with Progress(transient=True) as bar:
            task = bar.add_task("games played, gradients taken", total=args.games)
            gram, counts = noise_scale.game_gradients_gram(
                model, tokenizer, config, args.games, settings, pad_id, args.seed,
                on_batch=lambda done, total: bar.update(task, completed=done))
        result = noise_scale.noise_scale(gram)
    except (ConfigError, train_rl.TrainingError, models.ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    b = config.training.games_per_step
    print(f"{config.model.adapter_path or 'fresh adapters'}: {result.games} games ({counts['wins']} won, "
          f"{counts['games_with_gradient']} with a gradient), {time.perf_counter() - start:.0f} s")
    z = f", z {result.signal / result.signal_se:.1f}" if result.signal_se > 0 else ""
    print(f"signal |G|^2 {result.signal:.4g} (se {result.signal_se:.2g}{z})  "
          f"noise tr S {result.noise:.4g}  mean cosine of two games' gradients {result.mean_cosine:+.4f}")
    print(f"B_noise {_b(result.b_noise)} games (signal +- 2 se: {_b(result.b_noise_low)} - {_b(result.b_noise_high)}); "
          f"a step of {b} games is {100 * result.signal_fraction(b):.1f}% signal")
    if args.json:
        args.json.write_text(json.dumps({"config": args.config, "adapter": config.model.adapter_path, "seed": args.seed,
                                         "games_per_step": b, **counts, **result.to_dict(),
                                         "gram": gram.tolist()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
