"""GRPO training of a LoRA adapter to play Wordle.

    python -m scripts.train_rl --config config/quickstart.json [--set training.steps=20 ...]
    python -m scripts.train_rl --resume logs/RUN_DIR

Writes logs/<run>/config.json, metrics.jsonl (one line per step), samples.jsonl, checkpoint/
(adapters + optimizer + counters; Ctrl-C saves one) and adapters/ at the end.
"""

from __future__ import annotations

import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.config import ConfigError, load_config
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--config", help="JSON or YAML run config")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, repeatable")
    parser.add_argument("--resume", help="continue the run in this directory from its checkpoint (with --set: "
                        "only a new length, checkpoint, eval or logging keys)")
    args = parser.parse_args(argv)
    if not args.config and not args.resume:
        parser.error("--config: required (or --resume RUN_DIR)")
    from wordle_mlx.model import models
    from wordle_mlx.train import runs, train_rl

    try:
        if args.resume:
            runs.apply_resume_overrides(args.resume, args.set, train_rl.TrainingError)
        config = load_config(args.config, args.set) if args.config else load_config(None)
        train_rl.train(config, resume=args.resume)
    except (ConfigError, train_rl.TrainingError, models.ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
