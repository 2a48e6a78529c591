"""Command-line entry points: run each as `python -m scripts.NAME` from the repo root."""
