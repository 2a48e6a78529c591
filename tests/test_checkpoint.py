"""Crash-safe checkpoints: a save stopped after each of its filesystem operations in turn (as kill -9
would stop it), then resumed, ends exactly where a straight run ends, for GRPO and SFT; logs are cut
back to the checkpoint on resume."""

import json
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import mlx.core as mx
import numpy as np

from wordle_mlx.train import checkpoint, rewards, runs, sft, train_rl
from wordle_mlx.config import load_config

from tests.test_sft import tiny_sft_config
from tests.test_train_rl import lines, tiny_config, varied_score_group


class Crash(BaseException):
    """What kill -9 does to the save: it stops there, nothing runs after (not a KeyboardInterrupt)."""


def save_operations() -> list[str]:
    """The names of `checkpoint.save`'s filesystem operations, in order, for a run that has a checkpoint."""
    seen = []
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = _tiny_model_and_optimizer()
        checkpoint.save(Path(tmp), model, opt, {"step": 1})
        with mock.patch.object(checkpoint, "fault_point", side_effect=seen.append):
            checkpoint.save(Path(tmp), model, opt, {"step": 2})
    return seen


def _tiny_model_and_optimizer():
    from wordle_mlx.model import lora, models
    from wordle_mlx.train import grpo

    model, _ = models.load_model(models.TINY_MODEL)
    lora.apply_lora(model, lora.LoraSettings(rank=2, alpha=4))
    opt = grpo.make_optimizer(1e-3, 10, 0, 0.0)
    return model, opt


def crash_at(n: int, during_step: int, step_of: callable):
    """A fault_point that raises Crash at the n-th operation of the save made for `during_step`."""
    count = {"ops": 0}

    def fault(name):
        if step_of() == during_step:
            count["ops"] += 1
            if count["ops"] == n:
                raise Crash(name)
    return fault


def adapters(run_dir: Path) -> dict:
    return {k: np.array(v) for k, v in mx.load(str(run_dir / "adapters" / "adapters.safetensors")).items()}


class TestSaveProtocol(unittest.TestCase):
    def test_every_cut_leaves_a_complete_checkpoint_of_the_old_or_new_step(self):
        ops = save_operations()
        self.assertGreaterEqual(len(ops), 8)
        model, opt = _tiny_model_and_optimizer()
        for n in range(1, len(ops) + 1):
            with self.subTest(cut_after=ops[n - 1]), tempfile.TemporaryDirectory() as tmp:
                run_dir = Path(tmp)
                checkpoint.save(run_dir, model, opt, {"step": 1})
                with mock.patch.object(checkpoint, "fault_point", side_effect=crash_at(n, 2, lambda: 2)):
                    with self.assertRaises(Crash):
                        checkpoint.save(run_dir, model, opt, {"step": 2})
                found = checkpoint.newest(run_dir)
                self.assertIsNotNone(found, sorted(p.name for p in run_dir.iterdir()))
                step = checkpoint.complete_step(found)
                self.assertEqual(step, 2 if ops[n - 1] in ("complete", "clear old", "move aside", "rename into place",
                                                           "delete old") else 1)
                told = []
                state = checkpoint.load(run_dir, model, opt, told.append)
                self.assertEqual(state["step"], step)
                self.assertEqual(bool(told), found.name != checkpoint.CHECKPOINT)  # says which when not the usual one
                self.assertEqual(sorted(p.name for p in run_dir.iterdir()), [checkpoint.CHECKPOINT])

    def test_a_partial_directory_does_not_count(self):
        model, opt = _tiny_model_and_optimizer()
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp)
            checkpoint.save(run_dir, model, opt, {"step": 3})
            ckpt = run_dir / checkpoint.CHECKPOINT
            with open(ckpt / "optimizer.safetensors", "ab") as fh:
                fh.write(b"x")  # a file that is not what the manifest says
            self.assertIsNone(checkpoint.complete_step(ckpt))
            self.assertFalse(checkpoint.exists(run_dir))

    def test_the_kill_the_issue_found_is_resumable(self):
        """Killed after checkpoint/ became checkpoint.old/ and before checkpoint.tmp/ was renamed in."""
        model, opt = _tiny_model_and_optimizer()
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = Path(tmp)
            checkpoint.save(run_dir, model, opt, {"step": 1})
            with mock.patch.object(checkpoint, "fault_point", side_effect=crash_at(7, 2, lambda: 2)), \
                    self.assertRaises(Crash) as cut:
                checkpoint.save(run_dir, model, opt, {"step": 2})
            self.assertEqual(str(cut.exception), "move aside")
            self.assertEqual(sorted(p.name for p in run_dir.iterdir()), ["checkpoint.old", "checkpoint.tmp"])
            self.assertEqual(checkpoint.load(run_dir, model, opt)["step"], 2)


class TestTrimLogs(unittest.TestCase):
    def test_lines_after_the_checkpoint_and_a_cut_line_go(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "metrics.jsonl"
            path.write_text("".join(json.dumps({"step": s}) + "\n" for s in [1, 2, 3]) + '{"step": 4, "lo')
            self.assertEqual(runs.trim_logs(Path(tmp), 2), {"metrics.jsonl": 2})
            self.assertEqual([json.loads(l)["step"] for l in path.read_text().splitlines()], [1, 2])


class TestKilledRunsResume(unittest.TestCase):
    """Cut the save of step 2 after each operation, resume, and compare with a straight 3-step run."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.logs = self.tmp.name
        self.ops = len(save_operations())

    def tearDown(self):
        self.tmp.cleanup()

    def test_grpo(self):
        with mock.patch.object(rewards, "score_group", side_effect=varied_score_group):
            straight = train_rl.train(tiny_config(self.logs, "straight", steps=3))
            want_metrics = lines(straight / "metrics.jsonl")
            want = adapters(straight)
            for n in range(1, self.ops + 1):
                with self.subTest(cut=n):
                    config = tiny_config(self.logs, f"cut{n}", steps=3)
                    run_dir = Path(self.logs) / f"cut{n}"
                    step_of = lambda: len(lines(run_dir / "metrics.jsonl")) if (run_dir / "metrics.jsonl").exists() else 0
                    with mock.patch.object(checkpoint, "fault_point", side_effect=crash_at(n, 2, step_of)), \
                            self.assertRaises(Crash):
                        train_rl.train(config)
                    train_rl.train(load_config(None), resume=run_dir)
                    got = lines(run_dir / "metrics.jsonl")
                    self.assertEqual([m["step"] for m in got], [1, 2, 3])
                    self.assertEqual([m["step"] for m in lines(run_dir / "samples.jsonl")], [1, 1, 2, 2, 3, 3])
                    for key in ["reward_mean", "loss", "grad_norm", "lr"]:
                        self.assertAlmostEqual(got[2][key], want_metrics[2][key], places=5, msg=key)
                    for k, v in adapters(run_dir).items():
                        np.testing.assert_allclose(v, want[k], atol=1e-6)

    def test_sft(self):
        extra = {"sft.checkpoint_every": 1, "sft.eval_every": 100}
        straight = sft.train(tiny_sft_config(self.logs, "straight", iters=3, **extra))
        want = adapters(straight)
        for n in range(1, self.ops + 1):
            with self.subTest(cut=n):
                run_dir = Path(self.logs) / f"cut{n}"
                step_of = lambda: len(lines(run_dir / "metrics.jsonl")) if (run_dir / "metrics.jsonl").exists() else 0
                with mock.patch.object(checkpoint, "fault_point", side_effect=crash_at(n, 2, step_of)), \
                        self.assertRaises(Crash):
                    sft.train(tiny_sft_config(self.logs, f"cut{n}", iters=3, **extra))
                sft.train(load_config(None), resume=run_dir)
                self.assertEqual([m["step"] for m in lines(run_dir / "metrics.jsonl")], [1, 2, 3])
                for k, v in adapters(run_dir).items():
                    np.testing.assert_allclose(v, want[k], atol=1e-6)


class TestNoDebris(unittest.TestCase):
    """Bad model settings fail before any run directory is left behind (GRPO and SFT, default timestamp names)."""

    def test_unknown_model_and_broken_gguf_leave_no_run_directory(self):
        from wordle_mlx.model import models

        with tempfile.TemporaryDirectory() as tmp:
            bad = Path(tmp) / "broken.gguf"
            bad.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + b"\x00" * 100)  # right magic, no content
            logs = Path(tmp) / "logs"
            for name in ["no-such-model", str(bad)]:
                for trainer in (train_rl, sft):
                    config = load_config(Path(__file__).resolve().parents[1] / "config" / "tiny_test.json",
                                         [f"logging.logs_dir={logs}", f"model.name={name}", "sft.num_examples=4",
                                          "sft.num_valid=2"])
                    with self.subTest(model=name, trainer=trainer.__name__), self.assertRaises(models.ModelLoadError):
                        trainer.train(config)
                    self.assertEqual(list(logs.iterdir()) if logs.exists() else [], [])

    def test_a_user_directory_is_never_removed(self):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "notes.txt").write_text("mine")
            (Path(tmp) / "config.json").write_text("{}")
            self.assertFalse(runs.discard_if_empty(Path(tmp)))
            self.assertTrue((Path(tmp) / "notes.txt").exists())


if __name__ == "__main__":
    unittest.main()
