import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import mlx.core as mx
import numpy as np
import mlx.nn as nn
import mlx_lm
from mlx.utils import tree_flatten

from tests.tiny import tiny_model, tiny_model_dir
from wordle_mlx.model import lora

X = mx.array([[5, 17, 40, 99, 3, 7]])
ROOT = Path(__file__).resolve().parents[1]


def perturb(model, scale=0.05, seed=0):
    """Give the zero-initialised lora_b random values so adapters change the output."""
    mx.random.seed(seed)
    for _, m in lora.lora_modules(model):
        m.lora_b = mx.random.normal(m.lora_b.shape) * scale
    mx.eval(model.parameters())


class TestApplyLora(unittest.TestCase):
    def setUp(self):
        self.model = tiny_model()
        self.base_logits = self.model(X)
        lora.apply_lora(self.model, lora.LoraSettings(rank=4, alpha=8))

    def test_only_lora_parameters_train(self):
        names = [k for k, _ in tree_flatten(self.model.trainable_parameters())]
        self.assertTrue(names)
        self.assertTrue(all(k.endswith(("lora_a", "lora_b")) for k in names))

    def test_default_targets_cover_all_seven_projections_in_every_block(self):
        wrapped = {n.split(".", 3)[-1] for n, _ in lora.lora_modules(self.model)}
        self.assertEqual(wrapped, set(lora.TARGET_MODULES.values()))
        self.assertEqual(len(lora.lora_modules(self.model)), 7 * 2)

    def test_scale_is_alpha_over_rank(self):
        self.assertEqual({m.scale for _, m in lora.lora_modules(self.model)}, {2.0})

    def test_fresh_adapters_do_not_change_the_output(self):
        self.assertEqual(float(mx.abs(self.model(X) - self.base_logits).max()), 0.0)

    def test_num_layers_limits_adapted_blocks(self):
        model = tiny_model()
        lora.apply_lora(model, lora.LoraSettings(rank=2, num_layers=1, targets=("q", "v")))
        self.assertEqual(sorted(n for n, _ in lora.lora_modules(model)),
                         ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"])

    def test_unknown_target_raises(self):
        with self.assertRaisesRegex(ValueError, "lora target 'qkv'"):
            lora.apply_lora(tiny_model(), lora.LoraSettings(targets=("qkv",)))

    def test_quantized_base_gets_qlora(self):
        model = tiny_model()
        nn.quantize(model, group_size=32, bits=4)
        lora.apply_lora(model, lora.LoraSettings(rank=4))
        perturb(model)
        loss, grads = nn.value_and_grad(model, lambda m, x: m(x).sum())(model, X)
        flat = dict(tree_flatten(grads))
        self.assertTrue(flat and all(k.endswith(("lora_a", "lora_b")) for k in flat))
        self.assertGreater(float(mx.abs(flat["model.layers.0.self_attn.q_proj.lora_a"]).sum()), 0.0)


class TestReferencePolicy(unittest.TestCase):
    def test_disabled_adapters_give_the_base_model_and_restore(self):
        model = tiny_model()
        base = model(X)
        lora.apply_lora(model, lora.LoraSettings(rank=4))
        perturb(model)
        adapted = model(X)
        self.assertGreater(float(mx.abs(adapted - base).max()), 1e-3)
        with lora.adapters_disabled(model):
            self.assertEqual(float(mx.abs(model(X) - base).max()), 0.0)
        self.assertEqual(float(mx.abs(model(X) - adapted).max()), 0.0)


class TestSaveLoadFuse(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.model_dir, _ = tiny_model_dir(Path(self.tmp.name))
        self.adapter_dir = Path(self.tmp.name) / "adapters"
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=4, targets=("q", "k", "v", "o", "down")))
        perturb(model)
        self.adapted_logits = model(X)
        lora.save_adapters(model, self.adapter_dir)

    def tearDown(self):
        self.tmp.cleanup()

    def test_adapter_files_are_in_mlx_lm_format(self):
        config = json.loads((self.adapter_dir / "adapter_config.json").read_text())
        self.assertEqual(config["fine_tune_type"], "lora")
        self.assertEqual(config["num_layers"], 2)
        self.assertEqual(config["lora_parameters"]["rank"], 4)
        self.assertTrue((self.adapter_dir / "adapters.safetensors").exists())

    def test_mlx_lm_loads_the_adapters(self):
        model, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(self.adapter_dir))
        self.assertLess(float(mx.abs(model(X) - self.adapted_logits).max()), 1e-6)

    def test_our_loader_restores_settings(self):
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.load_adapters(model, self.adapter_dir)
        self.assertEqual(model.lora_settings.targets, ("q", "k", "v", "o", "down"))
        self.assertLess(float(mx.abs(model(X) - self.adapted_logits).max()), 1e-6)

    def test_fused_logits_equal_adapter_logits(self):
        # float32 base: fusing is W + scale * B^T A^T, exact up to float rounding; tolerance 1e-4
        model, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(self.adapter_dir))
        lora.fuse_adapters(model)
        self.assertFalse(lora.lora_modules(model))
        self.assertLess(float(mx.abs(model(X) - self.adapted_logits).max()), 1e-4)

    def test_load_policy_answers_as_the_adapters_were_trained(self):
        from wordle_mlx.model.models import ModelLoadError
        from wordle_mlx.play.policy import load_policy

        (Path(self.tmp.name) / "config.json").write_text(json.dumps(
            {"sampling": {"prompt_format": "compact", "think": False, "mask": "allowed_new"}}))
        policy = load_policy(str(self.model_dir), self.adapter_dir, max_tokens=4)
        self.assertEqual((policy.fmt, policy.think, policy.mask, policy.max_tokens), ("compact", False, "allowed_new", 4))
        self.assertLess(float(mx.abs(policy.model(X) - self.adapted_logits).max()), 1e-5)  # the adapters are on
        policy = load_policy(str(self.model_dir), self.adapter_dir, fmt="plain", think=True, mask="none")
        self.assertEqual((policy.fmt, policy.think, policy.mask), ("plain", True, "none"))
        with self.assertRaises(ModelLoadError):
            load_policy(str(self.model_dir), Path(self.tmp.name) / "missing")

    def test_exported_float16_adapters_stand_alone(self):
        run = Path(self.tmp.name) / "run"
        (run / "adapters").mkdir(parents=True)
        for f in self.adapter_dir.iterdir():
            (run / "adapters" / f.name).write_bytes(f.read_bytes())
        (run / "config.json").write_text(json.dumps({"sampling": {"prompt_format": "compact", "think": False}}))
        out = Path(self.tmp.name) / "shipped"
        proc = subprocess.run([sys.executable, "-m", "scripts.export_adapters", "--adapter", str(run / "adapters"),
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        weights = mx.load(str(out / "adapters.safetensors"))
        self.assertTrue(all(v.dtype == mx.float16 for v in weights.values()))
        self.assertLess((out / "adapters.safetensors").stat().st_size,
                        0.6 * (self.adapter_dir / "adapters.safetensors").stat().st_size)
        from wordle_mlx.play.policy import run_answer_settings

        self.assertEqual(run_answer_settings(out), {"prompt_format": "compact", "think": False})  # no run beside it
        model, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(out))
        logits = model(X)
        self.assertEqual(logits.dtype, mx.float32)
        self.assertLess(float(mx.abs(logits - self.adapted_logits).max()), 1e-2)
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.load_adapters(model, out)  # what training on from shipped adapters does
        self.assertEqual({v.dtype for _, v in tree_flatten(model.trainable_parameters())}, {mx.float32})
        self.assertLess(float(mx.abs(model(X) - self.adapted_logits).max()), 1e-2)

    def test_fuse_cli_writes_a_standalone_model(self):
        out = Path(self.tmp.name) / "fused"
        proc = subprocess.run([sys.executable, "-m", "scripts.fuse", "--model", str(self.model_dir), "--adapter",
                               str(self.adapter_dir), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout, r"max \|logit\(fused\) - logit\(adapters\)\| = ")
        fused, _ = mlx_lm.load(str(out))
        self.assertLess(float(mx.abs(fused(X) - self.adapted_logits).max()), 1e-4)

    def test_fuse_cli_bad_adapter_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.fuse", "--model", str(self.model_dir), "--adapter",
                               str(Path(self.tmp.name) / "missing"), "--out", str(Path(self.tmp.name) / "f")],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("missing does not exist", proc.stderr)


class TestAverageAdapters(unittest.TestCase):
    """`average_adapters`: the mean of kept checkpoints' weight updates, as one mlx-lm LoRA adapter."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = Path(self.tmp.name)
        self.model_dir, _ = tiny_model_dir(root)
        self.sources = []
        for seed in (0, 1, 2):
            model, _ = mlx_lm.load(str(self.model_dir))
            lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8, targets=("q", "v", "down")))
            perturb(model, seed=seed)
            for _, m in lora.lora_modules(model):  # lora_a differs between sources too
                m.lora_a = m.lora_a + 0.1 * mx.random.normal(m.lora_a.shape)
            self.sources.append(lora.save_adapters(model, root / f"step_{seed}"))

    def tearDown(self):
        self.tmp.cleanup()

    def fused_weights(self, adapter: Path) -> dict:
        model, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(adapter))
        lora.fuse_adapters(model)
        return dict(tree_flatten(model.parameters()))

    def test_fused_average_is_the_mean_of_the_fused_sources(self):
        out, _ = lora.average_adapters(self.sources, Path(self.tmp.name) / "avg", "float32")
        fused = [self.fused_weights(s) for s in self.sources]
        averaged = self.fused_weights(out)
        for name, w in averaged.items():
            mean = sum(f[name] for f in fused) / len(fused)
            self.assertLess(float(mx.abs(w - mean).max()), 1e-5, name)

    def test_rank_is_the_sum_of_the_sources_ranks_and_mlx_lm_loads_it(self):
        out, _ = lora.average_adapters(self.sources[:2], Path(self.tmp.name) / "avg")
        config = json.loads((out / "adapter_config.json").read_text())
        self.assertEqual(config["lora_parameters"]["rank"], 8)
        self.assertEqual(config["wordle_mlx"]["averaged_from"], [str(s) for s in self.sources[:2]])
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.load_adapters(model, out)
        self.assertEqual(model.lora_settings.effective_scale, 2.0)  # the sources' scale, not alpha / 8
        self.assertEqual({m.scale for _, m in lora.lora_modules(model)}, {2.0})

    def test_an_adapter_averaged_with_itself_plays_as_itself(self):
        out, gap = lora.average_adapters([self.sources[0]] * 2, Path(self.tmp.name) / "avg", "float32")
        self.assertEqual(gap, 0.0)
        alone, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(self.sources[0]))
        twice, _ = mlx_lm.load(str(self.model_dir), adapter_path=str(out))
        self.assertLess(float(mx.abs(alone(X) - twice(X)).max()), 1e-5)

    def test_factor_gap_is_reported_for_different_sources(self):
        _, gap = lora.average_adapters(self.sources, Path(self.tmp.name) / "avg")
        self.assertGreater(gap, 0.01)

    def test_sources_trained_differently_are_refused(self):
        other = Path(self.tmp.name) / "other"
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=4, targets=("q", "v", "down")))  # scale 1, not 2
        lora.save_adapters(model, other)
        with self.assertRaisesRegex(ValueError, "was not trained like"):
            lora.average_adapters([self.sources[0], other], Path(self.tmp.name) / "avg")
        with self.assertRaisesRegex(ValueError, "at least two"):
            lora.average_adapters([self.sources[0]], Path(self.tmp.name) / "avg")

    def test_distances_are_relative_to_the_first_update(self):
        table = lora.update_distances(self.sources)
        self.assertEqual([table[i][i] for i in range(3)], [0.0] * 3)
        self.assertAlmostEqual(table[0][1], table[1][0], places=6)
        u = [lora.weight_updates(s) for s in self.sources]
        norm = sum(float(mx.sum(v * v)) for v in u[0].values()) ** 0.5
        want = sum(float(mx.sum((u[1][k] - u[2][k]) ** 2)) for k in u[1]) ** 0.5 / norm
        self.assertAlmostEqual(table[1][2], want, places=5)
        proc = subprocess.run([sys.executable, "-m", "scripts.export_adapters", "--distances", *map(str, self.sources)],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn(f"{table[1][2]:7.2%}", proc.stdout.splitlines()[2])

    def walk(self, steps: list[float]) -> list[Path]:
        """Adapters whose lora_b moves along one fixed direction by the given amounts."""
        model, _ = mlx_lm.load(str(self.model_dir))
        lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8, targets=("q", "v", "down")))
        perturb(model, seed=0)
        start = {n: (m.lora_b, mx.random.normal(m.lora_b.shape)) for n, m in lora.lora_modules(model)}
        out = []
        for i, t in enumerate(steps):
            for n, m in lora.lora_modules(model):
                m.lora_b = start[n][0] + t * start[n][1]
            out.append(lora.save_adapters(model, Path(self.tmp.name) / f"walk_{i}"))
        return out

    def test_increments_along_one_direction_have_cosine_one_and_back_minus_one(self):
        cos = lora.increment_cosines(lora.update_gram(self.walk([0.0, 1.0, 3.0, 2.0])))
        np.testing.assert_allclose(cos, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-3)
        proc = subprocess.run([sys.executable, "-m", "scripts.export_adapters", "--distances",
                               *map(str, self.walk([0.0, 1.0, 3.0]))], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout, r"walk_0->walk_1 +\+1\.00 +\+1\.00")

    def test_the_gram_from_factors_is_the_gram_of_the_updates(self):
        u = [lora.weight_updates(s) for s in self.sources]
        want = [[sum(float(mx.sum(a[k] * b[k])) for k in a) for b in u] for a in u]
        np.testing.assert_allclose(lora.update_gram(self.sources), want, rtol=1e-4, atol=1e-5)

    def test_cli_averages_and_bad_input_is_one_error_line(self):
        out = Path(self.tmp.name) / "avg"
        proc = subprocess.run([sys.executable, "-m", "scripts.export_adapters", "--average",
                               *map(str, self.sources), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("the mean of 3 adapters' weight updates (LoRA rank 12", proc.stdout)
        self.assertRegex(proc.stdout, r"averaging the LoRA factors instead would be [0-9.e-]+ off")
        self.assertTrue(all(v.dtype == mx.float16 for v in mx.load(str(out / "adapters.safetensors")).values()))
        proc = subprocess.run([sys.executable, "-m", "scripts.export_adapters", "--average", str(self.sources[0]),
                               str(Path(self.tmp.name) / "missing"), "--out", str(out)],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("missing needs adapter_config.json", proc.stderr)


if __name__ == "__main__":
    unittest.main()
