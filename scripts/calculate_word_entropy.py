"""Compute the full pattern table (allowed x answers) with MLX, save it and the opener entropies.

    python -m scripts.calculate_word_entropy [--out DIR] [--top 10]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.wordle import patterns
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--out", type=Path, default=None, help=f"output directory (default: {patterns.data_home()})")
    parser.add_argument("--top", type=int, default=10, help="how many best openers to print (default 10)")
    args = parser.parse_args(argv)
    if args.top < 0:
        parser.error(f"--top: expected a non-negative number, got {args.top}")
    out = args.out if args.out is not None else patterns.data_home()
    if out.exists() and not out.is_dir():
        parser.error(f"--out: {out} exists and is not a directory")

    from rich.console import Console
    from rich.table import Table

    console = Console()
    with console.status("computing 12,972 x 2,315 pattern codes with MLX ..."):
        start = time.perf_counter()
        table = patterns.compute_pattern_table()
        seconds = time.perf_counter() - start
    try:
        table_path = patterns.save_pattern_table(table, out / patterns.TABLE_FILE)
        openers = patterns.compute_opener_entropies(table)
        openers_path = patterns.save_opener_entropies(openers, out / patterns.OPENERS_FILE)
    except OSError as err:
        print(f"error: cannot write to {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    console.print(f"pattern table {table.shape[0]} x {table.shape[1]} uint8 in {seconds:.2f}s -> {table_path}")
    console.print(f"opener entropies -> {openers_path}")
    view = Table(title=f"top {args.top} openers", caption=f"uniform prior over {table.shape[1]} answers")
    view.add_column("rank", justify="right")
    view.add_column("word")
    view.add_column("bits", justify="right")
    for rank, (word, bits) in enumerate(openers[: args.top], 1):
        view.add_row(str(rank), word, f"{bits:.4f}")
    console.print(view)
    return 0


if __name__ == "__main__":
    run(main)
