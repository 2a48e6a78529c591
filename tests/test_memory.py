import subprocess
import sys
import tempfile
import unittest
from unittest import mock
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx_lm.models.cache import make_prompt_cache

from tests.tiny import tiny_model, tiny_model_dir
from wordle_mlx.model import lora, memory
from wordle_mlx.config import Config, load_config


def measured_step_peak(model, loss_fn, *inputs) -> int:
    """Peak minus resident bytes of the second LoRA training step (loss, backward, AdamW) of
    `loss_fn(model, *inputs)`; the first step allocates the optimizer state."""
    optimizer = optim.AdamW(1e-4)
    step = nn.value_and_grad(model, loss_fn)
    loss, grads = step(model, *inputs)
    optimizer.update(model, grads)
    mx.eval(model.parameters(), optimizer.state)
    del loss, grads
    mx.synchronize()
    mx.clear_cache()
    base = mx.get_active_memory()
    mx.reset_peak_memory()
    loss, grads = step(model, *inputs)
    optimizer.update(model, grads)
    mx.eval(model.parameters(), optimizer.state, loss)
    return mx.get_peak_memory() - base


def measured_step_activations(model, batch: int, length: int) -> int:
    """Peak minus resident bytes of one LoRA training step on random full sequences."""

    def loss_fn(m, x):
        return nn.losses.cross_entropy(m(x[:, :-1]), x[:, 1:]).mean()

    return measured_step_peak(model, loss_fn, mx.random.randint(0, model.args.vocab_size, (batch, length + 1)))


class TestMemoryEstimate(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model_dir, _ = tiny_model_dir(Path(cls.tmp.name))
        cls.arch, cls.weights = memory.read_model_dir(cls.model_dir)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_architecture_is_read_from_the_directory(self):
        self.assertEqual((self.arch.layers, self.arch.hidden, self.arch.kv_heads, self.arch.head_dim), (2, 64, 2, 16))
        self.assertEqual(self.arch.act_bytes, 4)  # float32 tensors

    def test_weight_bytes_match_the_loaded_parameters(self):
        model = tiny_model()
        from mlx.utils import tree_flatten
        self.assertEqual(self.weights, sum(v.nbytes for _, v in tree_flatten(model.parameters())))

    def test_lora_parameter_count_matches_apply_lora(self):
        model = tiny_model()
        lora.apply_lora(model, lora.LoraSettings(rank=8))
        trainable, _ = lora.count_parameters(model)
        self.assertEqual(memory.lora_parameter_count(self.arch, 8, list(lora.DEFAULT_TARGETS), -1), trainable)

    def test_kv_cache_estimate_equals_mlx_lm_caches(self):
        # 6 rows x 300 tokens: mlx-lm allocates 512 (two steps of 256) per row
        model = tiny_model()
        cache = make_prompt_cache(model)
        model(mx.zeros((6, 300), dtype=mx.int32), cache=cache)
        mx.eval([c.state for c in cache])
        self.assertEqual(memory.kv_cache_bytes(self.arch, rows=6, tokens=300), sum(c.nbytes for c in cache))

    def test_training_activations_within_tolerance_of_measured_peak(self):
        # tolerance: measured peak of a real LoRA step within 0.6x-1.4x of the estimate
        for batch, length in [(4, 64), (8, 128)]:
            model = tiny_model(layers=2, hidden=128, heads=4, kv_heads=2, intermediate=256)
            lora.apply_lora(model, lora.LoraSettings(rank=8))
            arch = memory.Architecture(layers=2, hidden=128, intermediate=256, heads=4, kv_heads=2, head_dim=32,
                                       vocab=model.args.vocab_size, act_bytes=4)
            estimate = memory.activation_bytes(arch, batch, length)
            measured = measured_step_activations(model, batch, length)
            self.assertGreater(measured / estimate, 0.6, (batch, length, measured, estimate))
            self.assertLess(measured / estimate, 1.4, (batch, length, measured, estimate))

    def test_shared_prompt_activations_within_25_percent_of_measured_peak(self):
        from wordle_mlx.train import grpo, logprobs

        for batch, prompt, completion in [(4, 64, 16), (8, 128, 32), (8, 100, 10)]:
            model = tiny_model(layers=2, hidden=128, heads=4, kv_heads=2, intermediate=256)
            lora.apply_lora(model, lora.LoraSettings(rank=8))
            arch = memory.Architecture(layers=2, hidden=128, intermediate=256, heads=4, kv_heads=2, head_dim=32,
                                       vocab=model.args.vocab_size, act_bytes=4)
            rng = np.random.default_rng(0)
            ids = [int(t) for t in rng.integers(3, 260, size=prompt)]
            seqs = [grpo.TrainSequence(ids, [int(t) for t in rng.integers(3, 260, size=completion)], 1.0)
                    for _ in range(batch)]
            chunk = logprobs.make_token_batch(seqs)

            def loss_fn(m, b):
                return grpo.shared_prompt_loss(m, b, None, None, 1.0, 0.2, 0.28, 0.0, 1.0)[0]

            measured = measured_step_peak(model, loss_fn, chunk)
            estimate = memory.shared_prompt_activation_bytes(arch, batch, prompt, completion)
            self.assertLess(abs(estimate - measured), 0.25 * measured, (batch, prompt, completion, measured, estimate))

    def test_shared_prompt_estimate_is_the_default_and_smaller(self):
        shared = memory.estimate(self.arch, self.weights, load_config(None))
        reference = memory.estimate(self.arch, self.weights, load_config(None, ["training.shared_prompt=false"]))
        self.assertLess(shared.train_activations, reference.train_activations)

    def test_estimate_scales_kv_with_generations(self):
        small = memory.estimate(self.arch, self.weights, load_config(None, ["sampling.num_generations=4"]))
        big = memory.estimate(self.arch, self.weights, load_config(None, ["sampling.num_generations=8"]))
        self.assertEqual(big.kv_caches, 2 * small.kv_caches)
        self.assertEqual(big.peak, max(big.rollout_peak, big.train_peak))

    def test_estimate_for_config_reads_a_local_model(self):
        config = Config.model_validate({"model": {"name": str(self.model_dir)}})
        arch, est = memory.estimate_for_config(config)
        self.assertEqual(arch.layers, 2)
        self.assertEqual(est.weights, self.weights)


class TestAutoSizes(unittest.TestCase):
    ARCH = memory.Architecture(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64,
                               vocab=49152, act_bytes=4)  # SmolLM2-135M in float32

    def test_a_number_wins_and_auto_on_the_cpu_is_the_recipe_size_without_sizing(self):
        def never() -> int:
            raise AssertionError("sized by memory on the CPU")

        self.assertEqual(memory.resolve_rows(3, 8, never), 3)
        with mock.patch.object(memory, "backend", return_value="cpu"):
            self.assertEqual(memory.resolve_rows("auto", 8, never), 8)
        with mock.patch.object(memory, "backend", return_value="cuda"):
            self.assertEqual(memory.resolve_rows("auto", 8, lambda: 64), 64)

    def test_on_a_gpu_the_rows_grow_with_memory_and_fit_the_budget(self):
        sizes = [memory.auto_loss_batch_size(self.ARCH, 300, 16, 8, gb * 2**30) for gb in (1, 4, 16, 128)]
        self.assertEqual(sizes, sorted(sizes))
        self.assertGreater(sizes[-1], sizes[0])
        self.assertLessEqual(sizes[-1], memory.AUTO_MAX_ROWS)
        for gb, rows in zip((1, 4, 16, 128), sizes):
            if rows > 1:
                used = memory.shared_prompt_activation_bytes(self.ARCH, rows, 300, 16, groups=-(-rows // 8))
                self.assertLessEqual(used, memory.ACTIVATION_SHARE * gb * 2**30, (gb, rows))
        sft = [memory.auto_sft_batch_size(self.ARCH, 150, 12, gb * 2**30) for gb in (1, 16, 128)]
        self.assertEqual(sft, sorted(sft))
        self.assertLessEqual(memory.sft_activation_bytes(self.ARCH, sft[1], 150, 12), memory.ACTIVATION_SHARE * 16 * 2**30)

    def test_sft_estimate_matches_the_h200_peak_at_batch_256(self):
        # measured with MLX's CUDA build on an H200: SFT at batch 256 (~92 tokens, 9 answer tokens) peaked at 37.9 GiB
        estimate = memory.sft_activation_bytes(self.ARCH, 256, 92, 10) / 2**30
        self.assertLess(abs(estimate - 37.9) / 37.9, 0.25, estimate)

    def test_the_estimate_uses_the_resolved_chunk(self):
        weights = 513 * 2**20
        self.assertEqual(memory.estimate(self.ARCH, weights, load_config(None, ["training.loss_batch_size=3"])).loss_batch_size, 3)
        with mock.patch.object(memory, "backend", return_value="cpu"):
            self.assertEqual(memory.estimate(self.ARCH, weights, load_config(None)).loss_batch_size, 8)

    def test_sizes_of_a_loaded_model(self):
        model = tiny_model()
        lora.apply_lora(model, lora.LoraSettings(rank=8))
        arch, free = memory.loaded_model_sizes(model, limit_gb=1.0)
        self.assertEqual((arch.layers, arch.act_bytes), (model.args.num_hidden_layers, 4))
        from mlx.utils import tree_flatten
        weights = sum(v.nbytes for _, v in tree_flatten(model.parameters()))
        self.assertEqual(free, 2**30 - weights - 16 * lora.count_parameters(model)[0])

    def test_a_memory_limit_bounds_the_device_memory(self):
        self.assertEqual(memory.device_memory_bytes(2.0), 2 * 2**30)
        self.assertGreater(memory.device_memory_bytes(), 2**30)


class TestEstimateMemoryCli(unittest.TestCase):
    ROOT = Path(__file__).resolve().parents[1]

    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "scripts.estimate_memory", *args], cwd=self.ROOT,
                              capture_output=True, text=True)

    def test_prints_the_components_and_peak(self):
        with tempfile.TemporaryDirectory() as tmp:
            model_dir, _ = tiny_model_dir(Path(tmp))
            proc = self.run_cli("--set", f"model.name={model_dir}", "--set", "training.loss_batch_size=2")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for label in ["weights", "KV caches", "AdamW", "training activations", "run peak"]:
            self.assertIn(label, proc.stdout)

    def test_bad_override_is_one_error_line(self):
        proc = self.run_cli("--set", "lora.rank=0")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(), ["error: --set lora.rank=0: lora.rank: Input should be greater than or equal to 1 (got 0)"])


if __name__ == "__main__":
    unittest.main()
