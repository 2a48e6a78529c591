"""Run under `mlx.launch --backend ring -n 2` by tests/test_distributed.py (not a test module itself).

    distributed_worker.py train OUT_DIR LOGS_DIR   2 GRPO steps on the tiny model; each rank saves its weights
    distributed_worker.py resume OUT_DIR LOGS_DIR  the same, interrupted at step 2 on every rank, then resumed
    distributed_worker.py grad OUT_DIR             one update over a fixed set of sequences: sharded vs whole
    distributed_worker.py sft OUT_DIR LOGS_DIR     3 SFT steps on the tiny model; each rank saves its weights
"""

import sys
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wordle_mlx  # noqa: E402,F401
import mlx.core as mx  # noqa: E402
import mlx.optimizers as optim  # noqa: E402
import numpy as np  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from tests.test_train_rl import varied_score_group  # noqa: E402
from wordle_mlx.model import lora, models
from wordle_mlx.train import distributed, grpo, rewards, runs  # noqa: E402
from wordle_mlx.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def save_weights(model, out: Path, rank: int, tag: str) -> None:
    flat = dict(tree_flatten(model.trainable_parameters()))
    mx.save_safetensors(str(out / f"{tag}_rank{rank}.safetensors"), flat)


def fixed_sequences(n: int = 6) -> list[grpo.TrainSequence]:
    rng = np.random.default_rng(0)
    seqs = []
    for i in range(n):
        prompt = rng.integers(3, 200, size=int(rng.integers(5, 12))).tolist()
        completion = rng.integers(3, 200, size=int(rng.integers(2, 9))).tolist()
        seqs.append(grpo.TrainSequence(prompt, completion, float(rng.normal())))
    return seqs


def tiny_lora_model():
    model, _ = models.load_model(models.TINY_MODEL)
    mx.random.seed(0)
    lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8))
    for _, m in lora.lora_modules(model):  # non-zero B so the adapters matter
        m.lora_b = mx.random.normal(m.lora_b.shape) * 0.05
    mx.eval(model.parameters())
    return model


def grad(out: Path) -> None:
    world = distributed.init_world()
    settings = grpo.UpdateSettings(temperature=1.0, loss_batch_size=2, max_grad_norm=1e9)
    seqs = fixed_sequences()
    sharded = tiny_lora_model()
    grpo.update(sharded, optim.SGD(learning_rate=1.0), world.shard(seqs), settings, world=world)
    save_weights(sharded, out, world.rank, "sharded")
    if world.is_main:  # the same update in one process over the union of both shards
        whole = tiny_lora_model()
        grpo.update(whole, optim.SGD(learning_rate=1.0), seqs, settings)
        save_weights(whole, out, 0, "whole")
        local = tiny_lora_model()  # rank 0's shard alone, not averaged: must differ from the union
        grpo.update(local, optim.SGD(learning_rate=1.0), world.shard(seqs), settings)
        save_weights(local, out, 0, "local")
        save_weights(tiny_lora_model(), out, 0, "init")


def train(out: Path, logs: str, interrupt_at: int | None = None) -> None:
    """2 GRPO steps; with `interrupt_at`, Ctrl-C arrives at that step on every rank and the run is
    then resumed from its checkpoint to the end."""
    name = "dist" if interrupt_at is None else "dist-resumed"
    config = load_config(ROOT / "config" / "tiny_test.json",
                         [f"logging.logs_dir={logs}", f"logging.run_name={name}", "training.steps=2"])
    from wordle_mlx.train import train_rl

    real_play = train_rl.play_step
    calls = {"n": 0}

    def play(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return real_play(*args, **kwargs)

    with mock.patch.object(rewards, "score_group", side_effect=varied_score_group), \
            mock.patch.object(train_rl, "play_step", side_effect=play):
        model_holder = {}
        real = train_rl.load_policy_model

        def keep(config):
            model, tokenizer = real(config)
            model_holder["model"] = model
            save_weights(model, out, mx.distributed.init().rank(), "start")
            return model, tokenizer

        with mock.patch.object(train_rl, "load_policy_model", side_effect=keep):
            if interrupt_at is None:
                train_rl.train(config)
            else:
                try:
                    train_rl.train(config)
                except runs.Interrupted as stop:
                    train_rl.train(None, resume=stop.run_dir)
    save_weights(model_holder["model"], out, mx.distributed.init().rank(), name)


def sft(out: Path, logs: str) -> None:
    config = load_config(ROOT / "config" / "tiny_test.json",
                         [f"logging.logs_dir={logs}", "logging.run_name=dist-sft", "sft.num_examples=12",
                          "sft.num_valid=4", "sft.iters=3", "sft.batch_size=2", "sft.learning_rate=1e-3",
                          "sft.eval_every=3", "sft.checkpoint_every=3", "sft.max_seq_tokens=1024"])
    from wordle_mlx.train import sft as sft_module
    from wordle_mlx.train import train_rl

    holder = {}
    real = train_rl.load_policy_model

    def keep(config):
        model, tokenizer = real(config)
        holder["model"] = model
        return model, tokenizer

    with mock.patch.object(train_rl, "load_policy_model", side_effect=keep):
        sft_module.train(config)
    save_weights(holder["model"], out, mx.distributed.init().rank(), "sft")


if __name__ == "__main__":
    mode, out = sys.argv[1], Path(sys.argv[2])
    {"grad": lambda: grad(out), "train": lambda: train(out, sys.argv[3]),
     "resume": lambda: train(out, sys.argv[3], interrupt_at=2), "sft": lambda: sft(out, sys.argv[3])}[mode]()
