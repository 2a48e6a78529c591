"""Every architecture the product promises, on tiny random models: Llama (SmolLM2), Qwen3 and Gemma 3.

For each: LoRA on all seven projections, adapters saved and loaded by mlx-lm, fuse == unfused, the
batched forked-cache rollout == per-row teacher forcing (Gemma: past its 8-token sliding window, so its
rotating caches are forked and wrapped), shared-prefix log-probs and the GRPO update == the reference
path, and chat-template prompts that render the Wordle state.
"""

import tempfile
import unittest
from pathlib import Path

import mlx.core as mx
import mlx.optimizers as optim
import mlx_lm
import numpy as np
from mlx.utils import tree_flatten

from tests.test_logprobs import lora_model, random_groups
from wordle_mlx.model import lora, models
from wordle_mlx.play import rollout
from wordle_mlx.train import grpo, logprobs
from wordle_mlx.wordle.game import GameState
from wordle_mlx.play.prompts import build_messages
from wordle_mlx.model.tiny import MODEL_NAMES, make_model, model_config

X = mx.array([[5, 17, 40, 99, 3, 7, 11, 12, 13, 14, 15, 16, 17, 18]])  # longer than Gemma's window


def adapted(arch: str):
    return lora_model(make_model(0, arch))


def groups(rng: np.random.Generator, prompt_lengths, n: int) -> list[grpo.TrainSequence]:
    return random_groups(rng, 260, prompt_lengths, 9, n, stop=2)


class TestArchitectures(unittest.TestCase):
    def test_the_tiny_models_are_what_they_say(self):
        for name, arch in MODEL_NAMES.items():
            with self.subTest(model=name):
                model, _ = models.load_model(name)
                self.assertEqual(type(model).__module__, f"mlx_lm.models.{arch}")
        self.assertEqual(model_config(arch="gemma3_text")["sliding_window"], 8)

    def test_lora_covers_all_seven_projections_in_every_block(self):
        for name, arch in MODEL_NAMES.items():
            with self.subTest(model=name):
                model = adapted(arch)
                names = {n.split(".", 3)[-1] for n, _ in lora.lora_modules(model)}
                self.assertEqual(names, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"})
                self.assertEqual(len(lora.lora_modules(model)), 7 * len(model.layers))
                trainable = [k for k, _ in tree_flatten(model.trainable_parameters())]
                self.assertTrue(trainable and all(k.endswith(("lora_a", "lora_b")) for k in trainable))

    def test_adapters_load_in_mlx_lm_and_fuse_exactly(self):
        for name, arch in MODEL_NAMES.items():
            with self.subTest(model=name):
                with tempfile.TemporaryDirectory() as tmp:
                    model_dir = models.resolve_model_path(name)
                    base, _ = mlx_lm.load(model_dir)
                    mx.random.seed(1)
                    lora.apply_lora(base, lora.LoraSettings(rank=4, alpha=8))
                    for _, m in lora.lora_modules(base):
                        m.lora_b = mx.random.normal(m.lora_b.shape) * 0.05
                    want = base(X)
                    lora.save_adapters(base, Path(tmp) / "a")
                    loaded, _ = mlx_lm.load(model_dir, adapter_path=str(Path(tmp) / "a"))
                    self.assertLess(float(mx.abs(loaded(X) - want).max()), 1e-5)
                    self.assertGreater(float(mx.abs(want - mlx_lm.load(model_dir)[0](X)).max()), 1e-3)  # adapters matter
                    lora.fuse_adapters(loaded)
                    self.assertFalse(lora.lora_modules(loaded))
                    self.assertLess(float(mx.abs(loaded(X) - want).max()), 1e-4)

    def test_forked_rollout_equals_teacher_forcing(self):
        for name, _ in MODEL_NAMES.items():
            with self.subTest(model=name):
                model, tokenizer = models.load_model(name)
                prompts = [[1, 120, 118, 104, 117, 13] + [50 + i] * (3 + 3 * i) for i in range(3)]  # 9..15 tokens
                mx.random.seed(3)
                sampled = rollout.sample_groups(model, tokenizer, prompts, n=3, temperature=1.0, max_tokens=10)
                longest = 0
                for prompt, group in zip(prompts, sampled):
                    for c in group:
                        tokens, mask, _ = grpo.make_batch([grpo.TrainSequence(list(prompt), c.tokens, 0.0)])
                        per_token = np.array(grpo.token_logprobs(model, tokens))[0][np.array(mask)[0] > 0]
                        np.testing.assert_allclose(per_token, c.logprobs, atol=1e-4)
                        longest = max(longest, len(prompt) + len(c.tokens))
                self.assertGreater(longest, 16)  # twice Gemma's window

    def test_shared_prefix_logprobs_equal_the_reference(self):
        for name, arch in MODEL_NAMES.items():
            with self.subTest(model=name):
                model = adapted(arch)
                seqs = groups(np.random.default_rng(0), [12, 7, 20], 3)
                tokens, mask, _ = grpo.make_batch(seqs)
                reference = np.array(grpo.token_logprobs(model, tokens, 0.7))[np.array(mask) > 0]
                got = np.array(logprobs.batch_logprobs(model, logprobs.make_token_batch(seqs), 0.7))
                np.testing.assert_allclose(got, reference, atol=2e-5)

    def test_several_groups_per_batch_equal_the_reference(self):
        for name, arch in MODEL_NAMES.items():  # prompts past Gemma's 8-token window
            with self.subTest(model=name):
                model = adapted(arch)
                seqs = groups(np.random.default_rng(2), [12, 7, 20, 30], 3)
                tokens, mask, _ = grpo.make_batch(seqs)
                reference = np.array(grpo.token_logprobs(model, tokens, 0.7))[np.array(mask) > 0]
                batch = logprobs.make_token_batch(seqs, by_group=True)
                self.assertEqual(batch.num_groups, 4)
                got = np.array(logprobs.batch_logprobs(model, batch, 0.7))
                np.testing.assert_allclose(got, reference, atol=2e-5)

    def test_grpo_update_equals_the_reference_path(self):
        for name, arch in MODEL_NAMES.items():
            with self.subTest(model=name):
                seqs = groups(np.random.default_rng(1), [14, 9, 22], 4)
                changes = {}
                for shared in (True, False):
                    model = adapted(arch)
                    before = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
                    stats = grpo.update(model, optim.SGD(learning_rate=1.0), seqs,
                                        grpo.UpdateSettings(max_grad_norm=1e9, shared_prompt=shared, loss_batch_size=3,
                                                            beta=0.1))
                    changes[shared] = (stats, {k: np.array(v) - before[k]
                                               for k, v in tree_flatten(model.trainable_parameters())})
                (new, d_new), (old, d_old) = changes[True], changes[False]
                self.assertAlmostEqual(new.loss, old.loss, delta=1e-5)
                scale = max(float(np.abs(v).max()) for v in d_old.values())
                self.assertGreater(scale, 1e-4)
                for k in d_old:
                    np.testing.assert_allclose(d_new[k], d_old[k], atol=1e-5 * max(scale, 1.0), err_msg=k)

    def test_chat_prompts_render_the_state_and_open_the_answer(self):
        state = GameState("hello").play("crane")
        for name, _ in MODEL_NAMES.items():
            with self.subTest(model=name):
                _, tokenizer = models.load_model(name)
                ids = rollout.chat_prompt(tokenizer, build_messages(state.turns, "compact"))
                text = tokenizer.decode(ids)
                self.assertIn("tried CRANE", text)
                self.assertTrue(text.endswith("<|im_start|>assistant\n"), text[-40:])


if __name__ == "__main__":
    unittest.main()
