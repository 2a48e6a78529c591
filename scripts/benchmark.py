"""Benchmarks (not tests).

    python -m scripts.benchmark patterns [--repeats 2]
    python -m scripts.benchmark matmul [--repeats 3]
    python -m scripts.benchmark rewards
    python -m scripts.benchmark rollout [--config config/quickstart.json]
    python -m scripts.benchmark distributed [--config config/grpo_from_base.json] [--steps 2] [--games 2] [--set K=V]

`patterns`: the full 12,972 x 2,315 pattern table with our MLX kernel as the package runs it
(CPU: eager, chunks spread over one stream per core; GPU: mx.compile), the other kernel variant
for reference, and a straightforward numpy implementation, in one run; ends with
`speed-up: N.Nx` (numpy time / MLX time).

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["patterns", "matmul", "rewards", "rollout", "distributed"])
    parser.add_argument("--config", default=None,
                        help="config for the train step (rollout: config/quickstart.json; distributed: config/grpo_from_base.json)")
    parser.add_argument("--steps", type=int, default=2, help="distributed: GRPO steps per setting")
    parser.add_argument("--games", type=int, default=2, help="distributed: games per process per step with 2 processes")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="distributed: config override")
    parser.add_argument("--repeats", type=int, default=None, help="best of N runs (default 2 patterns, 3 matmul)")
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {args.repeats}")
    if args.what == "matmul":
        return matmul(args.repeats or 3)
    if args.what == "rollout":
        return rollout_benchmark(args.config or "config/quickstart.json")
    if args.what == "distributed":
        return distributed_benchmark(args.config or "config/grpo_from_base.json", args.steps, args.games, args.set)
    if args.what == "rewards":
        from wordle_mlx.benchmarks import benchmark_rewards

        r = benchmark_rewards()
        print(f"scored {r['groups']} groups x {r['generations']} completions in {r['seconds']:.3f} s: "
              f"{r['ms_per_group']:.1f} ms per group, {r['us_per_completion']:.0f} us per completion")
        return 0
    args.repeats = args.repeats or 2

    from wordle_mlx.benchmarks import benchmark_patterns

    r = benchmark_patterns(args.repeats)
    print(f"pattern table {r['shape'][0]} x {r['shape'][1]} on {r['device']} (best of {args.repeats})")
    print(f"mlx ({r['mlx_kernel']}): {r['mlx_s']:.2f} s (warm-up {r['mlx_warmup_s']:.2f} s, excluded)")
    print(f"mlx ({r['mlx_other_kernel']}, for reference): {r['mlx_other_s']:.2f} s")
    print(f"numpy        : {r['numpy_s']:.2f} s")
    print(f"bit-identical: {'yes' if r['identical'] else 'NO'}")
    print(f"speed-up: {r['speedup']:.1f}x")
    return 0 if r["identical"] else 1


def rollout_benchmark(config: str) -> int:
    from wordle_mlx.benchmarks import benchmark_rollout, benchmark_train_step

    r = benchmark_rollout()
    print(f"trainer rollout : {r['rows']} rows, {r['ours_tokens']} tokens in {r['ours_s']:.1f} s "
          f"(prefill {r['prefill_s']:.1f} s, decode {r['decode_s']:.1f} s) = {r['ours_tps']:.1f} tok/s")
    print(f"mlx_lm.generate : {r['baseline_calls']} calls, {r['baseline_tokens']} tokens in {r['baseline_s']:.1f} s "
          f"= {r['baseline_tps']:.1f} tok/s")
    print(f"speed-up: {r['speedup']:.1f}x")
    m = benchmark_train_step(config)
    parts = ["prefill", "decode", "reward", "logprob", "backward", "optimizer"]
    total = m["step_s"]
    print(f"one GRPO step ({config}): {total:.1f} s, {m['groups']} groups, {m['trained_sequences']} sequences trained, "
          f"{m['generated_tokens']} tokens generated")
    for p in parts:
        v = m[f"time_{p}_s"]
        print(f"  {p:10s} {v:7.2f} s  {100 * v / total:5.1f}%")
    other = total - sum(m[f"time_{p}_s"] for p in parts)
    print(f"  {'other':10s} {other:7.2f} s  {100 * other / total:5.1f}%")
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
    sys.exit(main())
