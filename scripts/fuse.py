"""Fuse LoRA adapters into the base model and save a standalone mlx-lm model.

    python -m scripts.fuse --model smollm2-135m-instruct --adapter logs/run/adapters --out fused/

Prints the largest logit difference between the adapter model and the fused model on a check
prompt (float bases: ~1e-5; quantized bases are re-quantized, so expect a larger difference
unless --dequantize-output is given).
"""

from __future__ import annotations

import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.model import models
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--model", default=models.DEFAULT_MODEL, help="built-in name, .gguf, mlx-lm dir or HF id")
    parser.add_argument("--adapter", required=True, help="directory with adapters.safetensors + adapter_config.json")
    parser.add_argument("--out", required=True, help="output directory for the fused model")
    parser.add_argument("--dequantize-base", default="auto", choices=models.DEQUANTIZE_CHOICES,
                        help="built-in/GGUF base: float copy or quantized (default auto: float32 on CPU)")
    parser.add_argument("--dequantize-output", action="store_true", help="save the fused model in float")
    args = parser.parse_args(argv)
    try:
        result = models.fuse_to_directory(args.model, args.adapter, args.out, args.dequantize_base, args.dequantize_output)
    except (models.ModelLoadError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"fused model saved to {result['out_dir']}")
    print(f"max |logit(fused) - logit(adapters)| = {result['max_abs_logit_diff']:.3g} "
          f"(max |logit| {result['max_abs_logit']:.3g})")
    return 0


if __name__ == "__main__":
    run(main)
