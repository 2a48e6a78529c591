"""Experiment trackers beside metrics.jsonl (`logging.report_to`): wandb, trackio or tensorboard.

metrics.jsonl and the PNG plots stay the source of truth. A tracker gets the resolved config once and,
every step, the same flat line metrics.jsonl gets, under the same names (numbers only: a text field
such as `curriculum` is left out), at the same step. Each is an optional extra
(`pip install -e ".[wandb]"`, `".[trackio]"`, `".[tensorboard]"`); naming one that is not installed
is one error line before the run starts.

* wandb: project `wordle-mlx`, the run directory's name as run name and id (a resumed run continues
  it), files under the run directory; offline unless WANDB_MODE says otherwise or WANDB_API_KEY is set
  (`wandb sync <run>/wandb/offline-run-*` uploads later).
* trackio: project `wordle-mlx`, local (its own cache; `trackio show` opens the dashboard).
* tensorboard: event files in `<run>/tensorboard` (tensorboardX), one scalar per metric.

Only rank 0 of a data-parallel run reports, as it alone writes metrics.jsonl.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Callable

TRACKERS = ("none", "wandb", "trackio", "tensorboard")
PROJECT = "wordle-mlx"
_PACKAGE = {"wandb": "wandb", "trackio": "trackio", "tensorboard": "tensorboardX"}


class TrackerError(RuntimeError):
    """A tracker that cannot start (one line)."""


def numbers(metrics: dict) -> dict[str, float]:
    """The metrics line's numeric fields (booleans and text left out), under their metrics.jsonl names."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _import(name: str):
    try:
        return importlib.import_module(_PACKAGE[name])
    except ImportError:
        raise TrackerError(f"logging.report_to: {name} is not installed (pip install -e \".[{name}]\", "
                           f"or report_to none)") from None


def require(name: str) -> None:
    """TrackerError now when `name` cannot be used, before a run spends time on data or a model."""
    if name in _PACKAGE:
        _import(name)


class Tracker:
    """One run's tracker: `log(metrics, step)` each step, `finish()` at the end (also after Ctrl-C)."""

    def __init__(self, log: Callable[[dict, int], None], finish: Callable[[], None]):
        self._log, self._finish = log, finish

    def log(self, metrics: dict, step: int) -> None:
        self._log(numbers(metrics), step)

    def finish(self) -> None:
        self._finish()


def open_tracker(name: str, run_dir: str | Path, config: dict) -> Tracker | None:
    """The tracker `name` for the run in `run_dir` (None for "none"). Raises TrackerError."""
    if name == "none":
        return None
    if name not in TRACKERS:
        raise TrackerError(f"logging.report_to: expected one of {', '.join(TRACKERS)}, got {name!r}")
    module = _import(name)
    run_dir = Path(run_dir)
    if name == "wandb":
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        run = module.init(project=PROJECT, name=run_dir.name, id=_wandb_id(run_dir.name), resume="allow",
                          dir=str(run_dir), config=config, mode=mode)
        return Tracker(lambda m, step: run.log(m, step=step), run.finish)
    if name == "trackio":
        module.init(project=PROJECT, name=run_dir.name, config=config, resume="allow")
        return Tracker(lambda m, step: module.log(m, step=step), module.finish)
    writer = module.SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def log(m: dict, step: int) -> None:
        for key, value in m.items():
            writer.add_scalar(key, value, step)
        writer.flush()
    return Tracker(log, writer.close)


def _wandb_id(run_name: str) -> str:
    """wandb run ids allow letters, digits, - and _ only."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in run_name)[:64]
