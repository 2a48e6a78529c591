"""Benchmarks (not tests).

    python -m scripts.benchmark all [--only patterns,sft] [--json FILE]
    python -m scripts.benchmark patterns [--repeats 2] [--json FILE]
    python -m scripts.benchmark matmul [--repeats 3]
    python -m scripts.benchmark rewards
    python -m scripts.benchmark rollout [--config config/quickstart.json]
    python -m scripts.benchmark distributed [--config config/grpo_from_base.json] [--steps 2] [--games 2] [--set K=V]
    python -m scripts.benchmark update [--games 4] [--generations 8] [--max-tokens 64] [--json FILE]
    python -m scripts.benchmark sft [--examples 64] [--batch-size 16] [--json FILE]

`all`: patterns, rewards, compute (matmul, forward, generation in this process), rollout, one GRPO
step of config/quickstart.json, update and sft, one after another in one process; one summary line
each (a failing one says why, the others still run) and every figure in one JSON file (default
benchmarks-<device>.json; `--device cpu` on a GPU machine gives the same figures for its CPU).
The run to take to a new machine.

`update`: the GRPO update on the same sequences (default model, compact prompt, 4 games x 8
completions sampled by the model, random non-zero advantages) with the reference path (every
completion re-runs its group's prompt, full-vocabulary logits at every position) and the
shared-prompt path (each group's prompt once per chunk, logits at completion positions only):
seconds, training tokens/s, peak memory of each and `speedup` (old time / new time).

`sft`: SFT steps on the same 64 examples in the same order (frequent targets, no think text,
compact prompt, batch 16): reference loss, completion-only logits, completion-only + shared
prefix (the default): examples/min, tokens/s, peak memory, the loss of every step (equal), and
`speedup`; then partial depth (LoRA on all / the top 8 / the top 2 layers): pass time vs
forward-only time.

Every benchmark runs on a fresh checkout; `--json FILE` writes its figures (all, patterns, update, sft, groups).

`patterns`: the full 12,972 x 2,315 pattern table with our MLX kernel in every variant (device:
the CPU, and the GPU when there is one; eager or mx.compile; chunks of 512 or 4,096 guesses), the
whole table's partition counts (what opener entropies cost) by numpy bincount, MLX scatter-add
on each device and one-hot sums on a GPU, and a straightforward numpy table, in one run; names
what the package does here (`wordle math` in `scripts.doctor`) and the fastest variant, checks
every result bit-identical, and ends with `speed-up: N.Nx` (numpy table / the package's MLX
table). A variant projected from one slice to take over 20 s is reported, not run.

`matmul`: a float32 1024x1024 matmul and one 128-token forward pass of the default model
(float32 on the CPU) and a short greedy generation (tokens/s), each in a subprocess with the system OpenBLAS and one with MLX's bundled
BLAS (WORDLE_MLX_BLAS=0); prints both and the ratios.

`rollout`: one turn of 4 games x 8 generations of up to 64 tokens on the default model, the
trainer's batched forked-cache rollout vs one `mlx_lm.generate` call per sample (same prompts,
same run), ending with `speed-up: N.Nx`; then one real GRPO step with --config and its time
breakdown (prefill, decode, reward, log-prob recompute, backward, optimizer).

`distributed`: the same GRPO work (--steps steps of 2 x --games games) in one process and in two
processes under `mlx.launch --backend ring -n 2` on this machine; steps/s, generated tokens/s
(summed over ranks) and games/s for each, and the ratio.

`rewards`: scoring of 16 groups x 8 completions (one GRPO step's worth of a turn) in game states
made by data_synth.
"""

from __future__ import annotations

import argparse
import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("what", choices=["all", "patterns", "matmul", "rewards", "rollout", "distributed", "update", "sft",
                                             "groups"])
    parser.add_argument("--config", default=None,
                        help="config for the train step (rollout: config/quickstart.json; distributed: config/grpo_from_base.json); "
                        "groups: a GRPO config whose `rewards` section scores the groups (default: the default rewards)")
    parser.add_argument("--steps", type=int, default=2, help="distributed: GRPO steps per setting")
    parser.add_argument("--games", type=int, default=None,
                        help="distributed: games per process per step with 2 processes (2); update: game states (4)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="rollout, distributed, groups: config override")
    parser.add_argument("--repeats", type=int, default=None, help="best of N runs (default 2 patterns, 3 matmul)")
    parser.add_argument("--generations", type=int, default=8, help="update: completions per game")
    parser.add_argument("--max-tokens", type=int, default=64, help="update: longest sampled completion")
    parser.add_argument("--loss-batch-size", type=_rows, default=8,
                        help="update: sequences per chunk, or auto (sized by memory on this device)")
    parser.add_argument("--format", default=None, choices=["plain", "symbols", "rows", "compact"],
                        help="update, sft: prompt format (compact); groups: default from the adapter's run")
    parser.add_argument("--examples", type=int, default=64, help="sft: examples")
    parser.add_argument("--batch-size", type=_rows, default=16, help="sft: batch size, or auto (sized by memory)")
    parser.add_argument("--json", default=None, metavar="FILE", help="all, patterns, update, sft, groups: write the figures as JSON")
    parser.add_argument("--only", default=None, help="all: comma-separated subset, e.g. patterns,sft")
    parser.add_argument("--device", default=None, choices=["cpu", "gpu"],
                        help="all: run on this device (default: MLX's default; cpu on a GPU machine compares the two)")
    parser.add_argument("--adapter", default=None, help="groups: LoRA adapters to sample from (e.g. an SFT run's)")
    parser.add_argument("--temperatures", default="0.7,1.0,1.3", help="groups: comma-separated sampling temperatures")
    parser.add_argument("--group-sizes", default="8", help="groups: comma-separated group sizes")
    parser.add_argument("--states", type=int, default=32, help="groups: game states")
    parser.add_argument("--stuck-from", default=None, metavar="REPORT",
                        help="groups: states from an evaluate --json report where its model repeated a rejected answer")
    args = parser.parse_args(argv)
    args.format_given = args.format is not None
    args.format = args.format or "compact"
    for flag in ("games", "generations", "max_tokens", "loss_batch_size", "examples", "batch_size"):
        if getattr(args, flag) not in (None, "auto") and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')}: expected >= 1, got {getattr(args, flag)}")
    if args.what == "all":
        return all_benchmark(args, parser)
    if args.what == "update":
        return update_benchmark(args)
    if args.what == "sft":
        return sft_benchmark(args)
    if args.what == "groups":
        return groups_benchmark(args, parser)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {args.repeats}")
    if args.what == "matmul":
        return matmul(args.repeats or 3)
    if args.what == "rollout":
        return rollout_benchmark(args.config or "config/quickstart.json", args.set)
    if args.what == "distributed":
        return distributed_benchmark(args.config or "config/grpo_from_base.json", args.steps, args.games or 2, args.set)
    if args.what == "rewards":
        from wordle_mlx.benchmarks import benchmark_rewards

        r = benchmark_rewards()
        print(f"scored {r['groups']} groups x {r['generations']} completions in {r['seconds']:.3f} s: "
              f"{r['ms_per_group']:.1f} ms per group, {r['us_per_completion']:.0f} us per completion")
        return 0
    args.repeats = args.repeats or 2

    from wordle_mlx.benchmarks import benchmark_patterns

    r = benchmark_patterns(args.repeats)
    print(f"pattern table {r['shape'][0]} x {r['shape'][1]}, default device {r['device']} (best of {args.repeats}; "
          f"warm-ups excluded)")
    def took(c: dict) -> str:
        return f"{c['seconds']:6.2f} s" if "seconds" in c else f"not run, projected {c['projected_s']:.0f} s"

    for c in r["codes"]:
        print(f"  codes {c['device']:3s} {c['kernel']:8s} chunk {c['chunk']:5d}: {took(c)}  (warm-up {c['warmup_s']:.2f} s)")
    for c in r["counting"]:
        print(f"  counts {c['method']:8s} on the {c['device']}: {took(c)}")
    print(f"numpy table  : {r['numpy_s']:.2f} s")
    print(f"package here : table {r['mlx_s']:.2f} s ({r['mlx_kernel']}), counts {r['counting_s']:.2f} s "
          f"({r['counting_method']})")
    fc, fn = r["fastest_codes"], r["fastest_counting"]
    print(f"fastest      : table {fc.get('seconds', fc.get('projected_s')):.2f} s ({fc['kernel']} on the {fc['device']}, chunk {fc['chunk']}), "
          f"counts {fn.get('seconds', fn.get('projected_s')):.2f} s ({fn['method']} on the {fn['device']})")
    print(f"bit-identical: {'yes' if r['identical'] else 'NO'}")
    print(f"speed-up: {r['speedup']:.1f}x")
    if args.json:
        _write_json(args.json, r)
    return 0 if r["identical"] else 1


def rollout_benchmark(config: str, overrides: list[str]) -> int:
    from wordle_mlx.benchmarks import benchmark_rollout, benchmark_train_step
    from wordle_mlx.config import ConfigError
    from wordle_mlx.model.models import ModelLoadError
    from wordle_mlx.train.train_rl import TrainingError

    r = benchmark_rollout()
    print(f"trainer rollout : {r['rows']} rows, {r['ours_tokens']} tokens in {r['ours_s']:.1f} s "
          f"(prefill {r['prefill_s']:.1f} s, decode {r['decode_s']:.1f} s) = {r['ours_tps']:.1f} tok/s")
    print(f"mlx_lm.generate : {r['baseline_calls']} calls, {r['baseline_tokens']} tokens in {r['baseline_s']:.1f} s "
          f"= {r['baseline_tps']:.1f} tok/s")
    print(f"speed-up: {r['speedup']:.1f}x")
    try:
        m = benchmark_train_step(config, tuple(overrides))
    except (ConfigError, ModelLoadError, TrainingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if m["note"]:
        print(f"note: {m['note']}")
    parts = ["prefill", "decode", "reward", "logprob", "backward", "optimizer"]
    total = m["step_s"]
    print(f"one GRPO step ({config}): {total:.1f} s, {m['groups']} groups, {m['trained_sequences']} sequences trained, "
          f"{m['generated_tokens']} tokens generated")
    for p in parts:
        v = m[f"time_{p}_s"]
        print(f"  {p:10s} {v:7.2f} s  {100 * v / total:5.1f}%")
    other = total - sum(m[f"time_{p}_s"] for p in parts)
    print(f"  {'other':10s} {other:7.2f} s  {100 * other / total:5.1f}%")
    print(f"  memory: rollout peak {m['rollout_peak_memory_gb']:.2f} GiB, update peak {m['update_peak_memory_gb']:.2f} GiB, "
          f"active after the step {m['active_memory_gb']:.2f} GiB")
    return 0


def _write_json(path: str | None, figures: dict) -> None:
    if path:
        import json
        from pathlib import Path

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {path}")


def all_benchmark(args, parser) -> int:
    import mlx.core as mx

    from wordle_mlx.benchmarks import ALL, benchmark_all, summary_line

    only = tuple(n.strip() for n in args.only.split(",")) if args.only else ALL
    unknown = [n for n in only if n not in ALL]
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; expected some of {', '.join(ALL)}")
    if args.device == "gpu" and not (mx.metal.is_available() or (getattr(mx, "cuda", None) and mx.cuda.is_available())):
        parser.error("--device gpu: this MLX build has no GPU backend here (python -m scripts.doctor says why)")
    if args.device:
        mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    device = "gpu" if mx.default_device() == mx.gpu else "cpu"
    r = benchmark_all(only, on_start=lambda name: print(f"running {name} ...", flush=True))
    print(f"all benchmarks on {r['device']} (mlx {r['mlx']}, mlx-lm {r['mlx_lm']}) in {r['seconds']:.0f} s:")
    for name, entry in r["benchmarks"].items():
        print("  " + summary_line(name, entry))
    _write_json(args.json or f"benchmarks-{device}.json", r)
    return 1 if any("error" in e for e in r["benchmarks"].values()) else 0


def update_benchmark(args) -> int:
    from wordle_mlx.benchmarks import benchmark_update

    r = benchmark_update(games=args.games or 4, generations=args.generations, max_tokens=args.max_tokens,
                         prompt_format=args.format, loss_batch_size=args.loss_batch_size)
    print(f"GRPO update: {r['games']} games x {r['generations']} completions ({r['prompt_format']} prompt, "
          f"{r['mean_prompt_tokens']:.0f} prompt tokens, {r['mean_completion_tokens']:.1f} completion tokens on average), "
          f"chunks of {r['loss_batch_size']}")
    for label, name in (("old", "reference (whole rows, full logits)"), ("one_group", "one group per chunk"),
                        ("new", "groups packed per chunk (default)")):
        m = r[label]
        print(f"{label:9s}: {name:36s} {m['seconds']:7.2f} s  {m['training_tps']:7.1f} training tok/s  "
              f"{m['chunks']:3d} chunks x {m['groups_per_chunk']:.1f} groups, {m['forward_passes']:3d} forward passes  "
              f"{m['processed_tokens']:6d} tokens through the model  peak {m['peak_memory_gb']:.2f} GiB  loss {m['loss']:+.6f}")
    print(f"same update: largest adapter difference {r['max_adapter_difference']:.2e}")
    print(f"speedup over the reference: packed {r['speedup']:.2f}x, one group per chunk {r['speedup_one_group']:.2f}x")
    _write_json(args.json, r)
    return 0


def _rows(text: str) -> int | str:
    """A batch size: a number or 'auto'."""
    import argparse

    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got {text!r}") from None


def sft_benchmark(args) -> int:
    from wordle_mlx.benchmarks import benchmark_sft

    r = benchmark_sft(examples=args.examples, batch_size=args.batch_size, prompt_format=args.format)
    print(f"SFT: {r['examples']} examples ({r['policy']} targets, think {r['think_style']}, {r['prompt_format']} prompt: "
          f"{r['mean_prompt_tokens']:.0f} prompt + {r['mean_completion_tokens']:.1f} completion tokens), "
          f"{r['steps']} steps of {r['batch_size']}, shared prefix {min(r['shared_prefix_tokens'])}-"
          f"{max(r['shared_prefix_tokens'])} tokens")
    for label in ("old", "completion_only", "new"):
        m = r[label]
        print(f"{label:16s} {m['seconds']:7.2f} s  {m['examples_per_min']:7.1f} examples/min  {m['tokens_per_s']:6.1f} tok/s  "
              f"peak {m['peak_memory_gb']:.2f} GiB  mean loss {m['mean_loss']:.5f}")
    print(f"same losses: largest step-loss difference old vs new {r['max_loss_difference']:.2e}")
    print(f"speedup: {r['speedup']:.2f}x")
    print("partial depth (new path, LoRA on the top k layers): one pass over the same batches")
    for k, m in r["depth"].items():
        print(f"  k={k:>3s}: train {m['train_s']:6.2f} s, forward only {m['forward_s']:6.2f} s, "
              f"backward + update {m['backward_and_update_s']:6.2f} s")
    _write_json(args.json, r)
    return 0


def groups_benchmark(args, parser) -> int:
    from pathlib import Path

    from wordle_mlx.benchmarks import benchmark_group_signal

    try:
        temps = tuple(float(t) for t in args.temperatures.split(","))
        sizes = tuple(int(n) for n in args.group_sizes.split(","))
    except ValueError:
        parser.error("--temperatures / --group-sizes: expected comma-separated numbers, e.g. 0.7,1.0")
    if any(t <= 0 for t in temps) or any(n < 2 for n in sizes):
        parser.error("--temperatures: expected > 0; --group-sizes: expected >= 2")
    if args.adapter and not (Path(args.adapter) / "adapters.safetensors").exists():
        print(f"error: --adapter {args.adapter}: no adapters.safetensors there (train one with scripts.train_sft)",
              file=sys.stderr)
        return 1
    if args.stuck_from:
        import json

        try:
            games = json.loads(Path(args.stuck_from).read_text())["games"]
        except (OSError, ValueError, KeyError, TypeError):
            games = None
        if not isinstance(games, list):
            print(f"error: --stuck-from {args.stuck_from}: expected a report with games (scripts.evaluate --json)",
                  file=sys.stderr)
            return 1
    rewards_config = None
    if args.config or args.set:
        from wordle_mlx.config import ConfigError, load_config

        try:
            rewards_config = load_config(args.config, args.set).rewards
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    r = benchmark_group_signal(args.adapter, temps, sizes, args.states, args.format if args.format_given else None,
                               stuck_from=args.stuck_from, rewards_config=rewards_config)
    print(f"group signal: {r['states']} states, adapter {r['adapter']}, {r['prompt_format']} prompt")
    for m in r["runs"]:
        print(f"N={m['generations']:2d} T={m['temperature']:.2f}: groups with a fitting sample {100 * m['groups_with_consistent']:5.1f}%, "
              f"zero-variance {100 * m['zero_variance_groups']:5.1f}%, valid {100 * m['valid_rate']:5.1f}%, "
              f"fitting {100 * m['consistent_rate']:5.1f}%, repeats {100 * m['repeat_rate']:5.1f}%, "
              f"{m['distinct_guesses_per_group']:.1f} distinct words/group, groups with a valid sample "
              f"{100 * m['groups_with_valid']:5.1f}%, rejected again {100 * m['rejected_again_rate']:5.1f}% ({m['seconds']:.0f} s)")
    _write_json(args.json, r)
    return 0


def distributed_benchmark(config: str, steps: int, games: int, overrides: list[str]) -> int:
    from wordle_mlx.benchmarks import benchmark_distributed

    try:
        r = benchmark_distributed(config, steps, games, tuple(overrides))
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for label, m in r.items():
        print(f"{label:12s}: {m['games']} games in {m['wall_s']:.1f} s wall (with model loading); step {m['step_s']:.1f} s "
              f"= {m['steps_per_s']:.3f} steps/s, {m['games_per_s']:.3f} games/s, generation {m['generation_tps']:.1f} tok/s")
    one, two = r["1 process"], r["2 processes"]
    print(f"2 vs 1 process: steps/s x{two['steps_per_s'] / one['steps_per_s']:.2f}, "
          f"generated tok/s x{two['generation_tps'] / one['generation_tps']:.2f}")
    return 0


def matmul(repeats: int) -> int:
    from wordle_mlx.benchmarks import benchmark_blas

    r = benchmark_blas(repeats)
    for label in ("openblas", "bundled"):
        m = r[label]
        print(f"{label:9s}: {m['blas']}")
        print(f"           matmul 1024^2 f32 {m['matmul_s'] * 1e3:8.1f} ms ({m['matmul_gflops']:.1f} GFLOP/s), "
              f"forward {m['forward_tokens']} tokens {m['forward_s'] * 1e3:8.1f} ms")
        print(f"           generate: prompt {m['prompt_tps']:.1f} tok/s, decode {m['generation_tps']:.1f} tok/s "
              f"({m['generated']} tokens, batch 1)")
    print(f"matmul speed-up: {r['matmul_speedup']:.1f}x")
    print(f"forward speed-up: {r['forward_speedup']:.1f}x")
    print(f"decode speed-up: {r['generation_speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    run(main)
