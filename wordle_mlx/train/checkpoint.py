"""Run checkpoints shared by the trainers: adapters (mlx-lm format), optimizer state, counters.

A checkpoint is a directory holding `adapters.safetensors` + `adapter_config.json` (mlx-lm),
`optimizer.safetensors`, `state.json` (the counters, `step` among them) and, written last,
`complete.json` (the step and every file's size). Only a directory whose `complete.json` matches
its files counts.

The save protocol is crash-safe at every point (a kill -9 or a power cut between any two of its
filesystem operations leaves at least one complete checkpoint, the newest one that had been
finished):

1. write everything into `checkpoint.tmp/`, fsync each file, write `complete.json`, fsync it and
   the directory;
2. move the previous `checkpoint/` aside to `checkpoint.old/` (fsync the run directory);
3. rename `checkpoint.tmp/` to `checkpoint/` (fsync the run directory);
4. delete `checkpoint.old/`.

`load` picks the newest complete one of `checkpoint/`, `checkpoint.tmp/` and `checkpoint.old/`,
says which when it is not `checkpoint/`, puts it in place as `checkpoint/` with the same steps
and removes the others (older or partial) before reading it. `fault_point` is called after each filesystem operation of `save` (a
no-op; the fault-injection tests replace it to stop the save there).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from wordle_mlx.model import lora

CHECKPOINT = "checkpoint"
KEPT = "kept"
TMP, OLD = CHECKPOINT + ".tmp", CHECKPOINT + ".old"
COMPLETE = "complete.json"


def fault_point(name: str) -> None:
    """Called after every filesystem operation of `save` (tests stop the save here)."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _step(name: str, action: Callable[[], object]) -> None:
    action()
    fault_point(name)


def save(run_dir: Path, model, optimizer, state: dict) -> Path:
    """Write a checkpoint of `state` (counters) with the model's LoRA weights and the optimizer."""
    run_dir = Path(run_dir)
    final, tmp, old = run_dir / CHECKPOINT, run_dir / TMP, run_dir / OLD
    _step("clear tmp", lambda: shutil.rmtree(tmp, ignore_errors=True))
    _step("adapters", lambda: lora.save_adapters(model, tmp))
    _step("optimizer", lambda: mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state))))
    _step("state", lambda: (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n"))
    files = sorted(p for p in tmp.iterdir() if p.is_file())
    for p in files:
        _fsync(p)
    manifest = {"step": state.get("step"), "files": {p.name: p.stat().st_size for p in files}}
    _step("complete", lambda: (tmp / COMPLETE).write_text(json.dumps(manifest) + "\n"))
    _fsync(tmp / COMPLETE)
    _fsync(tmp)
    _step("clear old", lambda: shutil.rmtree(old, ignore_errors=True))
    if final.exists():
        _step("move aside", lambda: final.rename(old))
        _fsync(run_dir)
    _step("rename into place", lambda: tmp.rename(final))
    _fsync(run_dir)
    _step("delete old", lambda: shutil.rmtree(old, ignore_errors=True))
    return final


def complete_step(ckpt: Path) -> int | None:
    """The step of a complete checkpoint directory, else None (missing, partial or unreadable).
    A `checkpoint/` from before `complete.json` existed counts (it was only ever renamed into place whole)."""
    try:
        if ckpt.name == CHECKPOINT and not (ckpt / COMPLETE).exists():
            return int(json.loads((ckpt / "state.json").read_text())["step"])
        manifest = json.loads((ckpt / COMPLETE).read_text())
        for name, size in manifest["files"].items():
            if (ckpt / name).stat().st_size != size:
                return None
        state = json.loads((ckpt / "state.json").read_text())
        return int(state["step"]) if state.get("step") == manifest["step"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def newest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint among checkpoint/, checkpoint.tmp/, checkpoint.old/ (ties: that order)."""
    found = [(step, -i, Path(run_dir) / name) for i, name in enumerate((CHECKPOINT, TMP, OLD))
             if (step := complete_step(Path(run_dir) / name)) is not None]
    return max(found)[2] if found else None


def exists(run_dir: Path) -> bool:
    return newest(run_dir) is not None


def load(run_dir: Path, model, optimizer, notify: Callable[[str], None] | None = None) -> dict:
    """Restore the newest complete checkpoint into `model` and `optimizer`; returns its counters.
    `notify` is told which one when it is not `checkpoint/` (left by a save that was cut short)."""
    run_dir = Path(run_dir)
    found = newest(run_dir)
    if found is None:
        raise FileNotFoundError(f"{run_dir} has no complete checkpoint")
    final, old = run_dir / CHECKPOINT, run_dir / OLD
    if found != final:
        if notify:
            notify(f"resuming from {found.name}/ (step {complete_step(found)}), left by a save that was cut short")
        if found.name == TMP:  # finish that save: steps 2-4
            shutil.rmtree(old, ignore_errors=True)
            if final.exists():
                final.rename(old)
            found.rename(final)
        else:  # checkpoint.old is the newest complete one: whatever is at checkpoint/ is not complete
            shutil.rmtree(final, ignore_errors=True)
            found.rename(final)
        _fsync(run_dir)
    for leftover in (run_dir / TMP, old):  # older or partial: the next save would clear them anyway
        shutil.rmtree(leftover, ignore_errors=True)
    model.load_weights(list(mx.load(str(final / lora.ADAPTER_WEIGHTS)).items()), strict=False)
    optimizer.state = tree_unflatten(list(mx.load(str(final / "optimizer.safetensors")).items()))
    mx.eval(model.parameters(), optimizer.state)
    return json.loads((final / "state.json").read_text())


def kept_dir(run_dir: Path, step: int) -> Path:
    """Where `keep_adapters` puts a step's adapters: <run>/kept/step_NNNN."""
    return Path(run_dir) / KEPT / f"step_{step:04d}"


def keep_adapters(run_dir: Path, step: int, answer_settings: dict, base_model: str | None,
                  training_minutes: float | None) -> Path:
    """Copy the adapters of the checkpoint just saved (`step`) to `kept_dir(run_dir, step)` as a standalone,
    float16 adapter directory (`lora.export_adapters`: evaluate and play use it as it is). Written beside
    and renamed into place, so a kill leaves either the whole directory or none (the resumed run redoes
    the step and writes it again)."""
    final = kept_dir(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lora.export_adapters(Path(run_dir) / CHECKPOINT, tmp, "float16", answer_settings, base_model, training_minutes)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final
