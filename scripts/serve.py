"""Serve a model (with an adapter) on the OpenAI-compatible chat API: mlx-lm's server, OpenBLAS first.

    python -m scripts.serve --model smollm2-135m-instruct [--adapter-path adapters/recipe] [--port 8080]
                            [any other mlx_lm.server flag]

`python -m mlx_lm server` never imports wordle_mlx, so on Linux it runs on MLX's bundled reference
BLAS (8-40x slower on the CPU). This command loads OpenBLAS, resolves `--model` the way every
wordle-mlx command does (a built-in name, a .gguf file, an mlx-lm directory or a Hugging Face id),
checks `--adapter-path`, and hands everything to mlx-lm's server with the same flags. Bad input is
one error line. Use it with `scripts.evaluate --endpoint http://127.0.0.1:8080/v1 --endpoint-model ...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from scripts import make_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--model", default=None, help="built-in name, .gguf, mlx-lm directory or HF id "
                        "(default: the default built-in model)")
    parser.add_argument("--adapter-path", default=None, help="LoRA adapters (mlx-lm format: adapter_config.json)")
    parser.add_argument("--dequantize", default="auto", help="for built-in names and .gguf files (default auto)")
    args, rest = parser.parse_known_args(argv)

    from wordle_mlx.model import models

    try:
        model = models.resolve_model_path(args.model or models.DEFAULT_MODEL, args.dequantize)
        if args.adapter_path is not None and not (Path(args.adapter_path) / "adapter_config.json").is_file():
            raise models.ModelLoadError(f"--adapter-path: {args.adapter_path} has no adapter_config.json "
                                        "(expected an mlx-lm adapter directory)")
    except models.ModelLoadError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    from mlx_lm import server

    sys.argv = ["python -m scripts.serve", "--model", model]
    sys.argv += ["--adapter-path", args.adapter_path] if args.adapter_path else []
    sys.argv += rest
    server.main()
    return 0


if __name__ == "__main__":
    run(main)
