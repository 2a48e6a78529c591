"""logging.report_to: each tracker gets metrics.jsonl's numeric fields under the same names, at the same steps.

With a fake module the wiring is checked everywhere; with the real package installed (the `trackers`
extra, as CI installs it) the tracker runs in its offline/local mode and what it stored is read back."""

import importlib.util
import json
import os
import sys
import tempfile
import types
import unittest
from pathlib import Path
from unittest import mock

from wordle_mlx.config import load_config
from wordle_mlx.train import sft, trackers, train_rl

ROOT = Path(__file__).resolve().parents[1]


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tiny(logs: str, name: str, tracker: str, steps: int = 2):
    return load_config(ROOT / "config" / "tiny_test.json", [f"logging.logs_dir={logs}", f"logging.run_name={name}",
                                                            f"training.steps={steps}", f"logging.report_to={tracker}"])


def metrics_lines(run_dir: Path) -> list[dict]:
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


class FakeWandb(types.ModuleType):
    def __init__(self):
        super().__init__("wandb")
        self.logged, self.inits, self.finished = [], [], 0

    def init(self, **kwargs):
        self.inits.append(kwargs)
        fake = self

        class Run:
            def log(self, metrics, step):
                fake.logged.append((step, dict(metrics)))

            def finish(self):
                fake.finished += 1
        return Run()


class TestTrackerWiring(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_grpo_run_sends_each_metrics_line_to_wandb(self):
        fake = FakeWandb()
        with mock.patch.dict(sys.modules, {"wandb": fake}), mock.patch.dict(os.environ, {"WANDB_MODE": "", "WANDB_API_KEY": ""}):
            run_dir = train_rl.train(tiny(self.tmp.name, "w", "wandb"))
        lines = metrics_lines(run_dir)
        self.assertEqual([s for s, _ in fake.logged], [m["step"] for m in lines])
        for (_, sent), line in zip(fake.logged, lines):
            self.assertEqual(sent, trackers.numbers(line))
            self.assertIn("reward_mean", sent)
            self.assertNotIn("curriculum", sent)  # text stays in metrics.jsonl only
        self.assertEqual(fake.inits[0]["mode"], "offline")
        self.assertEqual((fake.inits[0]["project"], fake.inits[0]["name"]), ("wordle-mlx", "w"))
        self.assertEqual(fake.inits[0]["config"]["logging"]["report_to"], "wandb")
        self.assertEqual(fake.finished, 1)

    def test_an_sft_run_sends_its_lines_too(self):
        fake = FakeWandb()
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.tmp.name}", "logging.run_name=s", "logging.report_to=wandb", "sft.num_examples=8",
            "sft.num_valid=2", "sft.iters=3", "sft.eval_every=3", "sft.max_seq_tokens=2048"])
        with mock.patch.dict(sys.modules, {"wandb": fake}):
            run_dir = sft.train(config)
        self.assertEqual([trackers.numbers(l) for l in metrics_lines(run_dir)], [m for _, m in fake.logged])
        self.assertIn("valid_loss", fake.logged[-1][1])

    def test_a_tracker_that_is_not_installed_is_one_line_before_the_run(self):
        with mock.patch.dict(sys.modules, {"trackio": None}):
            with self.assertRaisesRegex(train_rl.TrainingError, r'trackio is not installed \(pip install -e "\.\[trackio\]"'):
                train_rl.train(tiny(self.tmp.name, "t", "trackio"))
        self.assertFalse((Path(self.tmp.name) / "t").exists())


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from tensorboard event files (TFRecord framing: length, crc, Event proto, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out


@unittest.skipUnless(installed("tensorboardX"), "tensorboardX not installed (the tensorboard extra)")
class TestTensorboard(unittest.TestCase):
    def test_event_files_hold_every_metric_at_its_step(self):
        with tempfile.TemporaryDirectory() as tmp:
            run_dir = train_rl.train(tiny(tmp, "tb", "tensorboard"))
            events = read_events(run_dir / "tensorboard")
            lines = metrics_lines(run_dir)
            self.assertEqual(set(events), set(trackers.numbers(lines[0])))
            self.assertEqual([step for step, _ in events["loss"]], [1, 2])
            self.assertAlmostEqual(events["loss"][1][1], lines[1]["loss"], places=5)


@unittest.skipUnless(installed("wandb"), "wandb not installed (the wandb extra)")
class TestWandbOffline(unittest.TestCase):
    def test_an_offline_run_is_written_under_the_run_directory(self):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"WANDB_MODE": "offline",
                                                                               "WANDB_SILENT": "true"}):
            run_dir = train_rl.train(tiny(tmp, "wb", "wandb"))
            import wandb

            wandb.teardown()  # the service now, not in an atexit hook after the tests
            offline = list((run_dir / "wandb").glob("offline-run-*"))
            self.assertEqual(len(offline), 1)
            history = list(offline[0].glob("run-*.wandb"))
            self.assertTrue(history and history[0].stat().st_size > 0)


@unittest.skipUnless(installed("trackio"), "trackio not installed (the trackio extra)")
class TestTrackioLocal(unittest.TestCase):
    def test_a_local_run_stores_each_step(self):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"TRACKIO_DIR": tmp}):
            import trackio.sqlite_storage as storage

            run_dir = train_rl.train(tiny(tmp, "tio", "trackio"))
            logs = storage.SQLiteStorage.get_logs(project=trackers.PROJECT, run="tio")
            self.assertEqual([int(l["step"]) for l in logs], [m["step"] for m in metrics_lines(run_dir)])
            self.assertAlmostEqual(logs[-1]["loss"], metrics_lines(run_dir)[-1]["loss"], places=5)
