"""`scripts.benchmark all`: every benchmark in one run, one JSON file, a failure reported, not fatal."""

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from wordle_mlx import benchmarks

ROOT = Path(__file__).resolve().parents[1]


class TestBenchmarkAll(unittest.TestCase):
    def test_runs_the_chosen_ones_and_keeps_going_after_a_failure(self):
        def broken():
            raise RuntimeError("no such kernel")

        with mock.patch.object(benchmarks, "benchmark_rewards", broken):
            started = []
            r = benchmarks.benchmark_all(("rewards", "patterns"), on_start=started.append)
        self.assertEqual(started, ["rewards", "patterns"])
        self.assertIn("no such kernel", r["benchmarks"]["rewards"]["error"])
        patterns = r["benchmarks"]["patterns"]
        self.assertTrue(patterns["figures"]["identical"])
        self.assertEqual(patterns["figures"]["shape"], [12972, 2315])
        self.assertIn("FAILED", benchmarks.summary_line("rewards", r["benchmarks"]["rewards"]))
        self.assertIn("numpy", benchmarks.summary_line("patterns", patterns))

    def test_patterns_times_every_variant_and_skips_one_over_its_budget(self):
        from wordle_mlx.wordle import words

        with mock.patch.object(benchmarks.wordlists, "allowed", return_value=words.allowed()[:700]), \
                mock.patch.object(benchmarks.wordlists, "answers", return_value=words.answers()[:90]):
            timed = benchmarks.benchmark_patterns(1, chunks=(256,))
            skipped = benchmarks.benchmark_patterns(1, chunks=(256,), budget_s=0.0)
        self.assertEqual([(c["kernel"], c["chunk"]) for c in timed["codes"] if c["device"] == "cpu"],
                         [("eager", 512), ("eager", 256), ("compiled", 512), ("compiled", 256)])
        self.assertTrue(all("seconds" in c for c in timed["codes"] + timed["counting"]))
        self.assertEqual({c["method"] for c in timed["counting"] if c["device"] == "cpu"}, {"bincount", "scatter"})
        self.assertTrue(timed["identical"])
        self.assertEqual(timed["shape"], [700, 90])
        self.assertFalse(any("seconds" in c for c in skipped["codes"] + skipped["counting"]))
        self.assertGreater(skipped["mlx_s"], 0.0)  # the projection stands in for the default's time

    def test_cli_writes_one_json_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bench.json"
            proc = subprocess.run([sys.executable, "-m", "scripts.benchmark", "all", "--only", "rewards",
                                   "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            r = json.loads(out.read_text())
        self.assertEqual(list(r["benchmarks"]), ["rewards"])
        self.assertGreater(r["benchmarks"]["rewards"]["figures"]["groups"], 0)
        self.assertIn("rewards", proc.stdout)

    def test_an_unknown_name_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.benchmark", "all", "--only", "rewards,warp"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--only: unknown warp", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)


if __name__ == "__main__":
    unittest.main()


class TestGroupsFromStuckStates(unittest.TestCase):
    def test_a_report_without_games_is_one_error_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = Path(tmp) / "r.json"
            bad.write_text('{"wins": 3}')
            for path in (bad, Path(tmp) / "missing.json"):
                proc = subprocess.run([sys.executable, "-m", "scripts.benchmark", "groups", "--stuck-from", str(path)],
                                      cwd=ROOT, capture_output=True, text=True, timeout=120)
                self.assertEqual(proc.returncode, 1, proc.stderr)
                self.assertEqual(proc.stderr.strip().splitlines(), [f"error: --stuck-from {path}: expected a report "
                                                                    "with games (scripts.evaluate --json)"])

    def test_a_bad_rewards_override_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.benchmark", "groups", "--set", "rewards.rejected_again_lowest=maybe"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertIn("rewards.rejected_again_lowest", lines[0])
