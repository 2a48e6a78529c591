import json
import math
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np

from tests.test_cli import run_script
from tests.test_train_rl import tiny_config, varied_score_group
from wordle_mlx.train import noise_scale, rewards, train_rl


def gram_of(mean: np.ndarray, noise_sd: float, games: int, seed: int = 0) -> np.ndarray:
    """The Gram matrix of `games` draws of mean + isotropic Gaussian noise."""
    rng = np.random.default_rng(seed)
    h = mean[None, :] + noise_sd * rng.standard_normal((games, len(mean)))
    return h @ h.T


class TestNoiseScale(unittest.TestCase):
    def test_recovers_the_noise_scale_of_known_gradients(self):
        dim, sd = 200, 0.5
        mean = np.full(dim, 0.1)  # |G|^2 = 2, tr S = 200 * 0.25 = 50: B_noise = 25
        result = noise_scale.noise_scale(gram_of(mean, sd, games=400))
        self.assertAlmostEqual(result.signal, 2.0, delta=4 * result.signal_se)
        self.assertAlmostEqual(result.noise, 50.0, delta=2.0)
        self.assertLess(result.b_noise_low, 25.0)
        self.assertGreater(result.b_noise_high, 25.0)
        self.assertAlmostEqual(result.signal_fraction(25), 0.5, delta=0.1)

    def test_the_standard_error_matches_the_spread_over_repeats(self):
        mean = np.full(50, 0.1)
        runs = [noise_scale.noise_scale(gram_of(mean, 0.5, games=40, seed=s)) for s in range(60)]
        spread = np.std([r.signal for r in runs])
        self.assertAlmostEqual(np.mean([r.signal_se for r in runs]) / spread, 1.0, delta=0.35)

    def test_pure_noise_has_no_upper_bound(self):
        result = noise_scale.noise_scale(gram_of(np.zeros(100), 1.0, games=60))
        self.assertTrue(math.isinf(result.b_noise_high))
        self.assertLess(abs(result.signal), 3 * result.signal_se)
        self.assertIsNone(result.to_dict()["b_noise_high"])

    def test_identical_gradients_are_all_signal(self):
        result = noise_scale.noise_scale(gram_of(np.arange(5.0), 0.0, games=4))
        self.assertAlmostEqual(result.noise, 0.0, places=9)
        self.assertAlmostEqual(result.b_noise, 0.0, places=9)
        self.assertAlmostEqual(result.mean_cosine, 1.0)
        self.assertAlmostEqual(result.signal_fraction(8), 1.0)

    def test_needs_three_games(self):
        with self.assertRaises(ValueError):
            noise_scale.noise_scale(np.eye(2))


class TestGameGradients(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.patch = mock.patch.object(rewards, "score_group", side_effect=varied_score_group)
        self.patch.start()
        self.config = tiny_config(self.tmp.name, "noise")

    def tearDown(self):
        self.patch.stop()
        self.tmp.cleanup()

    def measure(self, games: int, seed: int = 0):
        model, tokenizer = train_rl.load_policy_model(self.config)
        settings = train_rl.update_settings(self.config, model, None)
        return noise_scale.game_gradients_gram(model, tokenizer, self.config, games, settings, 0, seed)

    def test_one_gradient_a_game_in_a_symmetric_positive_gram(self):
        gram, counts = self.measure(3)  # two batches of games_per_step = 2, the second cut to one game
        self.assertEqual(gram.shape, (3, 3))
        np.testing.assert_allclose(gram, gram.T, rtol=1e-5, atol=1e-9)
        self.assertGreaterEqual(np.linalg.eigvalsh(gram).min(), -1e-6 * np.abs(gram).max())
        self.assertEqual(counts["games_with_gradient"], 3)
        self.assertGreater(counts["tokens"], 0)

    def test_the_seed_picks_the_games(self):
        a, _ = self.measure(3, seed=0)
        b, _ = self.measure(3, seed=0)
        c, _ = self.measure(3, seed=5)
        np.testing.assert_allclose(a, b, rtol=1e-5)
        self.assertFalse(np.allclose(a, c))


class TestNoiseScaleCommand(unittest.TestCase):
    def test_prints_the_noise_scale_and_writes_the_gram(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "noise.json"
            done = run_script("scripts.noise_scale", "--config", "config/tiny_test.json", "--games", "4",
                              "--json", str(out))
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("B_noise", done.stdout)
            report = json.loads(out.read_text())
            self.assertEqual(len(report["gram"]), 4)
            self.assertEqual(report["games"], 4)

    def test_too_few_games_is_one_error_line(self):
        done = run_script("scripts.noise_scale", "--config", "config/tiny_test.json", "--games", "2")
        self.assertEqual(done.returncode, 2)
        self.assertNotIn("Traceback", done.stderr)
        self.assertIn("--games", done.stderr)

    def test_a_missing_adapter_is_one_error_line(self):
        done = run_script("scripts.noise_scale", "--config", "config/tiny_test.json", "--adapter", "no/such/dir")
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn("adapter_path", done.stderr)


if __name__ == "__main__":
    unittest.main()
