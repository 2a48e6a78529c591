"""Run checkpoints shared by the trainers: adapters (mlx-lm format), optimizer state, counters.

`save(run_dir, model, optimizer, state)` writes `run_dir/checkpoint/` atomically (a temporary
directory renamed into place, the previous checkpoint kept until the new one is complete);
`load(run_dir, model, optimizer)` restores the LoRA weights and optimizer state and returns the
counters dict.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten

from wordle_mlx import lora

CHECKPOINT = "checkpoint"


def save(run_dir: Path, model, optimizer, state: dict) -> Path:
    final = run_dir / CHECKPOINT
    tmp = run_dir / (CHECKPOINT + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    lora.save_adapters(model, tmp)
    mx.save_safetensors(str(tmp / "optimizer.safetensors"), dict(tree_flatten(optimizer.state)))
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    old = run_dir / (CHECKPOINT + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def exists(run_dir: Path) -> bool:
    return (run_dir / CHECKPOINT / "state.json").exists()


def load(run_dir: Path, model, optimizer) -> dict:
    ckpt = run_dir / CHECKPOINT
    model.load_weights(list(mx.load(str(ckpt / lora.ADAPTER_WEIGHTS)).items()), strict=False)
    optimizer.state = tree_unflatten(list(mx.load(str(ckpt / "optimizer.safetensors")).items()))
    mx.eval(model.parameters(), optimizer.state)
    return json.loads((ckpt / "state.json").read_text())
