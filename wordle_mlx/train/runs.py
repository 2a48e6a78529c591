"""Run directories shared by the trainers: create a new one (saving the resolved config) or reopen one to resume.

Also what the trainers share around a run's life: `Interrupted` (raised once Ctrl-C or SIGTERM has
been turned into a saved checkpoint), `trim_logs` (on resume, the JSONL logs are cut back to the
checkpoint's step: a run killed after logging step k and before checkpointing it would otherwise
log step k twice) and `discard_if_empty` (a run that failed before its first step leaves no
directory behind).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

from wordle_mlx.train import checkpoint
from wordle_mlx.config import Config, ConfigError, load_config, save_config
from wordle_mlx.train.distributed import World


def prepare_run(config: Config | None, resume: str | Path | None, prefix: str, error: type[Exception],
                world: World | None = None) -> tuple[Config, Path]:
    """(config, run_dir): with `resume`, the run's saved config; else a new `logs_dir/run_name` directory.

    Raises `error` (one line) for a missing run, a broken saved config, or a new run whose
    directory already holds one. Under several processes (`world`) rank 0 alone creates the
    directory; the timestamped default name is rank 0's, and every rank raises if rank 0 could not.
    """
    world = world or World()
    if world.size == 1:
        return _resume(resume, error) if resume is not None else _new_run(config, prefix, error)
    if resume is None and not config.logging.run_name:  # every rank uses rank 0's timestamp
        now = datetime.now()
        day, clock = world.all_sum([int(now.strftime("%y%m%d")) if world.is_main else 0,
                                    int(now.strftime("%H%M%S")) if world.is_main else 0])  # < 2**24: exact
        config = config.model_copy(update={"logging": config.logging.model_copy(
            update={"run_name": f"{prefix}20{int(day):06d}-{int(clock):06d}"})})
    result, problem = None, None
    try:
        if resume is not None:
            result = _resume(resume, error)  # every rank reads the saved config
        elif world.is_main:
            result = _new_run(config, prefix, error)
        else:
            result = (config, Path(config.logging.logs_dir) / config.logging.run_name)
    except error as err:  # type: ignore[misc]
        problem = err
    if not world.agree(problem is None):  # one rank's error must not leave the others waiting
        raise problem or error("another process could not prepare the run directory (see its error)")
    return result


def _resume(resume: str | Path, error: type[Exception]) -> tuple[Config, Path]:
    run_dir = Path(resume)
    if not (run_dir / "config.json").exists():
        raise error(f"--resume: {run_dir} is not a run directory (no config.json)")
    try:
        return load_config(run_dir / "config.json"), run_dir
    except ConfigError as err:
        raise error(str(err)) from None


def _new_run(config: Config, prefix: str, error: type[Exception]) -> tuple[Config, Path]:
    name = config.logging.run_name or prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(config.logging.logs_dir) / name
    if checkpoint.exists(run_dir) or (run_dir / "metrics.jsonl").exists():
        raise error(f"run directory {run_dir} already has a run; pass --resume {run_dir} or another run_name")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.json")
    return config, run_dir


RESUMABLE = ("training.steps", "training.checkpoint_every", "training.eval_every", "training.final_eval_games",
             "training.final_eval_start", "training.memory_limit_gb", "training.loss_batch_size", "sft.iters",
             "sft.checkpoint_every", "sft.eval_every", "logging.progress", "logging.samples_per_step")


def apply_resume_overrides(run_dir: str | Path, overrides: list[str], error: type[Exception]) -> None:
    """`--resume RUN_DIR --set KEY=VALUE`: write the keys that may change mid-run (RESUMABLE: length,
    checkpoints, evaluation, logging, memory) into the run's saved config; any other key is one error
    line. A new `steps` (`iters`) stretches the cosine schedule to the new length from the checkpoint on."""
    if not overrides:
        return
    run_dir = Path(run_dir)
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in RESUMABLE:
            raise error(f"--set {key}: cannot change when resuming (these can: {', '.join(RESUMABLE)}); "
                        f"start a new run for other settings")
    if not (run_dir / "config.json").exists():
        raise error(f"--resume: {run_dir} is not a run directory (no config.json)")
    try:
        config = load_config(run_dir / "config.json", overrides)
    except ConfigError as err:
        raise error(str(err)) from None
    tmp = run_dir / "config.json.tmp"
    save_config(config, tmp)
    os.replace(tmp, run_dir / "config.json")


def python_command() -> str:
    """How to call this interpreter again: `.venv/bin/python` (relative when it is under the current
    directory), else its full path; `python` only when that is what is on the PATH."""
    import shutil
    import sys

    exe = Path(sys.executable)
    try:
        rel = exe.relative_to(Path.cwd())
        return str(rel)
    except ValueError:
        pass
    on_path = shutil.which("python")
    if on_path and Path(on_path).resolve() == exe.resolve():
        return "python"
    return str(exe)


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (or SIGTERM) after saving a checkpoint of `step` in `run_dir`."""

    def __init__(self, run_dir: Path, step: int, resume_command: str):
        super().__init__(f"interrupted: checkpoint of step {step} saved; continue with {resume_command}")
        self.run_dir, self.step, self.resume_command = Path(run_dir), step, resume_command


def trim_logs(run_dir: Path, step: int, names: tuple[str, ...] = ("metrics.jsonl", "samples.jsonl")) -> dict[str, int]:
    """Keep only the lines of `step` or earlier (and drop a line cut short by a kill) in each log;
    returns how many lines each lost. Rewritten through a temporary file and an atomic rename."""
    dropped = {}
    for name in names:
        path = Path(run_dir) / name
        if not path.exists():
            continue
        kept, lost = [], 0
        for line in path.read_text().splitlines():
            try:
                ok = int(json.loads(line)["step"]) <= step
            except (ValueError, KeyError, TypeError):
                ok = False
            if ok:
                kept.append(line + "\n")
            else:
                lost += 1
        if lost:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, path)
        dropped[name] = lost
    return dropped


def discard_if_empty(run_dir: Path) -> bool:
    """Remove a run directory that holds no training yet (no metrics, no checkpoint): what a run that
    failed before its first step (unknown model, broken GGUF, bad data) would otherwise leave."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or any(p.name not in _BEFORE_FIRST_STEP for p in run_dir.iterdir()):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return True


_BEFORE_FIRST_STEP = {"config.json", "sft_train.jsonl", "sft_valid.jsonl"}  # what a run writes before training


def keep_adapters(run_dir: Path, config: Config, step: int, elapsed_s: float) -> Path:
    """The adapters of the checkpoint just saved at `step`, kept standalone in <run>/kept/step_NNNN
    (`checkpoint.keep_adapters`) with the run's answer settings and the training minutes behind them
    (this run's so far plus its start's), so `evaluate --adapter` plays them as they are."""
    from wordle_mlx.play.evaluate import training_minutes

    s = config.sampling
    start = training_minutes(config.model.adapter_path) if config.model.adapter_path else 0.0
    minutes = None if start is None else start + elapsed_s / 60
    return checkpoint.keep_adapters(run_dir, step, {"prompt_format": s.prompt_format, "think": s.think, "mask": s.mask,
                                                     "guess_style": s.guess_style},
                                    config.model.name, minutes)
