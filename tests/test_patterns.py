import contextlib
import io
import itertools
import json
import os
import random
import tempfile
import unittest
from collections import Counter
from math import log2
from pathlib import Path
from unittest import mock

import numpy as np

from wordle_mlx.wordle import patterns, words
from wordle_mlx.wordle.game import Turn, feedback, feedback_code, filter_candidates


def scalar_codes(guesses, answers):
    return np.array([[feedback_code(g, a) for a in answers] for g in guesses], dtype=np.uint8)


def manual_entropy(guess, candidates):
    counts = Counter(feedback(guess, c) for c in candidates)
    n = len(candidates)
    return -sum(k / n * log2(k / n) for k in counts.values())


class TestPatternCodes(unittest.TestCase):
    def test_random_dictionary_pairs_match_feedback(self):
        rng = random.Random(0)
        guesses = rng.sample(words.allowed(), 150)
        answers = rng.sample(words.answers(), 120)
        got = np.array(patterns.pattern_codes(guesses, answers))
        np.testing.assert_array_equal(got, scalar_codes(guesses, answers))

    def test_every_pair_over_a_three_letter_alphabet_matches_feedback(self):
        # 243 x 243 words made of a, b, c only: every repeated-letter situation there is
        ws = ["".join(p) for p in itertools.product("abc", repeat=5)]
        got = np.array(patterns.pattern_codes(ws, ws, chunk=100))
        np.testing.assert_array_equal(got, scalar_codes(ws, ws))

    def test_compiled_and_eager_kernels_agree(self):
        ws = ["".join(p) for p in itertools.product("abe", repeat=5)]
        eager = np.array(patterns.pattern_codes(ws, words.answers()[:300], compiled=False))
        fused = np.array(patterns.pattern_codes(ws, words.answers()[:300], compiled=True))
        np.testing.assert_array_equal(eager, fused)

    def test_external_cases_match(self):
        rows = [l.split("\t") for l in Path(__file__).with_name("external_feedback_cases.tsv").read_text().splitlines()[1:]]
        got = np.array(patterns.pattern_codes([r[0] for r in rows], [r[1] for r in rows]))
        for i, (g, s, fb) in enumerate(rows):
            self.assertEqual(int(got[i, i]), feedback_code(g, s), (g, s, fb))

    def test_output_is_uint8_guesses_by_answers(self):
        out = patterns.pattern_codes(["crane", "slate", "hello"], ["hello", "world"])
        self.assertEqual(tuple(out.shape), (3, 2))
        self.assertEqual(str(out.dtype), "mlx.core.uint8")

    def test_encode_rejects_bad_word(self):
        with self.assertRaisesRegex(ValueError, "'cr4ne'"):
            patterns.encode_words(["crane", "cr4ne"])


class TestEntropy(unittest.TestCase):
    def test_best_openers_match_checked_figures(self):
        bits = patterns.guess_entropies(words.answers(), guesses=["soare", "roate", "raise"])
        np.testing.assert_allclose(bits, [5.8860, 5.8828, 5.8779], atol=1e-4)

    def test_computing_the_opener_table_says_when_it_is_done(self):
        opened = [("soare", 5.886)] * len(words.allowed())
        with tempfile.TemporaryDirectory() as tmp, mock.patch.object(patterns, "compute_opener_entropies",
                                                                     return_value=opened):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                patterns.load_opener_entropies(Path(tmp) / "openers.tsv")
        lines = err.getvalue().splitlines()
        self.assertIn("computing them once", lines[0])
        self.assertRegex(lines[-1], r"opener entropies computed in \d+s, saved to .*openers\.tsv")

    def test_entropy_over_a_subset_matches_manual_count(self):
        rng = random.Random(3)
        cands = rng.sample(words.answers(), 40)
        guesses = rng.sample(words.allowed(), 30)
        bits = patterns.guess_entropies(cands, guesses=guesses)
        np.testing.assert_allclose(bits, [manual_entropy(g, cands) for g in guesses], atol=1e-5)

    def test_non_answer_candidates_are_computed_directly(self):
        cands = ["aahed", "crane", "zymes", "hello"]  # aahed, zymes are not answers
        bits = patterns.guess_entropies(cands, guesses=["soare", "hello"])
        np.testing.assert_allclose(bits, [manual_entropy("soare", cands), manual_entropy("hello", cands)], atol=1e-6)

    def test_weights_concentrated_on_one_candidate_give_zero_bits(self):
        bits = patterns.guess_entropies(["hello", "world", "crane"], guesses=["soare"], weights=[1.0, 0.0, 0.0])
        self.assertAlmostEqual(float(bits[0]), 0.0, places=6)

    def test_uniform_weights_equal_no_weights(self):
        cands = words.answers()[:100]
        np.testing.assert_allclose(
            patterns.guess_entropies(cands, guesses=["soare", "xylyl"], weights=[2.0] * 100),
            patterns.guess_entropies(cands, guesses=["soare", "xylyl"]), atol=1e-6)

    def test_partition_sizes_count_each_pattern(self):
        cands = words.answers()[500:700]
        sizes = patterns.partition_sizes(cands, guesses=["crane", "lolly"])
        self.assertEqual(sizes.shape, (2, 243))
        for row, g in zip(sizes, ["crane", "lolly"]):
            expected = Counter(feedback_code(g, c) for c in cands)
            self.assertEqual({k: int(v) for k, v in enumerate(row) if v}, dict(expected))

    def test_empty_candidates_raise(self):
        with self.assertRaisesRegex(ValueError, "candidates"):
            patterns.guess_entropies([])

    def test_top_opener_over_full_table_is_soare(self):
        openers = patterns.compute_opener_entropies()
        self.assertEqual([w for w, _ in openers[:3]], ["soare", "roate", "raise"])
        self.assertEqual(len(openers), 12972)


class TestCountingMethods(unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(5)
        self.codes = rng.integers(0, 243, size=(300, 97)).astype(np.uint8)  # (G, C)
        self.codes[:, :10] = 242  # heavy collisions in one bin
        self.weights = rng.random(97).astype(np.float32)

    def expected(self, weights=None):
        out = np.zeros((300, 243))
        for g, row in enumerate(self.codes):
            np.add.at(out[g], row, 1.0 if weights is None else weights)
        return out

    def test_every_method_counts_each_pattern(self):
        for method in patterns.COUNTING_METHODS:
            got = np.array(patterns.partition_counts(self.codes, method=method, chunk=64))
            self.assertEqual(got.dtype, np.float32, method)
            np.testing.assert_array_equal(got, self.expected(), err_msg=method)

    def test_every_method_sums_weights(self):
        for method in patterns.COUNTING_METHODS:
            got = np.array(patterns.partition_counts(self.codes, self.weights, method=method, chunk=64))
            np.testing.assert_allclose(got, self.expected(self.weights), rtol=1e-5, atol=1e-5, err_msg=method)

    def test_unknown_method_is_named(self):
        with self.assertRaisesRegex(ValueError, "'sorted'.*bincount"):
            patterns.partition_counts(self.codes, method="sorted")


class TestSavedTable(unittest.TestCase):
    def test_two_processes_saving_at_once_do_not_move_each_others_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "table.npy"
            real_save, other = np.save, []

            def save_then_another_process_saves(file, arr):
                real_save(file, arr)
                if not other:  # between this process's write and its rename
                    other.append(1)
                    with mock.patch("os.getpid", return_value=os.getpid() + 1):
                        patterns.save_pattern_table(np.ones((2, 3), np.uint8), path)

            with mock.patch.object(np, "save", side_effect=save_then_another_process_saves):
                patterns.save_pattern_table(np.zeros((2, 3), np.uint8), path)
            self.assertEqual(int(np.load(path).sum()), 0)  # the last rename wins
            self.assertEqual(sorted(p.name for p in Path(tmp).iterdir()), ["table.json", "table.npy"])


class TestWordleDevice(unittest.TestCase):
    def device(self, env: str | None = None, default_gpu: bool = False, metal: bool = False) -> str:
        import mlx.core as mx

        environ = {k: v for k, v in os.environ.items() if k != patterns.DEVICE_ENV}
        if env is not None:
            environ[patterns.DEVICE_ENV] = env
        with mock.patch.dict(os.environ, environ, clear=True), \
                mock.patch.object(patterns.mx, "default_device", return_value=mx.gpu if default_gpu else mx.cpu), \
                mock.patch.object(patterns.mx.metal, "is_available", return_value=metal):
            return patterns.wordle_device()

    def test_metal_gpu_keeps_the_work(self):
        self.assertEqual(self.device(default_gpu=True, metal=True), "gpu")

    def test_cuda_gpu_and_cpu_send_it_to_the_cpu(self):
        self.assertEqual(self.device(default_gpu=True, metal=False), "cpu")
        self.assertEqual(self.device(), "cpu")

    def test_environment_forces_the_cpu(self):
        self.assertEqual(self.device(" CPU ", default_gpu=True, metal=True), "cpu")

    def test_bad_environment_value_is_named(self):
        with self.assertRaisesRegex(ValueError, "WORDLE_MLX_PATTERNS_DEVICE='tpu': expected cpu or gpu"):
            self.device("tpu")

    @unittest.skipIf(__import__("mlx.core").core.is_available(__import__("mlx.core").core.gpu), "a GPU is here")
    def test_forced_gpu_without_one_says_so(self):
        with self.assertRaisesRegex(ValueError, "no GPU backend"):
            self.device("gpu")


class TestCandidatesFromTable(unittest.TestCase):
    def test_candidate_indices_match_the_scalar_filter(self):
        rng = random.Random(4)
        for _ in range(20):
            secret = rng.choice(words.answers())
            history = [Turn(g, feedback(g, secret)) for g in rng.sample(words.allowed(), 2)]
            idx = patterns.candidate_indices(history)
            self.assertEqual([words.answers()[i] for i in idx], filter_candidates(history))

    def test_guess_outside_allowed_still_filters(self):
        history = [Turn("qqqqe", feedback("qqqqe", "crane"))]
        idx = patterns.candidate_indices(history)
        self.assertEqual([words.answers()[i] for i in idx], filter_candidates(history))


class TestTableFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = Path(self.tmp.name) / "pattern_table.npy"

    def tearDown(self):
        patterns._table_cache.clear()
        self.tmp.cleanup()

    def test_missing_table_is_computed_saved_and_announced(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            table = patterns.load_pattern_table(self.path)
        self.assertIn("computing it", err.getvalue())
        self.assertTrue(self.path.exists())
        self.assertEqual(table.shape, (12972, 2315))
        rng = random.Random(5)
        for _ in range(300):
            i, j = rng.randrange(12972), rng.randrange(2315)
            self.assertEqual(int(table[i, j]), feedback_code(words.allowed()[i], words.answers()[j]))

    def test_saved_table_is_loaded_memory_mapped(self):
        table = patterns.compute_pattern_table()
        patterns.save_pattern_table(table, self.path)
        with mock.patch.object(patterns, "compute_pattern_table", side_effect=AssertionError("recomputed")):
            loaded = patterns.load_pattern_table(self.path)
        self.assertIsInstance(loaded, np.memmap)
        np.testing.assert_array_equal(loaded, table)

    def test_stale_table_is_recomputed(self):
        patterns.save_pattern_table(np.zeros((12972, 2315), np.uint8), self.path)
        meta = json.loads(self.path.with_suffix(".json").read_text())
        meta["answers_sha256"] = "0" * 64
        self.path.with_suffix(".json").write_text(json.dumps(meta))
        with contextlib.redirect_stderr(io.StringIO()):
            table = patterns.load_pattern_table(self.path)
        self.assertEqual(int(table[words.allowed_index()["crane"], words.answer_index()["crane"]]), 242)

    def test_corrupt_table_is_recomputed(self):
        patterns.save_pattern_table(np.zeros((12972, 2315), np.uint8), self.path)  # right shape, wrong codes
        with contextlib.redirect_stderr(io.StringIO()):
            table = patterns.load_pattern_table(self.path)
        self.assertEqual(int(table[words.allowed_index()["crane"], words.answer_index()["crane"]]), 242)

    def test_missing_table_without_fallback_raises_with_the_command(self):
        with self.assertRaisesRegex(FileNotFoundError, "scripts.calculate_word_entropy"):
            patterns.load_pattern_table(self.path, compute_if_missing=False)

    def test_data_home_follows_environment(self):
        with mock.patch.dict(os.environ, {"WORDLE_MLX_HOME": self.tmp.name}):
            self.assertEqual(patterns.data_home(), Path(self.tmp.name))


if __name__ == "__main__":
    unittest.main()
