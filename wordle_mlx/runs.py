"""Run directories shared by the trainers: create a new one (saving the resolved config) or reopen one to resume."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from wordle_mlx import checkpoint
from wordle_mlx.config import Config, ConfigError, load_config, save_config


def prepare_run(config: Config | None, resume: str | Path | None, prefix: str, error: type[Exception]) -> tuple[Config, Path]:
    """(config, run_dir): with `resume`, the run's saved config; else a new `logs_dir/run_name` directory.

    Raises `error` (one line) for a missing run, a broken saved config, or a new run whose
    directory already holds one.
    """
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.json").exists():
            raise error(f"--resume: {run_dir} is not a run directory (no config.json)")
        try:
            return load_config(run_dir / "config.json"), run_dir
        except ConfigError as err:
            raise error(str(err)) from None
    name = config.logging.run_name or prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(config.logging.logs_dir) / name
    if checkpoint.exists(run_dir) or (run_dir / "metrics.jsonl").exists():
        raise error(f"run directory {run_dir} already has a run; pass --resume {run_dir} or another run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.json")
    return config, run_dir
