"""The whole recipe in one command: SFT from the base model, GRPO from its adapters, both players on the
eval words (free and under the GRPO mask), plots and summary.json, all in one folder.

    python -m scripts.recipe --out logs/recipe-gpu [--sft config/recipe_gpu_sft.json] \\
        [--grpo config/recipe_gpu_grpo.json] [--eval-words 315] [--set-sft KEY=VALUE] [--set-grpo KEY=VALUE]

The default configs are sized for one GPU (4x the CPU recipe's SFT tokens, 2x its GRPO games); on a
2-core CPU they take about a day. The same command continues a cut-short recipe (finished stages are
skipped, a training run resumes from its checkpoint). Ship `OUT/adapters` with `OUT/eval_*.json`.
"""

from __future__ import annotations

import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.config import ConfigError, load_config
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--out", required=True, help="the recipe's folder (runs, adapters, reports, plots)")
    parser.add_argument("--sft", default="config/recipe_gpu_sft.json", help="SFT config (default: %(default)s)")
    parser.add_argument("--grpo", default="config/recipe_gpu_grpo.json", help="GRPO config (default: %(default)s)")
    parser.add_argument("--eval-words", type=int, default=315, help="greedy games on this many eval words (default all 315)")
    parser.add_argument("--set-sft", action="append", default=[], metavar="KEY=VALUE", help="override in the SFT config")
    parser.add_argument("--set-grpo", action="append", default=[], metavar="KEY=VALUE", help="override in the GRPO config")
    args = parser.parse_args(argv)
    if not 1 <= args.eval_words <= 315:
        parser.error(f"--eval-words: expected 1..315, got {args.eval_words}")
    from wordle_mlx.model import models
    from wordle_mlx import recipe
    from wordle_mlx.train import runs, sft, train_rl

    try:
        sft_config = load_config(args.sft, args.set_sft)
        grpo_config = load_config(args.grpo, args.set_grpo)
        recipe.run(sft_config, grpo_config, args.out, args.eval_words)
    except runs.Interrupted as stop:  # rerunning this command continues the stage it stopped in
        again = " ".join([runs.python_command(), "-m", "scripts.recipe", *(argv if argv is not None else sys.argv[1:])])
        raise runs.Interrupted(stop.run_dir, stop.step, again) from None
    except (ConfigError, sft.SFTError, train_rl.TrainingError, models.ModelLoadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
