"""Play Wordle games with a solver policy and report win rate, guesses and histogram.

    python -m scripts.evaluate --policy entropy --split eval [--n N] [--seed S] [--json OUT]

Policies: random, consistent, entropy, optimal. Splits: eval (315), train (2,000), all (2,315).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx import evaluate, solvers
from wordle_mlx import words as wordlists


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", choices=solvers.POLICIES, required=True)
    parser.add_argument("--split", choices=wordlists.SPLITS, default="eval")
    parser.add_argument("--n", type=int, default=None, help="number of games (a seeded sample of the split; default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the sample of secrets and random policies")
    parser.add_argument("--json", type=Path, default=None, help="write the full report (with every game) here")
    args = parser.parse_args(argv)
    if args.n is not None and args.n < 1:
        parser.error(f"--n: expected a positive number of games, got {args.n}")
    if args.json is not None and args.json.parent and not args.json.parent.exists():
        parser.error(f"--json: directory {args.json.parent} does not exist")

    secrets = wordlists.sample_split(args.split, args.n, args.seed)
    policy = solvers.make_policy(args.policy, seed=args.seed)
    report = evaluate.evaluate(policy, secrets, split=args.split, seed=args.seed)

    from rich.console import Console

    Console().print(evaluate.report_table([report]))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
