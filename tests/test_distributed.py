"""Data parallelism: 2 processes on 127.0.0.1 with MLX's ring backend (mlx.launch), as a user runs them."""

import json
import socket
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import mlx.core as mx

from wordle_mlx.train import distributed

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = Path(sys.executable).parent / "mlx.launch"
TOLERANCE = 1e-5  # float32 sums in a different order; the weights are O(0.1)


def free_port() -> int:
    """A port p with p + 1 also free (the ring backend listens on one port per rank)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no two consecutive free ports")


def launch(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(LAUNCH), "--backend", "ring", "-n", "2", "--starting-port", str(free_port()), "--",
           sys.executable, str(ROOT / "tests" / "distributed_worker.py"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def load(path: Path) -> dict:
    return mx.load(str(path))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(mx.abs(a[k] - b[k]).max()) for k in a)


@unittest.skipUnless(LAUNCH.exists(), "mlx.launch not installed")
class TestTwoProcesses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = Path(cls.tmp.name) / "out"
        cls.logs = Path(cls.tmp.name) / "logs"
        cls.out.mkdir()
        cls.runs = {mode: launch(mode, str(cls.out), str(cls.logs)) for mode in ("grad", "train", "resume", "sft")}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check(self, mode: str) -> None:
        proc = self.runs[mode]
        self.assertEqual(proc.returncode, 0, proc.stdout[-2000:] + proc.stderr[-2000:])

    def test_averaged_gradient_equals_one_process_over_the_union(self):
        self.check("grad")
        rank0, rank1 = load(self.out / "sharded_rank0.safetensors"), load(self.out / "sharded_rank1.safetensors")
        whole, local = load(self.out / "whole_rank0.safetensors"), load(self.out / "local_rank0.safetensors")
        init = load(self.out / "init_rank0.safetensors")
        self.assertEqual(max_diff(rank0, rank1), 0.0)
        self.assertLess(max_diff(rank0, whole), TOLERANCE)  # SGD lr 1, no clipping: weights - gradient
        self.assertGreater(max_diff(local, whole), 100 * TOLERANCE)  # one shard alone is a different gradient
        self.assertGreater(max_diff(whole, init), 100 * TOLERANCE)

    def test_two_grpo_steps_end_with_identical_adapters(self):
        self.check("train")
        start = load(self.out / "start_rank0.safetensors")
        end0, end1 = load(self.out / "dist_rank0.safetensors"), load(self.out / "dist_rank1.safetensors")
        self.assertEqual(max_diff(end0, end1), 0.0)
        self.assertGreater(max_diff(end0, start), 1e-4)  # they trained

    def test_rank_zero_alone_logs_reduced_metrics(self):
        self.check("train")
        run = self.logs / "dist"
        lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
        self.assertEqual([m["step"] for m in lines], [1, 2])  # one writer: no duplicated lines
        self.assertEqual({m["games"] for m in lines}, {4})  # 2 games per step on each of 2 ranks
        self.assertEqual({m["world_size"] for m in lines}, {2})
        self.assertEqual(lines[-1]["cumulative_games"], 8)
        self.assertTrue((run / "adapters" / "adapters.safetensors").exists())

    def test_interrupted_and_resumed_equals_straight(self):
        self.check("resume")
        self.check("train")
        resumed0, resumed1 = (load(self.out / f"dist-resumed_rank{r}.safetensors") for r in (0, 1))
        straight = load(self.out / "dist_rank0.safetensors")
        self.assertEqual(max_diff(resumed0, resumed1), 0.0)
        self.assertLess(max_diff(resumed0, straight), TOLERANCE)

    def test_sft_ranks_stay_identical(self):
        self.check("sft")
        a, b = load(self.out / "sft_rank0.safetensors"), load(self.out / "sft_rank1.safetensors")
        self.assertEqual(max_diff(a, b), 0.0)
        lines = [json.loads(l) for l in (self.logs / "dist-sft" / "metrics.jsonl").read_text().splitlines()]
        self.assertEqual([m["step"] for m in lines], [1, 2, 3])
        self.assertEqual({m["world_size"] for m in lines}, {2})


class TestSingleProcessWorld(unittest.TestCase):
    def test_world_of_one_is_a_no_op(self):
        world = distributed.World()
        self.assertEqual(world.shard([1, 2, 3]), [1, 2, 3])
        self.assertEqual(world.all_sum([1.5, 2]), [1.5, 2.0])
        self.assertTrue(world.agree(True))
        metrics = {"games": 2, "loss": 0.5}
        self.assertEqual(distributed.reduce_metrics(metrics, world), metrics)

    def test_shards_interleave(self):
        self.assertEqual(distributed.World(None, 1, 3).shard(list(range(7))), [1, 4])


if __name__ == "__main__":
    unittest.main()
