"""Plot a training run (GRPO: cumulative wins, rolling win rate, reward components, skipped groups,
loss; SFT: train and held-out loss), and/or guess histograms from evaluate reports.

    python -m scripts.plot_cumulative_wins --file logs/RUN/metrics.jsonl [--out PNG] [--window 10] [--x minutes]
    python -m scripts.plot_cumulative_wins --eval A.json B.json --out docs/histogram.png
    python -m scripts.plot_cumulative_wins --study A.json B.json ... --out docs/study.png
    python -m scripts.plot_cumulative_wins --curve RUN/eval/step_*.json [--start S.json ...] --out curve.png

--curve plots the evaluations of a run's kept checkpoints (training.keep_adapters_every) against the
run's training minutes, with the start's reports at 0. --study plots each model report's win rate and consistent-guess rate against the training minutes
behind its adapter (read from the adapter's run, SFT + GRPO chained).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wordle_mlx import plots
from scripts import make_parser, run


def _read_report(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise plots.PlotError(f"cannot read report {path}: {err}") from None


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--file", type=Path, help="a train_rl metrics.jsonl")
    parser.add_argument("--eval", nargs="+", type=Path, metavar="JSON", help="scripts.evaluate --json reports")
    parser.add_argument("--study", nargs="+", type=Path, metavar="JSON", help="model reports: rates vs training minutes")
    parser.add_argument("--curve", nargs="+", type=Path, metavar="JSON", help="reports of a run's kept checkpoints")
    parser.add_argument("--start", nargs="+", type=Path, default=[], metavar="JSON", help="--curve: the start's reports")
    parser.add_argument("--out", type=Path, help="PNG path (default: next to the input)")
    parser.add_argument("--window", type=int, default=10, help="rolling window in steps (default 10)")
    parser.add_argument("--title", default=None)
    parser.add_argument("--x", choices=plots.X_AXES, default="step", help="x axis of a training plot (default step)")
    args = parser.parse_args(argv)
    if not args.file and not args.eval and not args.study and not args.curve:
        parser.error("--file: required (or --eval / --study / --curve JSON ...)")
    if args.window < 1:
        parser.error(f"--window: expected >= 1, got {args.window}")
    try:
        if args.file:
            out = args.out if (args.out and not args.eval) else args.file.with_name("training.png")
            metrics = plots.read_metrics(args.file)
            plot = plots.plot_sft if "train_loss" in metrics[0] else plots.plot_training
            print(f"wrote {plot(metrics, out, args.window, args.title, args.x)}")
        if args.eval:
            reports = [_read_report(p) for p in args.eval]
            out = args.out or args.eval[0].with_name("histogram.png")
            print(f"wrote {plots.plot_histograms(reports, out, args.title)}")
        if args.curve:
            reports, starts = [_read_report(p) for p in args.curve], [_read_report(p) for p in args.start]
            out = args.out or args.curve[0].with_name("curve.png")
            print(f"wrote {plots.plot_curve(reports, out, starts, args.title)}")
        if args.study:
            from wordle_mlx.play.evaluate import training_minutes

            reports = [_read_report(p) for p in args.study]
            for r in reports:
                r.setdefault("training_minutes", training_minutes(r.get("adapter")))
            out = args.out or args.study[0].with_name("study.png")
            print(f"wrote {plots.plot_study(reports, out, args.title)}")
    except plots.PlotError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
