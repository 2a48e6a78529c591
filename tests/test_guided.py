import unittest

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


if __name__ == "__main__":
    unittest.main()


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
