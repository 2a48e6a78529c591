import unittest

import mlx.core as mx
import numpy as np

from wordle_mlx.model import models
from wordle_mlx.play import rollout
from wordle_mlx.wordle import words
from wordle_mlx.play.guided import AllowedWordsProcessor


class TestAllowedWordsProcessor(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model, cls.tokenizer = models.load_model(models.TINY_MODEL)
        cls.processor = AllowedWordsProcessor(cls.tokenizer)
        prompt = rollout.chat_prompt(cls.tokenizer, [{"role": "user", "content": "guess"}])
        cls.prompt = prompt + list(cls.tokenizer.encode("<think>x</think>\n<guess>", add_special_tokens=False))

    def generate(self, processors, seed_prompt=None):
        groups = rollout.sample_groups(self.model, self.tokenizer, [seed_prompt or self.prompt], 1, 0.0, 14,
                                       logits_processors=processors)
        return groups[0][0].text

    def test_guided_span_spells_an_allowed_word_then_closes(self):
        text = self.generate([self.processor])
        word, rest = text[:5], text[5:]
        self.assertTrue(words.is_allowed(word.lower()), text)
        self.assertTrue(rest.startswith("</guess>"), text)

    def test_unguided_random_model_does_not(self):
        text = self.generate(None)
        self.assertFalse(words.is_allowed(text[:5].lower()) and text[5:].startswith("</guess>"), text)

    def test_outside_the_span_nothing_changes(self):
        self.assertIsNone(self.processor.span_prefix("<think>pattern ?????</think>\n"))
        self.assertIsNone(self.processor.span_prefix("<guess>CRANE</guess>"))
        self.assertEqual(self.processor.span_prefix("<think>x</think><guess>CR"), "CR")

    def test_allowed_ids_follow_the_trie(self):
        ids = set(self.processor.allowed_ids("CRAN").tolist())
        pieces = {self.tokenizer.decode([i]) for i in ids}
        self.assertIn("E", pieces)  # CRANE
        self.assertNotIn("Q", pieces)  # no CRANQ
        self.assertIsNone(self.processor.allowed_ids("QX"))  # off the trie: left alone

    def test_whole_word_may_only_close(self):
        pieces = {self.tokenizer.decode([i]) for i in self.processor.allowed_ids("CRANE").tolist()}
        self.assertTrue(pieces)
        self.assertTrue(all("</guess>".startswith(p) or p.isalpha() for p in pieces))
        self.assertIn("<", pieces)
        self.assertFalse(any(p.isalpha() for p in pieces))  # no 6-letter words



class TestWordGuessStyle(unittest.TestCase):
    def test_lowercase_word_tokens_with_a_leading_space(self):
        from wordle_mlx.model import models as m

        _, tokenizer = m.load_model(m.TINY_MODEL)
        processor = AllowedWordsProcessor(tokenizer)
        pieces = {tokenizer.decode([i]) for i in processor.allowed_ids("").tolist()}
        self.assertIn("c", pieces)
        self.assertIn("C", pieces)
        lower = {tokenizer.decode([i]) for i in processor.allowed_ids(" cra").tolist()}
        self.assertIn("n", lower)  # crane
        self.assertNotIn("N", lower)  # one case per word
        self.assertIn("<", {tokenizer.decode([i]) for i in processor.allowed_ids(" crane").tolist()})


class TestLegalMoveMasks(unittest.TestCase):
    """`allowed_new` removes played words; under a mask the GRPO loss scores the masked distribution,
    equal to a direct computation and to the log-probs the masked rollout sampled with."""

    @classmethod
    def setUpClass(cls):
        cls.model, cls.tokenizer = models.load_model(models.TINY_MODEL)
        prompt = rollout.chat_prompt(cls.tokenizer, [{"role": "user", "content": "guess"}])
        cls.prompt = prompt + list(cls.tokenizer.encode("<guess>", add_special_tokens=False))  # the span is open

    def pieces(self, processor, inside):
        return {self.tokenizer.decode([i]) for i in processor.allowed_ids(inside).tolist()}

    def test_allowed_new_removes_played_words_and_prefixes_only_they_continue(self):
        from wordle_mlx.play import guided

        allowed = ("CRANE", "CRANK", "SLATE")
        free = AllowedWordsProcessor(self.tokenizer, allowed)
        new = free.excluding(["crane", "slate"])
        self.assertIn("E", self.pieces(free, "CRAN"))
        self.assertNotIn("E", self.pieces(new, "CRAN"))  # CRANE was played
        self.assertIn("K", self.pieces(new, "CRAN"))
        self.assertIn("S", self.pieces(free, ""))
        self.assertNotIn("S", self.pieces(new, ""))  # SLATE was the only S word
        self.assertIsNone(guided.mask_processor(self.tokenizer, "none", ["crane"]))
        self.assertEqual(guided.mask_processor(self.tokenizer, "allowed_new", ["crane"]).exclude, {"CRANE"})
        with self.assertRaisesRegex(ValueError, "mask: expected one of none, allowed, allowed_new"):
            guided.mask_processor(self.tokenizer, "legal", [])

    def test_allowed_new_equals_the_mask_on_the_unplayed_words(self):
        import random

        from wordle_mlx.wordle import words as wordlists

        allowed = tuple(w.upper() for w in wordlists.allowed())
        rng = random.Random(0)
        for _ in range(3):
            played = rng.sample(allowed, 5)
            new = AllowedWordsProcessor(self.tokenizer).excluding(played)
            direct = AllowedWordsProcessor(self.tokenizer, tuple(w for w in allowed if w not in played))
            insides = [""] + [w[:k] for w in played for k in range(1, 6)] + [w + "</gu" for w in played]
            insides += [" " + w[:k].lower() for w in played for k in range(1, 6)]
            insides += [w[:rng.randint(1, 5)] for w in rng.sample(allowed, 30)]
            for inside in insides:
                got, want = new.allowed_ids(inside), direct.allowed_ids(inside)
                self.assertEqual(None if got is None else sorted(got.tolist()),
                                 None if want is None else sorted(want.tolist()), (played, inside))

    def test_masked_rollout_spells_only_new_words(self):
        from wordle_mlx.play import guided

        mask = guided.mask_processor(self.tokenizer, "allowed_new", ["crane"])
        mx.random.seed(0)
        group = rollout.sample_groups(self.model, self.tokenizer, [self.prompt], 6, 1.0, 12, prompt_processors=[[mask]])[0]
        for c in group:
            word = c.text[:5]
            self.assertTrue(words.is_allowed(word.lower()), c.text)
            self.assertNotEqual(word.upper(), "CRANE")

    def test_the_loss_scores_the_distribution_the_masked_samples_came_from(self):
        from wordle_mlx.play import guided
        from wordle_mlx.train import grpo, logprobs, train_rl

        mask = guided.mask_processor(self.tokenizer, "allowed_new", ["crane"])
        mx.random.seed(1)
        group = rollout.sample_groups(self.model, self.tokenizer, [self.prompt], 4, 1.0, 12, prompt_processors=[[mask]])[0]
        seqs = [grpo.TrainSequence(self.prompt, c.tokens, 1.0, train_rl.masked_ids(mask, self.prompt, c.tokens))
                for c in group]
        self.assertTrue(all(s.allowed for s in seqs))
        batch = logprobs.make_token_batch(seqs, by_group=True)
        got = np.array(logprobs.batch_logprobs(self.model, batch, 1.0))
        sampled = np.concatenate([np.array(c.logprobs) for c in group])
        np.testing.assert_allclose(got, sampled, atol=1e-4)  # what the masked rollout recorded
        direct = []
        for s in seqs:  # full logits, -inf outside each position's allowed ids, log-softmax
            full = s.prompt + s.completion
            logits = np.array(self.model(mx.array([full[:-1]]))[0], dtype=np.float64)
            for j, token in enumerate(s.completion):
                row = logits[len(s.prompt) - 1 + j].copy()
                if s.allowed[j] is not None:
                    keep = np.full(row.shape, -np.inf)
                    keep[s.allowed[j]] = 0.0
                    row = row + keep
                direct.append(row[token] - np.log(np.exp(row - row.max()).sum()) - row.max())
        np.testing.assert_allclose(got, np.array(direct), atol=1e-4)
        unmasked = np.array(logprobs.batch_logprobs(self.model, logprobs.make_token_batch(
            [grpo.TrainSequence(s.prompt, s.completion, 1.0) for s in seqs], by_group=True), 1.0))
        self.assertGreater(float(np.abs(unmasked - got).max()), 1.0)  # the mask matters

    def test_the_reference_path_refuses_masked_sequences(self):
        import mlx.optimizers as optim

        from wordle_mlx.train import grpo

        seq = grpo.TrainSequence(self.prompt, [5, 6], 1.0, [np.array([5]), None])
        with self.assertRaisesRegex(ValueError, "needs the shared-prompt update"):
            grpo.update(self.model, optim.SGD(1.0), [seq], grpo.UpdateSettings(shared_prompt=False))

    def test_policy_reports_its_mask(self):
        from wordle_mlx.play.policy import ModelPolicy

        policy = ModelPolicy(self.model, self.tokenizer, "compact", 0.0, 8, think=False, mask="allowed_new")
        self.assertEqual((policy.describe()["mask"], policy.describe()["guided"]), ("allowed_new", True))


class PieceTokenizer:
    """A tokenizer of fixed pieces (decode = concatenation): enough for the mask, which reads pieces only."""

    def __init__(self, pieces):
        self.pieces = list(pieces)
        self.vocab_size = len(self.pieces)

    def get_vocab(self):
        return {p: i for i, p in enumerate(self.pieces)}

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)

    def encode(self, text):  # greedy longest piece first
        ids, i = [], 0
        while i < len(text):
            j = max((k for k, p in enumerate(self.pieces) if text.startswith(p, i)), key=lambda k: len(self.pieces[k]))
            ids.append(j)
            i += len(self.pieces[j])
        return ids


LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
SPELLING = PieceTokenizer(["<", "</", "/", "guess", ">", " "] + LETTERS + [" " + c for c in LETTERS]
                          + [c.lower() for c in LETTERS] + [" " + c.lower() for c in LETTERS] + ["CR", "ANE", " crane"])


class TestSpelledMask(unittest.TestCase):
    """The `letters` guess style (` C R A N E`) under the mask: one ` X` token a letter, on the trie."""

    ALLOWED = ("CRANE", "CRANK", "CRAMP", "SLATE")

    def pieces(self, processor, inside):
        ids = processor.allowed_ids(inside)
        return None if ids is None else {SPELLING.decode([i]) for i in ids.tolist()}

    def test_only_single_letters_with_a_space_open_the_span(self):
        spelled = AllowedWordsProcessor(SPELLING, self.ALLOWED, spelled=True)
        self.assertEqual(self.pieces(spelled, ""), {" C", " S", " c", " s"})
        self.assertIn("CR", self.pieces(AllowedWordsProcessor(SPELLING, self.ALLOWED), ""))  # the word styles' mask

    def test_each_letter_keeps_the_word_on_the_trie(self):
        spelled = AllowedWordsProcessor(SPELLING, self.ALLOWED, spelled=True)
        self.assertEqual(self.pieces(spelled, " C R A"), {" N", " M"})
        self.assertEqual(self.pieces(spelled, " C R A N"), {" E", " K"})
        self.assertEqual(self.pieces(spelled, " c r a n"), {" e", " k"})  # one case per word

    def test_a_whole_spelled_word_may_only_close(self):
        spelled = AllowedWordsProcessor(SPELLING, self.ALLOWED, spelled=True)
        self.assertEqual(self.pieces(spelled, " C R A N E"), {"<", "</"})
        self.assertEqual(self.pieces(spelled, " C R A N E</"), {"guess", "g"})
        self.assertEqual(self.pieces(spelled, " C R A N E<"), {"/"})

    def test_text_that_is_not_spelled_or_off_the_trie_is_left_alone(self):
        spelled = AllowedWordsProcessor(SPELLING, self.ALLOWED, spelled=True)
        for inside in (" CR", "C", " C R A N E S", " Q", " C  R"):
            self.assertIsNone(spelled.allowed_ids(inside), inside)

    def test_allowed_new_removes_played_words_letter_by_letter(self):
        from wordle_mlx.play import guided

        new = guided.mask_processor(SPELLING, "allowed_new", ["crane", "slate"], "letters")
        self.assertTrue(new.spelled)
        self.assertFalse(guided.mask_processor(SPELLING, "allowed_new", ["crane"]).spelled)
        allowed = AllowedWordsProcessor(SPELLING, self.ALLOWED, spelled=True).excluding(["crane", "slate"])
        self.assertEqual(self.pieces(allowed, " C R A N"), {" K"})
        self.assertEqual(self.pieces(allowed, ""), {" C", " c"})  # SLATE was the only S word
        self.assertIsNone(allowed.allowed_ids(" C R A N E"))  # off the trie of new words

    def test_allowed_new_equals_the_spelled_mask_on_the_unplayed_words(self):
        import random

        allowed = tuple(w.upper() for w in words.allowed())
        rng = random.Random(0)
        for _ in range(3):
            played = rng.sample(allowed, 5)
            new = AllowedWordsProcessor(SPELLING, spelled=True).excluding(played)
            direct = AllowedWordsProcessor(SPELLING, tuple(w for w in allowed if w not in played), spelled=True)
            spell = lambda w: "".join(" " + c for c in w)  # noqa: E731
            insides = [""] + [spell(w[:k]) for w in played for k in range(1, 6)] + [spell(w) + "</" for w in played]
            insides += [spell(w[:rng.randint(1, 5)]) for w in rng.sample(allowed, 30)]
            for inside in insides:
                got, want = new.allowed_ids(inside), direct.allowed_ids(inside)
                self.assertEqual(None if got is None else sorted(got.tolist()),
                                 None if want is None else sorted(want.tolist()), (played, inside))

    def test_masked_random_logits_spell_an_allowed_new_word(self):
        from wordle_mlx.play import guided
        from wordle_mlx.play.prompts import parse_completion

        mask = guided.mask_processor(SPELLING, "allowed_new", ["crane"], "letters")
        rng = np.random.default_rng(0)
        for _ in range(20):
            tokens = SPELLING.encode("<guess>")
            start = len(tokens)
            while not SPELLING.decode(tokens[start:]).endswith("</guess>") and len(tokens) < start + 16:
                logits = mask(mx.array(tokens), mx.array(rng.normal(size=(1, SPELLING.vocab_size)).astype(np.float32)))
                tokens.append(int(mx.argmax(logits, axis=-1).item()))
            parsed = parse_completion(SPELLING.decode(tokens), strict=True, think=False)
            self.assertTrue(parsed.guess and words.is_allowed(parsed.guess) and parsed.guess != "crane",
                            SPELLING.decode(tokens))
            self.assertRegex(SPELLING.decode(tokens[start:]), r"^( [A-Za-z]){5}</guess>$")

    def test_a_policy_masks_letter_by_letter_when_its_adapters_spell(self):
        import json
        import tempfile
        from pathlib import Path

        from wordle_mlx.play.policy import run_answer_settings

        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "adapter_config.json").write_text(json.dumps({"wordle_mlx": {"sampling": {
                "prompt_format": "compact", "think": False, "mask": "allowed_new", "guess_style": "letters"}}}))
            self.assertEqual(run_answer_settings(tmp)["guess_style"], "letters")


if __name__ == "__main__":
    unittest.main()
