"""How well the reward orders each logged group's guesses the way winning does (wordle_mlx.train.reward_rank).

    python -m scripts.reward_rank --samples logs/RUN/samples.jsonl [more.jsonl ...] [--json OUT]

Per ranking (the total reward and its components): Kendall's tau-b against each guess's value for
winning (the frequent solver's mean score after it), how often the reward's best sample is a best-value
one, the value lost by playing it instead, and the push of the group's advantages toward value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--samples", nargs="+", type=Path, required=True, metavar="JSONL", help="train_rl samples.jsonl")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    for path in args.samples:
        if not path.is_file():
            parser.error(f"--samples: {path} does not exist")
    from wordle_mlx.train import reward_rank

    try:
        result = reward_rank.agreement(reward_rank.groups_from_samples(args.samples))
    except (ValueError, KeyError) as err:
        print(f"error: --samples: not a train_rl samples.jsonl ({err})", file=sys.stderr)
        return 1
    print(f"{result['groups']} groups whose guesses differ in value")
    print(f"{'ranked by':<12} {'tau-b':>6} {'best=best value':>16} {'regret':>7} {'push':>7} {'push > 0':>8}")
    for key, r in result.items():
        if key == "groups":
            continue
        tau = "-" if r["tau_b"] is None else f"{r['tau_b']:+.2f}"
        print(f"{key:<12} {tau:>6} {100 * r['best_is_best_value']:>15.0f}% {r['regret']:>7.3f} {r['push']:>+7.3f} "
              f"{100 * r['push_positive']:>7.0f}%")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
