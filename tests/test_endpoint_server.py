"""Endpoints against a real mlx-lm server (`python -m scripts.serve`: OpenBLAS, then mlx-lm's server)
on 127.0.0.1 (a free port), started and stopped here."""

import json
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

from wordle_mlx.model import blas, models
from wordle_mlx.play import evaluate
from wordle_mlx.play.endpoint import ChatClient, EndpointPolicy
from wordle_mlx.play.policy import ModelPolicy

ROOT = Path(__file__).resolve().parents[1]


class MlxLmServer:
    def __init__(self, model_dir: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "scripts.serve", "--model", str(model_dir), "--host",
                                      "127.0.0.1", "--port", str(self.port)], cwd=ROOT, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlx_lm.server exited: {self.output()[-500:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("mlx_lm.server did not start in 120 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class TestDefaultModelServer(unittest.TestCase):
    """The default model served by mlx_lm.server answers exactly what the local model answers."""

    @classmethod
    def setUpClass(cls):
        cls.model, cls.tokenizer = models.load_model(models.DEFAULT_MODEL)  # fetches and converts if needed
        cls.server = MlxLmServer(models.resolve_model_path(models.DEFAULT_MODEL))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_endpoint_games_equal_local_greedy_games(self):
        secrets = ["hello", "crane"]
        served = evaluate.evaluate(EndpointPolicy(ChatClient(self.server.url, "default_model", concurrency=2),
                                                  max_tokens=16), secrets, progress=False)
        local = evaluate.evaluate(ModelPolicy(self.model, self.tokenizer, "plain", 0.0, 16), secrets, progress=False)
        for a, b in zip(served["games"], local["games"]):
            self.assertEqual(a["completions"], b["completions"])
        self.assertEqual(served["invalid_reasons"], local["invalid_reasons"])


class TestTinyModelServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        models.load_model(models.TINY_MODEL)  # writes the tiny model directory if needed
        cls.server = MlxLmServer(models.resolve_model_path(models.TINY_MODEL))

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    @unittest.skipUnless(sys.platform == "linux" and blas.find_openblas(), "OpenBLAS is loaded on Linux only")
    def test_the_server_runs_on_openblas(self):
        maps = Path(f"/proc/{self.server.proc.pid}/maps").read_text()
        self.assertIn(str(Path(blas.find_openblas()).resolve().parent), maps)  # the system library, not numpy's

    def test_cli_evaluate_through_the_server(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "e.json"
            proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--endpoint", self.server.url, "--endpoint-model",
                                   "default_model", "--n", "3", "--max-tokens", "8", "--json", str(out)],
                                  cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            report = json.loads(out.read_text())
        self.assertEqual(report["n_games"], 3)
        self.assertEqual(report["attempts"], 18)  # a random model: every answer invalid, every turn spent
        self.assertEqual(report["endpoint_model"], "default_model")

    def test_teacher_data_synth_through_the_server(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t.jsonl"
            proc = subprocess.run([sys.executable, "-m", "scripts.data_synth", "--mode", "sft", "--n", "2", "--out", str(out),
                                   "--teacher-endpoint", self.server.url, "--teacher-model", "default_model",
                                   "--max-tokens", "8"], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            games = Path(str(out) + ".games.jsonl").read_text().splitlines()
        self.assertEqual(len(games), 2)
        self.assertIn("kept 0 turns", proc.stdout)  # random answers are never valid words


class TestServeErrors(unittest.TestCase):
    def test_missing_adapter_path_is_one_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.serve", "--model", models.TINY_MODEL, "--adapter-path",
                               "no/such/adapters"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(), [
            "error: --adapter-path: no/such/adapters has no adapter_config.json (expected an mlx-lm adapter directory)"])

    def test_unknown_model_is_one_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.serve", "--model", "no-such-model"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)


if __name__ == "__main__":
    unittest.main()
