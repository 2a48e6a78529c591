import hashlib
import unittest
from importlib import resources

from wordle_mlx.wordle import words

# sha256 of the files in ../shared/data (see its README): the shipped copies must be identical
SHIPPED_SHA256 = {
    "answers.txt": "f40e47975cf360ff9febe7d49c8e285054d8fa3fb9644cea575922060951d6ee",
    "allowed.txt": "feacc549249b5dcb43e2799fbbcda14ebc33d55904fb15d043779104e60c1579",
    "freq_map.json": "c09d38175bbaaf4ccf2bc35aeb3aaff328731693caf65d1eb98a3d1c85057071",
    "optimal_tree_normal.txt": "32a8663403a8cee0d83a0fb59f10c66f3c16c96c597080f9a196c9f0a5853259",
    "optimal_tree_hard.txt": "8f64edf386f9a9dbe980d8cf5bd88604ed59b015673cbb7dfb64a5040e9b521b",
}
# fingerprint of the eval split: changing the split (seed, size, algorithm) must be deliberate
EVAL_SPLIT_SHA256 = "ffe7b523a2593ceb46facb2e3a37cc1c3260d3bb2424729c9aa364c137707c7e"


class TestWordLists(unittest.TestCase):
    def test_shipped_files_match_shared_data(self):
        for name, digest in SHIPPED_SHA256.items():
            data = resources.files("wordle_mlx").joinpath("data", name).read_bytes()
            self.assertEqual(hashlib.sha256(data).hexdigest(), digest, name)

    def test_answers_count(self):
        self.assertEqual(len(words.answers()), 2315)

    def test_allowed_count(self):
        self.assertEqual(len(words.allowed()), 12972)

    def test_answers_are_allowed(self):
        self.assertTrue(set(words.answers()) <= words.allowed_set())

    def test_words_are_five_lowercase_letters(self):
        for w in words.allowed():
            self.assertTrue(len(w) == 5 and w.isascii() and w.isalpha() and w.islower(), w)

    def test_is_allowed_is_case_insensitive(self):
        self.assertTrue(words.is_allowed("CRANE"))
        self.assertFalse(words.is_allowed("abcde"))

    def test_frequencies_cover_allowed(self):
        self.assertEqual(set(words.word_frequencies()), words.allowed_set())


class TestSplit(unittest.TestCase):
    def test_split_sizes(self):
        self.assertGreaterEqual(len(words.split_words("eval")), 300)
        self.assertEqual(len(words.split_words("eval")) + len(words.split_words("train")), 2315)

    def test_split_is_disjoint_and_covers_answers(self):
        train, evals = set(words.split_words("train")), set(words.split_words("eval"))
        self.assertFalse(train & evals)
        self.assertEqual(train | evals, set(words.answers()))

    def test_split_is_pinned(self):
        self.assertEqual(words.words_sha256(words.split_words("eval")), EVAL_SPLIT_SHA256)

    def test_all_split_is_every_answer(self):
        self.assertEqual(words.split_words("all"), words.answers())

    def test_unknown_split_raises_naming_choices(self):
        with self.assertRaisesRegex(ValueError, "split: expected one of train, eval, all"):
            words.split_words("test")

    def test_sample_split_is_seeded_subset(self):
        a = words.sample_split("eval", 50, seed=3)
        self.assertEqual(a, words.sample_split("eval", 50, seed=3))
        self.assertNotEqual(a, words.sample_split("eval", 50, seed=4))
        self.assertEqual(len(set(a)), 50)
        self.assertTrue(set(a) <= set(words.split_words("eval")))


class TestNoEvalLeak(unittest.TestCase):
    def test_training_guard_rejects_an_eval_answer(self):
        leaked = words.split_words("eval")[7]
        with self.assertRaisesRegex(words.EvalLeakError, leaked):
            words.check_training_secrets(list(words.split_words("train")[:10]) + [leaked.upper()])

    def test_training_guard_accepts_the_train_split(self):
        words.check_training_secrets(words.split_words("train"))


if __name__ == "__main__":
    unittest.main()
