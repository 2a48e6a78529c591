"""Copy a run's trained adapters into a standalone directory to ship (e.g. under `adapters/`).

    python -m scripts.export_adapters --adapter logs/recipe-grpo/adapters --out adapters/recipe [--dtype float16]

The weights are cast to --dtype (float16: half the file, what `adapters/` holds) and the prompt
format and think layout the adapters were trained with (read from the run's config.json) are stored
in adapter_config.json, so `scripts.play`, `scripts.evaluate` and `mlx_lm generate --adapter-path`
use the directory without the run beside it; so are the training minutes behind them (the run and
the runs it started from), which evaluation reports carry.

    python -m scripts.export_adapters --average RUN/kept/step_0130 RUN/kept/step_0140 RUN/kept/step_0150 --out DIR

writes one adapter whose weight update is the mean of the kept checkpoints' updates (exactly: a LoRA
of the summed rank; `lora.average_adapters`), with the training minutes of the latest of them, and
prints how far averaging the LoRA factors instead would land from that mean.

    python -m scripts.export_adapters --distances adapters/START RUN/kept/step_0010 RUN/kept/step_0020

prints how far apart their weight updates lie (Frobenius norm over all layers, relative to the first's
update: how far training moved from a start and between checkpoints) and, for three or more, the
cosines between successive increments (does the run keep a direction?). Writes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from scripts import make_parser, run


def run_base_model(adapter: Path) -> str | None:
    """The base model of the run the adapters come from (its config.json), for adapters saved before
    adapter_config.json recorded it."""
    try:
        return json.loads((adapter.parent / "config.json").read_text())["model"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def average(sources: list[Path], out: Path, dtype: str) -> int:
    from wordle_mlx.model import lora
    from wordle_mlx.play.evaluate import training_minutes

    minutes = [training_minutes(str(s)) for s in sources]
    try:
        out, gap = lora.average_adapters(sources, out, dtype, max(minutes) if None not in minutes else None)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rank = json.loads((out / lora.ADAPTER_CONFIG).read_text())["lora_parameters"]["rank"]
    size = (out / lora.ADAPTER_WEIGHTS).stat().st_size / 2**20
    print(f"wrote {out}: the mean of {len(sources)} adapters' weight updates (LoRA rank {rank}, {size:.1f} MB {dtype})")
    if gap is not None:
        print(f"averaging the LoRA factors instead would be {gap:.2g} off that mean (relative Frobenius norm)")
    return 0


def distances(paths: list[Path]) -> int:
    from wordle_mlx.model import lora

    try:
        gram = lora.update_gram(paths)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    names = [p.name for p in paths]
    width = max(len(n) for n in names)
    print(f"weight-update distances, relative to {names[0]}'s update norm")
    for name, row in zip(names, lora.gram_distances(gram)):
        print(f"{name:<{width}}  " + "  ".join(f"{d:7.2%}" for d in row))
    if len(paths) >= 3:
        steps = [f"{a.name}->{b.name}" for a, b in zip(paths, paths[1:])]
        width = max(len(s) for s in steps)
        print("cosines between successive increments (1: the same direction, ~0: a random walk's steps)")
        for step, row in zip(steps, lora.increment_cosines(gram)):
            print(f"{step:<{width}}  " + "  ".join(f"{c:+6.2f}" for c in row))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--adapter", type=Path, help="a run's adapters/ (or checkpoint/) directory")
    source.add_argument("--average", nargs="+", type=Path, metavar="DIR",
                        help="two or more adapter directories (e.g. a run's kept/step_NNNN) to average")
    source.add_argument("--distances", nargs="+", type=Path, metavar="DIR",
                        help="print how far apart these adapters' weight updates lie (relative to the first's)")
    parser.add_argument("--out", type=Path, help="the directory to write (not with --distances)")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    args = parser.parse_args(argv)

    from wordle_mlx.model import lora
    from wordle_mlx.play.evaluate import training_minutes
    from wordle_mlx.play.policy import run_answer_settings

    if args.distances:
        return distances(args.distances)
    if args.out is None:
        parser.error("--out is required")
    if args.average:
        return average(args.average, args.out, args.dtype)
    settings = run_answer_settings(args.adapter)
    if not settings:
        print(f"note: no run config beside {args.adapter}; the prompt format is not stored", file=sys.stderr)
    try:
        out = lora.export_adapters(args.adapter, args.out, args.dtype, settings, run_base_model(args.adapter),
                                   training_minutes(str(args.adapter)))
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = (out / lora.ADAPTER_WEIGHTS).stat().st_size / 2**20
    print(f"wrote {out} ({size:.1f} MB {args.dtype}; {', '.join(f'{k}={v}' for k, v in settings.items()) or 'no settings'})")
    return 0


if __name__ == "__main__":
    run(main)
