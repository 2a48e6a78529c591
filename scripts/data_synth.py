"""Make synthetic training data from solvers: RL start states or SFT traces, as JSONL.

    python -m scripts.data_synth --mode rl  --n 2000 --split train --out data/rl_train.jsonl
    python -m scripts.data_synth --mode sft --n 1000 --split train --out data/sft_train.jsonl \\
        [--policy entropy|optimal] [--think scratchpad|count] [--think-max-chars 200] \\
        [--format plain|symbols|rows|compact] [--max-turns 4] [--min-turns 0] [--rejected-rate 0] [--seed 0]
    python -m scripts.data_synth --mode sft --n 50 --out data/teacher.jsonl \
        --teacher-endpoint http://127.0.0.1:8080 --teacher-model NAME [--api-key-env VAR] \
        [--concurrency 4] [--timeout 60] [--retries 3] [--max-tokens 256] [--think-max-chars 200]
    python -m scripts.data_synth --mode sft --n 2000 --from-games logs/train_play.json --out data/onpolicy.jsonl \
        [--policy frequent] [--think none] [--format compact]

Secrets come from the chosen split only; a train file never contains an eval answer.

With --from-games (a `scripts.evaluate --json` report of a model's games on the train split), the
states are the ones that model reached in its own games (its rejected answers and repeats
included), one record per distinct state, at most --n, each labelled with the --policy solver's guess
(DAgger's data step). Mix them with generated records by concatenating the files.

With --teacher-endpoint, --n is the number of games the teacher plays from the first guess; only its
valid guesses that fit all feedback so far become SFT records (its think text trimmed to
--think-max-chars). Interrupt it at any time: rerunning the same command continues with the games
not yet in OUT.games.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.play import prompts
from wordle_mlx.train import synth
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
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
    parser.add_argument("--min-turns", type=int, default=0, help="earlier turns per state: at least N")
    parser.add_argument("--rejected-rate", type=float, default=0.0, help="share of states listing earlier invalid answers")
    parser.add_argument("--repeat-rate", type=float, default=0.0,
                        help="share of states (with a turn) that replay one earlier guess")
    parser.add_argument("--mistake-style", choices=synth.MISTAKE_STYLES, default="random",
                        help="listed invalid answers: unrelated strings, or near misses of the target")
    parser.add_argument("--consistent-target-rate", type=float, default=0.0,
                        help="share of SFT targets that are a random answer still fitting, not the policy's word")
    parser.add_argument("--guess-style", choices=prompts.GUESS_STYLES, default="upper", help="CRANE, ' crane' or ' C R A N E'")
    parser.add_argument("--from-games", type=Path, metavar="REPORT",
                        help="--mode sft: states from a model's own games (scripts.evaluate --json, train split)")
    teacher = parser.add_argument_group("teacher model (OpenAI-compatible endpoint, --mode sft)")
    teacher.add_argument("--teacher-endpoint", metavar="URL")
    teacher.add_argument("--teacher-model", metavar="NAME")
    teacher.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the API key")
    teacher.add_argument("--concurrency", type=int, default=4, help="games (requests) in flight at once")
    teacher.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    teacher.add_argument("--retries", type=int, default=3, help="retries on 429/5xx/timeouts")
    teacher.add_argument("--max-tokens", type=int, default=256, help="teacher completion budget per turn")
    teacher.add_argument("--temperature", type=float, default=0.0)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n: expected a positive number of records, got {args.n}")
    if not 0 <= args.max_turns <= 5:
        parser.error(f"--max-turns: expected 0..5, got {args.max_turns}")
    if args.think_max_chars < 10:
        parser.error(f"--think-max-chars: expected at least 10, got {args.think_max_chars}")
    if not 0 <= args.min_turns <= args.max_turns:
        parser.error(f"--min-turns: expected 0..--max-turns ({args.max_turns}), got {args.min_turns}")
    if not 0.0 <= args.rejected_rate <= 1.0:
        parser.error(f"--rejected-rate: expected 0..1, got {args.rejected_rate}")
    if not 0.0 <= args.repeat_rate <= 1.0:
        parser.error(f"--repeat-rate: expected 0..1, got {args.repeat_rate}")
    if not 0.0 <= args.consistent_target_rate <= 1.0:
        parser.error(f"--consistent-target-rate: expected 0..1, got {args.consistent_target_rate}")
    if args.out.parent and not args.out.parent.exists():
        args.out.parent.mkdir(parents=True)
    if args.teacher_endpoint or args.teacher_model:
        return run_teacher(parser, args)
    if args.from_games is not None:
        return run_from_games(parser, args)

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
                                        args.think, args.think_max_chars, on_record=advance, min_turns=args.min_turns,
                                        rejected_rate=args.rejected_rate, guess_style=args.guess_style,
                                        repeat_rate=args.repeat_rate, mistake_style=args.mistake_style,
                                        consistent_target_rate=args.consistent_target_rate)
        with tmp.open("w") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.n} {args.mode} records ({args.split} split, seed {args.seed}) to {args.out}")
    return 0


def run_from_games(parser: argparse.ArgumentParser, args) -> int:
    from wordle_mlx.wordle import words

    if args.mode != "sft":
        parser.error("--from-games: SFT records from a model's games, expected --mode sft")
    try:
        report = json.loads(args.from_games.read_text())
        games = report["games"]
        [(g["secret"], g["guesses"], g["feedback"]) for g in games]  # noqa: B018
    except FileNotFoundError:
        parser.error(f"--from-games: {args.from_games} not found")
    except (ValueError, KeyError, TypeError):
        parser.error(f"--from-games: {args.from_games} is not a scripts.evaluate --json report with games")
    if report.get("split", "train") != args.split:
        parser.error(f"--from-games: {args.from_games} holds {report.get('split')} games, expected --split {args.split}")
    try:
        records = list(synth.onpolicy_records(games, args.split, args.format, args.policy, args.think,
                                              args.think_max_chars, args.guess_style))[: args.n]
    except words.EvalLeakError as err:
        print(f"error: --from-games {args.from_games}: {err}", file=sys.stderr)
        return 1
    tmp = args.out.with_name(args.out.name + ".partial")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, args.out)
    stuck = sum(1 for r in records if r.get("rejected") or len({t[0] for t in r["turns"]}) < len(r["turns"]))
    print(f"wrote {len(records)} sft records from {len(games)} games ({stuck} after a rejected answer or a repeat) "
          f"to {args.out}")
    return 0


def run_teacher(parser: argparse.ArgumentParser, args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from wordle_mlx.play import endpoint
    from wordle_mlx.train import teacher

    if args.mode != "sft" or not (args.teacher_endpoint and args.teacher_model):
        parser.error("teacher traces: use --mode sft with both --teacher-endpoint URL and --teacher-model NAME")
    if args.split != "train":
        parser.error("--split: teacher traces are training data, expected train")
    if args.concurrency < 1 or args.retries < 0 or args.timeout <= 0 or args.max_tokens < 1:
        parser.error("--concurrency >= 1, --retries >= 0, --timeout > 0 and --max-tokens >= 1 expected")
    games_file = Path(str(args.out) + ".games.jsonl")
    if args.out.exists() and not games_file.exists():
        print(f"error: {args.out} exists and is not an interrupted teacher run (no {games_file}); "
              "choose another --out", file=sys.stderr)
        return 1
    try:
        client = endpoint.ChatClient(args.teacher_endpoint, args.teacher_model,
                                     endpoint.api_key_from_env(args.api_key_env), args.timeout, args.retries,
                                     concurrency=args.concurrency)
        secrets = synth.secrets_for("train", args.n, args.seed)
        done = len(teacher.done_games(args.out))
        with Progress(TextColumn("[bold]teacher games"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
            task = bar.add_task("games", total=args.n, completed=done)
            totals = teacher.run_teacher(client, secrets, args.out, args.format, args.think_max_chars, args.max_tokens,
                                         args.temperature, on_game=lambda: bar.advance(task))
    except endpoint.EndpointError as err:
        print(f"error: {err}", file=sys.stderr)
        print(f"finished games are kept in {args.out}; rerun the same command to continue", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished games are kept in {args.out}; rerun the same command to continue",
              file=sys.stderr)
        return 130
    print(f"teacher {args.teacher_model}: {totals['games']} games ({totals['resumed_from']} from an earlier run), "
          f"{totals['wins']} won; kept {totals['kept']} turns as SFT records (dropped {totals['invalid']} invalid, "
          f"{totals['inconsistent']} inconsistent) in {args.out}")
    return 0


if __name__ == "__main__":
    run(main)
