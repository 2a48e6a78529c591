"""Every script: Ctrl-C or SIGTERM at any moment is one line and exit 128 + signal (130 / 143), after
the trainers have saved a checkpoint; the usage line says how a script is really run."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def start(args: list[str], ignore_sigint: bool = False, env: dict | None = None) -> subprocess.Popen:
    """A script as a shell would start it: SIGINT at its default, or ignored (a background job)."""
    def handlers():
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)
    return subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=handlers, env=env)


def wait_for_steps(path: Path, n: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no step {n} in {timeout} s")


def wait_for_our_first_line(proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until the script's package has installed its SIGTERM handler (Linux: the caught-signal mask in
    /proc): from then on every Ctrl-C is ours to handle. Before it, Python itself is still starting
    (on a loaded machine that took over 0.2 s), and a Ctrl-C there is Python's KeyboardInterrupt."""
    status = Path(f"/proc/{proc.pid}/status")
    deadline = time.time() + timeout
    while time.time() < deadline and status.exists() and proc.poll() is None:
        caught = next((l.split()[1] for l in status.read_text().splitlines() if l.startswith("SigCgt:")), "0")
        if int(caught, 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.005)


def lines(text: str) -> list[str]:
    return [l for l in text.splitlines() if l.strip()]


class TestInterrupt(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.logs = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def train(self, script: str, name: str, ignore_sigint: bool = False, env: dict | None = None) -> subprocess.Popen:
        proc = start([f"scripts.{script}", "--config", "config/tiny_test.json", "--set", f"logging.logs_dir={self.logs}",
                      "--set", f"logging.run_name={name}", "--set", "training.steps=500", "--set", "sft.iters=500",
                      "--set", "sft.num_examples=8", "--set", "sft.num_valid=2", "--set", "sft.checkpoint_every=1000",
                      "--set", "sft.max_seq_tokens=2048"], ignore_sigint, env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())  # a failed test leaves no run behind
        return proc

    def test_ctrl_c_saves_a_checkpoint_and_exits_130(self):
        for script in ("train_rl", "train_sft"):
            with self.subTest(script=script):
                proc = self.train(script, script)
                wait_for_steps(self.logs / script / "metrics.jsonl", 2, proc)
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=120)
                self.assertEqual(proc.returncode, 130, err)
                self.assertNotIn("Traceback", err)
                self.assertRegex(lines(err)[-1], rf"^interrupted: checkpoint of step \d+ saved; continue with "
                                                 rf"\S*python\S* -m scripts.{script} --resume ")  # the running python
                step = json.loads((self.logs / script / "checkpoint" / "state.json").read_text())["step"]
                self.assertGreaterEqual(step, 2)
                self.assertIn(f"step {step} saved", err)

    def test_sigterm_saves_too_and_exits_143_even_when_sigint_is_ignored(self):
        proc = self.train("train_rl", "bg", ignore_sigint=True)
        wait_for_steps(self.logs / "bg" / "metrics.jsonl", 1, proc)
        proc.send_signal(signal.SIGINT)  # ignored, as for a background job
        time.sleep(1.0)
        self.assertIsNone(proc.poll())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 143, err)
        self.assertNotIn("Traceback", err)
        self.assertTrue(lines(err)[-1].startswith("interrupted: checkpoint of step"), err)

    def test_ctrl_c_at_any_moment_is_one_line(self):
        for delay in (0.0, 0.2, 0.5, 0.8, 1.5, 3.0):  # from when Python runs our first line
            with self.subTest(delay=delay):
                proc = self.train("train_rl", f"early{delay}")
                wait_for_our_first_line(proc)
                time.sleep(delay)
                proc.send_signal(signal.SIGINT)
                out, err = proc.communicate(timeout=120)
                # stdout says whether a run with exit 0 went to its end (a lost Ctrl-C: see the next test)
                self.assertEqual(proc.returncode, 130, f"{err}\nstdout: {out[-800:]}")
                self.assertNotIn("Traceback", err)
                self.assertTrue(lines(err)[-1].startswith("interrupted"), err)
                self.assertEqual(sum("interrupted" in l for l in lines(err)), 1, err)

    def test_ctrl_c_while_mlx_asks_the_shell_for_its_compiler_is_not_lost(self):
        # MLX's CPU backend runs system("g++ --version") once per process, and glibc's system() ignores
        # SIGINT while it waits: CI once lost a Ctrl-C there. A g++ that answers --version slowly makes
        # that moment 3 s long; the real one does everything else (MLX's kernel builds).
        import shutil

        real = shutil.which("g++") or "false"
        bin_dir, marker = self.logs / "bin", self.logs / "asked"
        bin_dir.mkdir()
        (bin_dir / "g++").write_text(f'#!/bin/sh\nif [ "$1" = --version ]; then touch {marker}; sleep 3; fi\n'
                                     f'exec {real} "$@"\n')
        (bin_dir / "g++").chmod(0o755)
        proc = self.train("train_rl", "gxx", env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
        deadline = time.time() + 120
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        self.assertTrue(marker.exists(), "MLX never asked for g++")
        time.sleep(0.5)  # well inside the 3 s answer
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 130, f"{err}\nstdout: {out[-800:]}")
        self.assertNotIn("Traceback", err)
        self.assertTrue(lines(err)[-1].startswith("interrupted"), err)

    def test_an_interrupted_sft_stops_a_chained_grpo(self):
        cmd = (f"{sys.executable} -m scripts.train_sft --config config/tiny_test.json --set logging.logs_dir={self.logs} "
               "--set logging.run_name=chain --set sft.iters=500 --set sft.num_examples=8 --set sft.num_valid=2 "
               f"--set sft.max_seq_tokens=2048 && echo GRPO-STARTED")
        proc = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True,  # SIGINT at its default, as in a terminal, even when these
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # tests run in background
        wait_for_steps(self.logs / "chain" / "metrics.jsonl", 1, proc)
        import os

        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C reaches the whole foreground group
        out, err = proc.communicate(timeout=120)
        self.assertNotIn("GRPO-STARTED", out)
        self.assertNotEqual(proc.returncode, 0)

    def test_exit_is_130_even_after_a_keyboard_interrupt_went_through_cpythons_run_loop(self):
        # CPython remembers a KeyboardInterrupt that left a PyRun_* call (a library may run code that
        # way) and then ends any exit, even sys.exit(130), by killing itself with SIGINT (status -2).
        probe = self.logs / "kb_probe.py"
        probe.write_text("import ctypes\nimport scripts\n\n"
                         "def main():\n"
                         "    ctypes.pythonapi.PyRun_SimpleString(b'raise KeyboardInterrupt')\n"
                         "    raise KeyboardInterrupt\n\n"
                         "scripts.run(main)\n")
        import os

        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        proc = subprocess.run([sys.executable, "-m", "kb_probe"], cwd=self.logs, env=env, capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(proc.returncode, 130, proc.stderr)
        self.assertEqual(lines(proc.stderr)[-1], "interrupted")


SCRIPTS = sorted(p.stem for p in (ROOT / "scripts").glob("*.py") if p.stem != "__init__")


def run_script(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          input=stdin)


class TestUsage(unittest.TestCase):
    def test_an_argument_error_is_one_line_naming_the_module_and_help(self):
        for script in SCRIPTS:
            if script == "serve":  # passes the flags it does not know on to mlx_lm.server
                continue
            with self.subTest(script=script):
                proc = run_script(f"scripts.{script}", "--no-such-flag")
                self.assertEqual(proc.returncode, 2)
                self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
                self.assertRegex(proc.stderr, rf"^error: .*(--no-such-flag|required).* \(see python -m scripts\.{script} --help\)$")

    def test_the_first_hour_argument_mistakes_are_one_line_each(self):
        cases = [(["scripts.evaluate", "--policy", "frequent", "--n", "-3"], "--n: expected a positive number"),
                 (["scripts.evaluate", "--policy", "frequent", "--split", "nosuch"], "invalid choice: 'nosuch'"),
                 (["scripts.play", "--human", "--secret", "zzzzz"], "--secret: 'zzzzz' is not in the allowed word list"),
                 (["scripts.evaluate", "--model", "gemma3-270m", "--adapter", "adapters/recipe"],
                  "was trained on smollm2-135m-instruct, not gemma3-270m"),
                 (["scripts.evaluate", "--policy", "frequent", "--json", "/nonexistent-dir/x.json"],
                  "--json: directory /nonexistent-dir does not exist"),
                 (["scripts.evaluate", "--adapter", "/nonexistent"], "--adapter: /nonexistent does not exist")]
        for args, message in cases:
            with self.subTest(args=args):
                proc = run_script(*args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertEqual(len(proc.stderr.splitlines()), 1, proc.stderr)
                self.assertIn(message, proc.stderr)
                self.assertTrue(proc.stderr.startswith("error: "))

    def test_evaluate_help_keeps_the_endpoint_usage_on_two_lines(self):
        proc = run_script("scripts.evaluate", "--help")
        self.assertIn("--endpoint-model NAME [--api-key-env VAR] \\\n        [--concurrency 4]", proc.stdout)


class TestPlayerChoice(unittest.TestCase):
    def test_a_secret_that_is_not_a_word_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.play", "--human", "--secret", "cranx"], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stderr.strip().splitlines()[-1],
                         "error: --secret: 'cranx' is not in the allowed word list (see python -m scripts.play --help)")

    def test_an_adapter_names_its_base_model(self):
        from scripts import model_for_adapter

        self.assertEqual(model_for_adapter(None, "adapters/recipe"), "smollm2-135m-instruct")
        self.assertEqual(model_for_adapter("smollm2-135m-instruct", "adapters/recipe"), "smollm2-135m-instruct")
        with self.assertRaisesRegex(ValueError, "was trained on smollm2-135m-instruct, not gemma3-270m"):
            model_for_adapter("gemma3-270m", "adapters/recipe")
        with tempfile.TemporaryDirectory() as tmp:  # an adapter that records nothing: the default model
            self.assertEqual(model_for_adapter(None, tmp), "smollm2-135m-instruct")

    def test_evaluate_needs_a_player(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--n", "2"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("one of --policy, --model (or --adapter), --compare, --endpoint is required", proc.stderr)


class TestDoctor(unittest.TestCase):
    def test_the_blas_path_is_never_cut(self):
        import os

        from wordle_mlx.model import blas

        env = {**os.environ, "COLUMNS": "50"}
        proc = subprocess.run([sys.executable, "-m", "scripts.doctor"], cwd=ROOT, capture_output=True, text=True,
                              env=env, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        line = next(l for l in proc.stdout.splitlines() if l.strip().startswith("BLAS"))
        if blas.loaded_path:
            self.assertTrue(line.endswith(blas.loaded_path), line)
        self.assertNotIn("…", proc.stdout)
        device = next(l for l in proc.stdout.splitlines() if l.strip().startswith("device"))
        self.assertRegex(device, r"(CPU|GPU)(,| backend).*(backend|Metal|CUDA)")  # which, and why
        math = next(l for l in proc.stdout.splitlines() if l.strip().startswith("wordle math"))
        self.assertRegex(math, r"(CPU|GPU), counts by .*: ")

    def test_doctor_says_when_the_pattern_device_is_forced(self):
        from unittest import mock

        from scripts import doctor

        with mock.patch.dict(os.environ, {"WORDLE_MLX_PATTERNS_DEVICE": "cpu"}):
            self.assertEqual(doctor.wordle_math_in_words(), "CPU, counts by numpy bincount: WORDLE_MLX_PATTERNS_DEVICE is set")

    def test_a_bad_pattern_device_setting_is_one_line_from_any_script(self):
        env = {**os.environ, "WORDLE_MLX_PATTERNS_DEVICE": "tpu"}
        for script in ("scripts.doctor", "scripts.calculate_word_entropy"):
            proc = subprocess.run([sys.executable, "-m", script], cwd=ROOT, capture_output=True, text=True,
                                  env=env, timeout=120)
            self.assertEqual(proc.returncode, 2, script)
            self.assertEqual(proc.stderr.strip(), "error: WORDLE_MLX_PATTERNS_DEVICE='tpu': expected cpu or gpu (or unset)")

    def test_doctor_names_cuda_and_its_float32_precision(self):
        from types import SimpleNamespace
        from unittest import mock

        from scripts import doctor

        gpu = object()
        fake = SimpleNamespace(gpu=gpu, default_device=lambda: gpu, metal=SimpleNamespace(is_available=lambda: False),
                               cuda=SimpleNamespace(is_available=lambda: True))
        with mock.patch.dict(os.environ, {"MLX_ENABLE_TF32": "1"}):
            self.assertIn("CUDA backend", doctor.device_in_words(fake))
            self.assertIn("TF32 precision", doctor.device_in_words(fake))
        with mock.patch.dict(os.environ, {"MLX_ENABLE_TF32": "0"}):
            self.assertIn("full float32", doctor.device_in_words(fake))


if __name__ == "__main__":
    unittest.main()


class TestEvaluateWords(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_word_list_of_ones_own_is_played_and_fingerprinted(self):
        from wordle_mlx.wordle import words

        path = self.dir / "mine.txt"
        path.write_text("# today's and a few more\nSnafu\nkefir\n\ncrane  # an answer too\nsnafu\n")
        out = self.dir / "r.json"
        proc = run_script("scripts.evaluate", "--policy", "frequent", "--words", str(path), "--json", str(out))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        report = json.loads(out.read_text())
        self.assertEqual(sorted(g["secret"] for g in report["games"]), ["crane", "kefir", "snafu"])
        self.assertEqual((report["words_file"], report["words_size"]), (str(path), 3))
        self.assertEqual(report["words_sha256"], words.words_sha256(["snafu", "kefir", "crane"]))
        self.assertEqual(report["wins"], 3)
        proc = run_script("scripts.evaluate", "--policy", "frequent", "--words", str(path), "--n", "2", "--seed", "1",
                          "--json", str(out))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(json.loads(out.read_text())["games"]), 2)

    def test_games_at_once_below_one_is_one_error_line(self):
        proc = run_script("scripts.evaluate", "--policy", "frequent", "--n", "3", "--games-at-once", "0")
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stderr.splitlines()[-1], "error: --games-at-once: expected a positive number of games, "
                                                       "got 0 (see python -m scripts.evaluate --help)")

    def test_the_first_word_that_is_not_allowed_is_named(self):
        path = self.dir / "bad.txt"
        path.write_text("crane\nsnafu\ncranx\nzzzzz\n")
        proc = run_script("scripts.evaluate", "--policy", "frequent", "--words", str(path))
        self.assertEqual(proc.returncode, 2)
        self.assertEqual(proc.stderr.splitlines(), [f"error: --words {path} line 3: 'cranx' is not an allowed "
                                                    f"five-letter word (see python -m scripts.evaluate --help)"])

    def test_more_games_than_words_says_so(self):
        proc = run_script("scripts.evaluate", "--policy", "optimal", "--n", "100000")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("note: --n 100000 is more than the 315 words of the eval split: playing all 315", proc.stderr)

    def test_compare_names_the_file_that_is_not_a_report(self):
        out = self.dir / "r.json"
        run_script("scripts.evaluate", "--policy", "optimal", "--n", "3", "--json", str(out))
        proc = run_script("scripts.evaluate", "--compare", "config/quickstart.json", str(out))
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.splitlines(), ["error: --compare: config/quickstart.json is not an evaluation "
                                                    "report (scripts.evaluate --json writes them)"])

    def test_adapters_are_labelled_by_their_own_directory(self):
        from wordle_mlx.play.evaluate import adapter_label

        self.assertEqual(adapter_label("adapters/recipe"), "recipe")
        self.assertEqual(adapter_label("adapters/recipe_sft_long/"), "recipe_sft_long")
        self.assertEqual(adapter_label("logs/qwen-grpo/adapters"), "qwen-grpo")
        self.assertEqual(adapter_label("wip/grpo-gemma-long/kept/step_0010"), "grpo-gemma-long step_0010")

    def test_a_cut_adapter_file_is_named_not_the_base_model(self):
        import shutil

        adapter = self.dir / "mine"
        shutil.copytree(ROOT / "adapters" / "recipe", adapter)
        weights = adapter / "adapters.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        proc = run_script("scripts.evaluate", "--adapter", str(adapter), "--n", "1")
        self.assertEqual(proc.returncode, 1)
        last = proc.stderr.strip().splitlines()[-1]
        self.assertRegex(last, rf"^error: adapter: {weights} is broken \(cut short: [\d,]+ of [\d,]+ bytes\)")
        self.assertNotIn("models/", last)
