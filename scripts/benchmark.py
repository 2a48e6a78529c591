"""Benchmarks (not tests).

    python -m scripts.benchmark patterns [--repeats 2]

`patterns`: the full 12,972 x 2,315 pattern table with our MLX kernel as the package runs it
(CPU: eager, chunks spread over one stream per core; GPU: mx.compile), the other kernel variant
for reference, and a straightforward numpy implementation, in one run; ends with
`speed-up: N.Nx` (numpy time / MLX time).
"""

from __future__ import annotations

import argparse
import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["patterns"])
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs (default 2)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats: expected >= 1, got {args.repeats}")

    from wordle_mlx.benchmarks import benchmark_patterns

    r = benchmark_patterns(args.repeats)
    print(f"pattern table {r['shape'][0]} x {r['shape'][1]} on {r['device']} (best of {args.repeats})")
    print(f"mlx ({r['mlx_kernel']}): {r['mlx_s']:.2f} s (warm-up {r['mlx_warmup_s']:.2f} s, excluded)")
    print(f"mlx ({r['mlx_other_kernel']}, for reference): {r['mlx_other_s']:.2f} s")
    print(f"numpy        : {r['numpy_s']:.2f} s")
    print(f"bit-identical: {'yes' if r['identical'] else 'NO'}")
    print(f"speed-up: {r['speedup']:.1f}x")
    return 0 if r["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
