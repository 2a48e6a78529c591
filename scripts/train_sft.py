"""SFT warm-up: teach the answer format and solver moves with LoRA before GRPO.

    python -m scripts.train_sft --config config/sft_lora_config.json [--set sft.iters=100 ...]
    python -m scripts.train_sft --resume logs/RUN_DIR

Writes logs/<run>/config.json, sft_train.jsonl / sft_valid.jsonl (when generated), metrics.jsonl,
checkpoint/ and adapters/ (mlx-lm format; use as model.adapter_path for train_rl or evaluate).
"""

from __future__ import annotations

import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.config import ConfigError, load_config
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--config", help="JSON or YAML config (sections model, lora, sampling, sft, training, logging)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override, repeatable")
    parser.add_argument("--resume", help="continue the run in this directory from its checkpoint (with --set: "
                        "only a new length, checkpoint, eval or logging keys)")
    args = parser.parse_args(argv)
    if not args.config and not args.resume:
        parser.error("--config: required (or --resume RUN_DIR)")
    from wordle_mlx.model import models
    from wordle_mlx.train import runs, sft, train_rl
    from wordle_mlx.wordle.words import EvalLeakError

    try:
        if args.resume:
            runs.apply_resume_overrides(args.resume, args.set, sft.SFTError)
        config = load_config(args.config, args.set) if args.config else load_config(None)
        sft.train(config, resume=args.resume)
    except (ConfigError, sft.SFTError, train_rl.TrainingError, models.ModelLoadError, EvalLeakError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
