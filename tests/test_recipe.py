"""The one-command recipe (wordle_mlx.recipe, scripts.recipe): its GPU configs' sizes against the CPU
recipe's, and the whole chain (SFT with chunked data, GRPO under a mask, exports, evaluations, plots,
summary) at a tiny scale on the CPU."""

from __future__ import annotations

import json
import tempfile
import unittest
from pathlib import Path

import mlx.core as mx

from wordle_mlx.config import load_config
from wordle_mlx.model import lora
from wordle_mlx import recipe
from wordle_mlx.train import sft

ROOT = Path(__file__).resolve().parents[1]
TINY_SFT = ["model.name=tiny-random-llama", "lora.rank=4", "sft.num_examples=16", "sft.data_chunks=2",
            "sft.num_valid=4", "sft.iters=3", "sft.batch_size=4", "sft.eval_every=3", "sft.checkpoint_every=3",
            "logging.progress=false"]
TINY_GRPO = ["training.steps=1", "training.games_per_step=2", "sampling.num_generations=2", "logging.progress=false",
             "logging.samples_per_step=1"]


class TestGpuRecipeSizes(unittest.TestCase):
    def setUp(self):
        self.cpu_sft = load_config(ROOT / "config" / "recipe_sft_long.json")
        self.gpu_sft = load_config(ROOT / "config" / "recipe_gpu_sft.json")
        self.cpu_grpo = load_config(ROOT / "config" / "recipe_grpo_masked.json")
        self.gpu_grpo = load_config(ROOT / "config" / "recipe_gpu_grpo.json")

    def test_sft_sees_four_times_the_cpu_recipes_examples_each_once(self):
        cpu, gpu = self.cpu_sft.sft, self.gpu_sft.sft
        self.assertGreaterEqual(gpu.iters * gpu.batch_size, 4 * cpu.iters * cpu.batch_size)
        self.assertGreaterEqual(gpu.num_examples, gpu.iters * gpu.batch_size)  # fresh data, not epochs
        for key in ("policy", "think_style", "min_turns", "max_turns", "rejected_rate", "repeat_rate"):
            self.assertEqual(getattr(gpu, key), getattr(cpu, key), key)
        self.assertEqual(self.gpu_sft.model.name, self.cpu_sft.model.name)
        self.assertEqual(self.gpu_sft.lora, self.cpu_sft.lora)

    def test_grpo_plays_twice_the_cpu_recipes_games_with_its_settings(self):
        cpu, gpu = self.cpu_grpo.training, self.gpu_grpo.training
        self.assertGreaterEqual(gpu.steps * gpu.games_per_step, 2 * cpu.steps * cpu.games_per_step)
        self.assertEqual(self.gpu_grpo.sampling, self.cpu_grpo.sampling)
        self.assertEqual(self.gpu_grpo.rewards, self.cpu_grpo.rewards)
        self.assertEqual(gpu.learning_rate, cpu.learning_rate)


class TestChunkedSftData(unittest.TestCase):
    def test_chunks_make_the_same_data_in_one_process_or_several(self):
        config = load_config(None)
        one = sft.make_records(config, 6, 3, chunks=2, workers=1)
        two = sft.make_records(config, 6, 3, chunks=2, workers=2)
        self.assertEqual(one, two)
        self.assertEqual(len(one), 6)
        self.assertNotEqual(one, sft.make_records(config, 6, 3))  # chunks are seeded apart from the plain run


class TestRecipeRun(unittest.TestCase):
    def test_tiny_recipe_end_to_end_then_a_rerun_skips_every_stage(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "recipe"
            sft_config = load_config(ROOT / "config" / "recipe_gpu_sft.json", TINY_SFT)
            grpo_config = load_config(ROOT / "config" / "recipe_gpu_grpo.json", TINY_GRPO)
            summary = recipe.run(sft_config, grpo_config, out, eval_words=3)

            weights = mx.load(str(out / "adapters" / lora.ADAPTER_WEIGHTS))
            self.assertTrue(all(v.dtype == mx.float16 for v in weights.values()))
            shipped = json.loads((out / "adapters" / lora.ADAPTER_CONFIG).read_text())
            self.assertEqual(shipped["model"], "tiny-random-llama")
            self.assertEqual(shipped["wordle_mlx"]["sampling"]["mask"], "allowed_new")
            grpo_run = json.loads((out / "grpo" / "config.json").read_text())
            self.assertEqual(grpo_run["model"]["adapter_path"], str(out / "sft" / "adapters"))
            for name, mask in (("eval_free", "none"), ("eval_masked", "allowed_new"), ("eval_sft_free", "none"),
                               ("eval_sft_masked", "allowed_new")):
                report = json.loads((out / f"{name}.json").read_text())
                self.assertEqual((report["n_games"], report["mask"]), (3, mask), name)
                self.assertEqual(summary["reports"][f"{name}.json"]["wins"], report["wins"])
            for png in ("sft.png", "training.png", "histogram.png"):
                self.assertGreater((out / png).stat().st_size, 1000, png)
            self.assertEqual(summary["sft_seen"]["examples"], 3 * 4)
            self.assertEqual(summary["grpo_games"], 2)
            self.assertTrue(summary["hardware"].startswith("cpu"))
            self.assertEqual(set(summary["grpo_vs_sft"]), {"free", "masked"})
            self.assertEqual(summary["grpo_vs_sft"]["free"]["wins"]["games"], 3)
            self.assertEqual(json.loads((out / "summary.json").read_text())["grpo_games"], 2)

            stamp = (out / "eval_free.json").stat().st_mtime_ns
            again = recipe.run(sft_config, grpo_config, out, eval_words=3)
            self.assertEqual((out / "eval_free.json").stat().st_mtime_ns, stamp)
            self.assertEqual(again["reports"], summary["reports"])


class TestRecipeCommand(unittest.TestCase):
    def run_script(self, *args: str):
        import subprocess
        import sys

        return subprocess.run([sys.executable, "-m", "scripts.recipe", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)

    def test_bad_input_is_one_line_and_leaves_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "recipe"
            for args, expected in ((["--sft", "nope.json"], "config file not found: nope.json"),
                                   (["--set-sft", "model.name=tiny-random-llama", "--set-grpo",
                                     "model.name=gemma3-270m"], "the recipe trains one model")):
                done = self.run_script("--out", str(out), *args)
                self.assertEqual(done.returncode, 1, done.stderr)
                self.assertEqual(done.stderr.strip().splitlines(), [f"error: {done.stderr.strip()[7:]}"])
                self.assertIn(expected, done.stderr)
                self.assertFalse(out.exists())


if __name__ == "__main__":
    unittest.main()
