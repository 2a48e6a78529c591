"""Convert a GGUF file (llama architecture; Q4_0/Q4_1/Q8_0/F16/F32) into an mlx-lm model directory.

    python -m scripts.import_gguf FILE.gguf --out DIR [--dequantize float32]
"""

from __future__ import annotations

import sys
import time

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.model import gguf
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("file", help="the .gguf file")
    parser.add_argument("--out", required=True, help="output mlx-lm model directory")
    parser.add_argument("--dequantize", choices=["float32", "bfloat16", "float16"], default=None,
                        help="expand quantized tensors to this float type (default: keep them quantized)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = gguf.convert_gguf(args.file, args.out, dequantize=args.dequantize)
    except gguf.GGUFError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"converted {args.file} -> {out} in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    run(main)
