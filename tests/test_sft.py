import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import mlx.core as mx
import numpy as np

from wordle_mlx.model import models
from wordle_mlx.train import grpo, logprobs, runs, sft
from wordle_mlx.wordle import words
from wordle_mlx.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def tiny_sft_config(logs: str, name: str, iters: int = 4, **extra):
    overrides = [f"logging.logs_dir={logs}", f"logging.run_name={name}", "sft.num_examples=12", "sft.num_valid=4",
                 f"sft.iters={iters}", "sft.eval_every=2", "sft.checkpoint_every=2", "sft.max_seq_tokens=2048",
                 "sft.learning_rate=0.01", "sft.warmup_steps=0"]
    overrides += [f"{k}={v}" for k, v in extra.items()]
    return load_config(ROOT / "config" / "tiny_test.json", overrides)


class TestSftData(unittest.TestCase):
    def test_loss_covers_only_the_completion_and_end_token(self):
        _, tokenizer = models.load_model(models.TINY_MODEL)
        record = {"messages": [{"role": "user", "content": "hi"}], "completion": "<think>x</think>\n<guess>CRANE</guess>"}
        seq = sft.tokenize(tokenizer, record, 4096)
        _, mask, _ = grpo.make_batch([seq])
        self.assertEqual(int(mask.sum()), len(seq.completion))
        self.assertEqual(seq.completion[-1], 2)  # <|im_end|> ends the assistant turn
        self.assertEqual(tokenizer.decode(seq.completion[:-1]), record["completion"])

    def test_too_long_example_is_an_error(self):
        _, tokenizer = models.load_model(models.TINY_MODEL)
        record = {"messages": [{"role": "user", "content": "x" * 100}], "completion": "<guess>CRANE</guess>"}
        with self.assertRaisesRegex(sft.SFTError, "sft.max_seq_tokens"):
            sft.tokenize(tokenizer, record, 32)

    def test_eval_secrets_in_a_training_file_are_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "leak.jsonl"
            leaked = words.split_words("eval")[0]
            path.write_text(json.dumps({"secret": leaked, "messages": [], "completion": "x"}) + "\n")
            with self.assertRaises(words.EvalLeakError):
                sft.read_records(path)

    def test_max_copies_caps_the_saved_training_examples(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = tiny_sft_config(tmp, "cap", **{"sft.num_examples": 60, "sft.max_copies": 1,
                                                    "sft.policy": "frequent", "sft.think_style": "none",
                                                    "sampling.think": "false"})
            train, _ = sft._data(config, Path(tmp))
            saved = (Path(tmp) / "sft_train.jsonl").read_text().splitlines()
        pairs = [(json.dumps(r["messages"]), r["completion"]) for r in train]
        self.assertEqual(len(pairs), len(set(pairs)))
        self.assertLess(len(train), 60)  # the opening alone comes up about 8 times in 60
        self.assertEqual(len(saved), len(train))

    def test_length_batches_group_similar_lengths(self):
        seqs = [grpo.TrainSequence([1] * n, [2], 1.0) for n in [9, 1, 5, 3, 7, 2]]
        batches = sft.length_batches(seqs, 2)
        self.assertEqual([[len(s.prompt) for s in b] for b in batches], [[1, 2], [3, 5], [7, 9]])


class TestSftRun(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_run_lowers_the_loss_and_writes_usable_adapters(self):
        run_dir = sft.train(tiny_sft_config(self.tmp.name, "s", iters=12, **{"sft.keep_adapters_every": 5}))
        metrics = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
        self.assertEqual(len(metrics), 12)
        self.assertEqual(sorted(p.name for p in (run_dir / "kept").iterdir()), ["step_0005", "step_0010"])
        self.assertIn("valid_loss", metrics[1])
        self.assertLess(np.mean([m["train_loss"] for m in metrics[-3:]]), np.mean([m["train_loss"] for m in metrics[:3]]))
        self.assertTrue((run_dir / "sft_train.jsonl").exists())
        train_secrets = {json.loads(l)["secret"] for l in (run_dir / "sft_train.jsonl").read_text().splitlines()}
        self.assertFalse(train_secrets & set(words.split_words("eval")))
        model, _ = models.load_model(models.TINY_MODEL, adapter_path=run_dir / "adapters")  # mlx-lm format
        self.assertTrue(any(k.endswith("lora_a") for k, _ in __import__("mlx.utils").utils.tree_flatten(model.parameters())))

    def test_output_to_a_file_gets_a_plain_line_every_ten_steps(self):
        import io

        from rich.console import Console

        out = io.StringIO()  # not a terminal: no bar, plain lines
        run_dir = sft.train(tiny_sft_config(self.tmp.name, "p", iters=12), console=Console(file=out, soft_wrap=True))
        steps = [l.split()[1] for l in out.getvalue().splitlines() if l.startswith("step ")]
        self.assertEqual(steps, ["10/12", "12/12"])
        self.assertRegex(out.getvalue(), r"step 10/12  loss \d\.\d{3}  valid \d\.\d{3}  \d+ tok/s  elapsed 0:\d\d:\d\d  ETA")
        self.assertTrue((run_dir / "adapters" / "adapter_config.json").exists())
        self.assertEqual(json.loads((run_dir / "adapters" / "adapter_config.json").read_text())["model"],
                         "tiny-random-llama")  # the base model the adapters were trained on

    def test_a_model_that_cannot_load_fails_before_any_data_is_made(self):
        from wordle_mlx.train import train_rl

        config = tiny_sft_config(self.tmp.name, "m", **{"model.name": "nosuch/model"})
        with mock.patch.object(sft, "_data", side_effect=AssertionError("data made first")), \
                mock.patch.object(train_rl.models, "load_model", side_effect=models.ModelLoadError("cannot load")):
            with self.assertRaisesRegex(models.ModelLoadError, "cannot load"):
                sft.train(config)
        self.assertFalse((Path(self.tmp.name) / "m").exists())

    def test_interrupted_run_resumes_to_the_same_weights(self):
        extra = {"sft.eval_every": 100, "sft.checkpoint_every": 100}
        straight = sft.train(tiny_sft_config(self.tmp.name, "a", iters=4, **extra))
        real_make_batch = logprobs.make_token_batch
        calls = []

        def interrupt_third_step(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            return real_make_batch(*args, **kwargs)

        with mock.patch.object(logprobs, "make_token_batch", side_effect=interrupt_third_step), \
                self.assertRaises(runs.Interrupted) as stop:
            sft.train(tiny_sft_config(self.tmp.name, "c", iters=4, **extra))
        stopped = stop.exception.run_dir
        self.assertEqual(json.loads((stopped / "checkpoint" / "state.json").read_text())["step"], 2)
        sft.train(load_config(None), resume=stopped)
        a = mx.load(str(straight / "adapters" / "adapters.safetensors"))
        c = mx.load(str(stopped / "adapters" / "adapters.safetensors"))
        for k in a:
            np.testing.assert_allclose(np.array(a[k]), np.array(c[k]), atol=1e-6)

    def test_cli_bad_file_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.train_sft", "--config", "config/tiny_test.json",
                               "--set", f"logging.logs_dir={self.tmp.name}", "--set", "sft.train_file=nope.jsonl"],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("SFT data file not found", proc.stderr)


if __name__ == "__main__":
    unittest.main()
