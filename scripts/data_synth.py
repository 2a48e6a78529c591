"""Make synthetic training data from solvers: RL start states or SFT traces, as JSONL.

    python -m scripts.data_synth --mode rl  --n 2000 --split train --out data/rl_train.jsonl
    python -m scripts.data_synth --mode sft --n 1000 --split train --out data/sft_train.jsonl \\
        [--policy entropy|optimal] [--think scratchpad|count] [--think-max-chars 200] \\
        [--format plain|symbols|rows] [--max-turns 4] [--seed 0]

Secrets come from the chosen split only; a train file never contains an eval answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx import prompts, synth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["rl", "sft"], required=True)
    parser.add_argument("--n", type=int, required=True, help="number of records")
    parser.add_argument("--split", choices=["train", "eval"], default="train")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=prompts.FORMATS, default="plain", help="prompt format")
    parser.add_argument("--max-turns", type=int, default=4, help="earlier turns per state: 0..N (default 4)")
    parser.add_argument("--policy", choices=synth.TARGET_POLICIES, default="entropy", help="SFT target solver")
    parser.add_argument("--think", choices=synth.THINK_STYLES, default="scratchpad", help="SFT think style")
    parser.add_argument("--think-max-chars", type=int, default=200)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n: expected a positive number of records, got {args.n}")
    if not 0 <= args.max_turns <= 5:
        parser.error(f"--max-turns: expected 0..5, got {args.max_turns}")
    if args.think_max_chars < 10:
        parser.error(f"--think-max-chars: expected at least 10, got {args.think_max_chars}")
    if args.out.parent and not args.out.parent.exists():
        args.out.parent.mkdir(parents=True)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    secrets = synth.secrets_for(args.split, args.n, args.seed)
    tmp = args.out.with_name(args.out.name + ".partial")
    with Progress(TextColumn(f"[bold]{args.mode} records"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task("records", total=args.n)
        advance = lambda: bar.advance(task)  # noqa: E731
        if args.mode == "rl":
            records = synth.rl_records(secrets, args.split, args.seed, args.format, args.max_turns, on_record=advance)
        else:
            records = synth.sft_records(secrets, args.split, args.seed, args.format, args.max_turns, args.policy,
                                        args.think, args.think_max_chars, on_record=advance)
        with tmp.open("w") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.n} {args.mode} records ({args.split} split, seed {args.seed}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
