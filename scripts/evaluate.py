"""Play Wordle games with a solver or a language model and report how it does.

    python -m scripts.evaluate --policy entropy --split eval [--n N] [--seed S] [--json OUT]
    python -m scripts.evaluate --model smollm2-135m-instruct [--adapter logs/sft/adapters] \\
        --split eval --n 100 [--temperature 0] [--max-tokens 64] [--format plain] [--json OUT]
    python -m scripts.evaluate --endpoint http://127.0.0.1:8080 --endpoint-model NAME [--api-key-env VAR] \\
        [--concurrency 4] [--timeout 60] [--retries 3] --split eval --n 100 [--json OUT]
    python -m scripts.evaluate --policy frequent --words my_words.txt [--n N]   # secrets of your own
    python -m scripts.evaluate --compare A.json B.json ...

Policies: random, consistent, frequent, candidate-entropy, entropy, optimal. Splits: eval (315), train (2,000), all (2,315);
--words FILE: one allowed word per line (any of the 12,972, not only the 2,315 answers); the report keeps its sha256.
The same --n and --seed give the same secrets for every policy and model. Models play greedily by
default, up to --games-at-once games (320) in one batch; an invalid guess costs the turn and the game goes on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.play import evaluate, prompts
from wordle_mlx.wordle import solvers
from wordle_mlx.play.endpoint import EndpointError
from wordle_mlx.wordle import words as wordlists
from scripts import make_parser, model_for_adapter, run

GAMES_AT_ONCE = 320  # games in one batch: the 315 eval words in one, a long list without running out of memory


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--policy", choices=solvers.POLICIES)
    who.add_argument("--model", help="built-in name, .gguf file, mlx-lm directory or HF id "
                     "(default with --adapter: the base model it records)")
    who.add_argument("--compare", nargs="+", type=Path, metavar="JSON", help="print saved reports side by side")
    who.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible server (base URL, .../v1 or .../chat/completions)")
    parser.add_argument("--endpoint-model", metavar="NAME", help="model name to request from --endpoint")
    parser.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the endpoint's API key")
    parser.add_argument("--concurrency", type=int, default=4, help="--endpoint: requests in flight at once")
    parser.add_argument("--timeout", type=float, default=60.0, help="--endpoint: seconds per request")
    parser.add_argument("--retries", type=int, default=3, help="--endpoint: retries on 429/5xx/timeouts")
    parser.add_argument("--adapter", help="LoRA adapter directory (e.g. adapters/recipe)")
    parser.add_argument("--label", help="column name in tables (default: policy or model[+adapter])")
    parser.add_argument("--split", choices=wordlists.SPLITS, default="eval")
    parser.add_argument("--words", type=Path, metavar="FILE", help="secrets from this file instead of a split: one "
                        "allowed word per line (blank lines and # comments skipped); --n/--seed sample from it")
    parser.add_argument("--n", type=int, default=None, help="number of games (a seeded sample of the split; default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the sample of secrets and random policies")
    parser.add_argument("--temperature", type=float, default=0.0, help="model sampling temperature (0 = greedy)")
    parser.add_argument("--max-tokens", type=int, default=64, help="model completion budget per turn")
    parser.add_argument("--format", choices=prompts.FORMATS, default=None,
                        help="prompt format for --model (default: the adapter run's, else plain)")
    parser.add_argument("--no-think", action="store_true",
                        help="answers are <guess>WORD</guess> only (default: the adapter run's layout)")
    parser.add_argument("--mask", choices=["none", "allowed", "allowed_new"], default=None,
                        help="legal-move mask on the <guess> span: allowed words, or allowed words not yet played "
                             "(default: the mask the adapter was trained with, else none)")
    parser.add_argument("--guided", action="store_true", help="the same as --mask allowed")
    parser.add_argument("--games-at-once", type=int, default=GAMES_AT_ONCE, metavar="N",
                        help=f"play at most N games in one batch (a model's memory grows with it: Gemma 3 270M "
                             f"masked, about 2 GB per 100 games; default {GAMES_AT_ONCE}, all 315 eval words at once)")
    parser.add_argument("--json", type=Path, default=None, help="write the full report (with every game) here")
    parser.add_argument("--markdown", action="store_true", help="--compare: print a markdown table (with training minutes)")
    args = parser.parse_args(argv)
    if args.n is not None and args.n < 1:
        parser.error(f"--n: expected a positive number of games, got {args.n}")
    if args.games_at_once < 1:
        parser.error(f"--games-at-once: expected a positive number of games, got {args.games_at_once}")
    if args.temperature < 0:
        parser.error(f"--temperature: expected >= 0, got {args.temperature}")
    words_file = None
    if args.words is not None:
        try:
            words_file = wordlists.parse_word_list(args.words.read_text(), f"--words {args.words}")
        except OSError as err:
            parser.error(f"--words: cannot read {args.words} ({err.strerror or err})")
        except wordlists.WordListError as err:
            parser.error(str(err))
    if args.json is not None and args.json.parent and not args.json.parent.exists():
        parser.error(f"--json: directory {args.json.parent} does not exist")
    if args.guided and args.mask not in (None, "allowed"):
        parser.error(f"--guided is --mask allowed; it cannot go with --mask {args.mask}")
    if args.adapter and not Path(args.adapter).is_dir():
        parser.error(f"--adapter: {args.adapter} does not exist" if not Path(args.adapter).exists()
                     else f"--adapter: {args.adapter} is a file, not an adapter directory")
    if args.adapter and (args.policy or args.compare or args.endpoint):
        parser.error("--adapter: goes with a model (--model, or the base model the adapter records)")
    if not (args.policy or args.compare or args.endpoint):
        if not (args.model or args.adapter):
            parser.error("one of --policy, --model (or --adapter), --compare, --endpoint is required")
        try:
            args.model = model_for_adapter(args.model, args.adapter)
        except ValueError as err:
            parser.error(str(err))
    if args.endpoint and not args.endpoint_model:
        parser.error("--endpoint: needs --endpoint-model NAME")
    if args.concurrency < 1 or args.retries < 0 or args.timeout <= 0:
        parser.error("--concurrency >= 1, --retries >= 0 and --timeout > 0 expected")

    from rich.console import Console

    console = Console()
    if args.compare:
        reports = []
        for path in args.compare:
            try:
                reports.append(json.loads(path.read_text()))
            except (OSError, ValueError) as err:
                print(f"error: --compare: cannot read report {path}: {err}", file=sys.stderr)
                return 1
            if not evaluate.is_report(reports[-1]):
                print(f"error: --compare: {path} is not an evaluation report (scripts.evaluate --json writes them)",
                      file=sys.stderr)
                return 1
        if args.markdown:
            print(evaluate.markdown_table(reports))
        else:
            console.print(evaluate.report_table(reports))
        if len(reports) == 2 and all("games" in r for r in reports):
            d = evaluate.paired_difference(*reports)
            if d["games"]:
                names = [str(r.get("label") or r["policy"].get("name", "?")) for r in reports]
                print(f"paired over {d['games']} shared secrets: won by {names[0]} only {d['only_a']}, "
                      f"by {names[1]} only {d['only_b']}, by both {d['both']} (exact McNemar p = {d['p_value']:.2g})")
                changed = d["only_a"] + d["only_b"]
                needed = evaluate.mcnemar_split_needed(changed) if d["p_value"] >= 0.05 else None
                if needed is not None:
                    print(f"  of {changed} games won by one only, p < 0.05 needs a split of {needed} / {changed - needed} "
                          f"or wider (a lift of {2 * needed - changed} wins)")
                c = evaluate.paired_consistency(*reports)
                if c["p_value"] is not None:
                    print(f"consistent guesses: {names[0]} {100 * c['rate_a']:.1f}%, {names[1]} {100 * c['rate_b']:.1f}% "
                          f"(paired permutation test over secrets, p = {c['p_value']:.2g})")
                f = evaluate.first_divergence(*reports)
                if f["diverged"]:
                    print(f"first different attempt ({f['diverged']} games; {f['identical']} identical): {names[1]}'s "
                          f"worth more in {f['b_higher']}, less in {f['b_lower']} (sign test p = {f['p_value']:.2g}; mean value {f['mean_a']:.3f} -> "
                          f"{f['mean_b']:.3f}; the frequent solver's word {f['a_frequent']} -> {f['b_frequent']})")
        return 0

    pool = words_file if words_file is not None else wordlists.split_words(args.split)
    where = f"--words {args.words}" if words_file is not None else f"the {args.split} split"
    if args.n is not None and args.n > len(pool):
        print(f"note: --n {args.n} is more than the {len(pool)} words of {where}: playing all {len(pool)}",
              file=sys.stderr)
    secrets = wordlists.sample_words(pool, args.n, args.seed)
    source = ({"split": None, "words_file": str(args.words), "words_sha256": wordlists.words_sha256(words_file),
               "words_size": len(words_file)} if words_file is not None else {"split": args.split})
    if args.model:
        from wordle_mlx.model import models
        from wordle_mlx.play.policy import load_policy

        try:
            policy = load_policy(args.model, args.adapter, fmt=args.format, think=False if args.no_think else None,
                                 mask=args.mask or ("allowed" if args.guided else None), temperature=args.temperature,
                                 max_tokens=args.max_tokens)
        except models.ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        fmt, think, mask = policy.fmt, policy.think, policy.mask
        label = args.label or (args.model + (f" + {evaluate.adapter_label(args.adapter)}" if args.adapter else ""))
        policy.label = label + (f" (mask {mask})" if mask != "none" and "mask" not in label else "")
        meta = {"model": args.model, "adapter": args.adapter, "max_tokens": args.max_tokens, "format": fmt,
                "think": think, "guided": mask != "none", "mask": mask,
                "training_minutes": evaluate.training_minutes(args.adapter)}
    elif args.endpoint:
        from wordle_mlx.play import endpoint

        try:
            client = endpoint.ChatClient(args.endpoint, args.endpoint_model, endpoint.api_key_from_env(args.api_key_env),
                                         args.timeout, args.retries, concurrency=args.concurrency)
        except endpoint.EndpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        fmt = args.format or "plain"
        label = args.label or f"{args.endpoint_model} @ {args.endpoint}"
        policy = endpoint.EndpointPolicy(client, fmt, args.temperature, args.max_tokens, label, think=not args.no_think)
        meta = {"endpoint": client.url, "endpoint_model": args.endpoint_model, "max_tokens": args.max_tokens,
                "format": fmt, "think": not args.no_think}
    else:
        policy = solvers.make_policy(args.policy, seed=args.seed)
        label, meta = args.label or args.policy, {}
    try:
        report = evaluate.evaluate(policy, secrets, **source, seed=args.seed, label=label, **meta,
                                   games_at_once=args.games_at_once)
    except EndpointError as err:  # an endpoint that dies mid-run: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.endpoint:
        report["endpoint_requests"], report["endpoint_retries"] = client.requests, client.retried
    console.print(evaluate.report_table([report]))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    run(main)
