import unittest

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from tests.tiny import tiny_model
from wordle_mlx.model import lora, models
from wordle_mlx.play import rollout
from wordle_mlx.train import grpo

PROMPT = [1, 120, 118, 104, 117, 13, 107, 108, 2, 13, 1, 100]


def lora_tiny(seed=0):
    model = tiny_model(seed)
    lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8))
    mx.random.seed(seed + 1)
    for _, m in lora.lora_modules(model):
        m.lora_b = mx.random.normal(m.lora_b.shape) * 0.01
    mx.eval(model.parameters())
    return model


def seq_logprob(model, seq: grpo.TrainSequence) -> float:
    tokens, mask, _ = grpo.make_batch([seq])
    return float((grpo.token_logprobs(model, tokens) * mask).sum())


class TestAdvantages(unittest.TestCase):
    def test_normalised_within_group(self):
        adv, zero = grpo.group_advantages([1.0, 2.0, 3.0, 4.0])
        self.assertFalse(zero)
        self.assertAlmostEqual(float(adv.mean()), 0.0)
        self.assertAlmostEqual(float(adv.std()), 1.0, places=3)

    def test_without_std_scaling(self):
        adv, _ = grpo.group_advantages([1.0, 3.0], scale=False)
        np.testing.assert_allclose(adv, [-1.0, 1.0])

    def test_equal_rewards_are_a_zero_variance_group(self):
        adv, zero = grpo.group_advantages([0.5] * 8)
        self.assertTrue(zero)
        self.assertTrue(np.all(adv == 0))


class TestBatch(unittest.TestCase):
    def test_mask_covers_exactly_the_completion_targets(self):
        tokens, mask, adv = grpo.make_batch([grpo.TrainSequence([5, 6, 7], [8, 9], 1.0),
                                             grpo.TrainSequence([5, 6], [8, 9, 2], -1.0)])
        self.assertEqual(tokens.tolist(), [[5, 6, 7, 8, 9], [5, 6, 8, 9, 2]])
        self.assertEqual(mask.tolist(), [[0, 0, 1, 1], [0, 1, 1, 1]])  # the stop token (2) counts
        self.assertEqual(adv.tolist(), [1.0, -1.0])

    def test_token_logprobs_match_a_manual_softmax(self):
        model = tiny_model()
        tokens = mx.array([[3, 50, 70, 90, 110]])
        lp = grpo.token_logprobs(model, tokens, temperature=0.7)
        logits = np.array(model(tokens[:, :-1]).astype(mx.float32)) / 0.7
        logsm = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
        expected = [logsm[0, t, int(tokens[0, t + 1])] for t in range(4)]
        np.testing.assert_allclose(np.array(lp)[0], expected, atol=1e-4)


class TestUpdate(unittest.TestCase):
    def settings(self, **kw):
        return grpo.UpdateSettings(**{"loss_batch_size": 4, "max_grad_norm": 100.0, **kw})

    def test_positive_advantage_rises_negative_falls(self):
        model = lora_tiny()
        good = grpo.TrainSequence(PROMPT, [40, 41, 42, 2], 1.0)
        bad = grpo.TrainSequence(PROMPT, [60, 61, 62, 2], -1.0)
        before = (seq_logprob(model, good), seq_logprob(model, bad))
        optimizer = grpo.make_optimizer(1e-2, steps=10, warmup_steps=0, weight_decay=0.0)
        stats = grpo.update(model, optimizer, [good, bad], self.settings())
        self.assertGreater(stats.grad_norm, 0.0)
        self.assertGreater(seq_logprob(model, good), before[0])
        self.assertLess(seq_logprob(model, bad), before[1])

    def test_zero_variance_group_gives_zero_gradient(self):
        model = lora_tiny()
        seqs = [grpo.TrainSequence(PROMPT, [40 + i, 41, 2], 0.0) for i in range(4)]
        tokens, mask, adv = grpo.make_batch(seqs)
        import mlx.nn as nn
        loss_and_grad = nn.value_and_grad(model, grpo.policy_loss)
        _, grads = loss_and_grad(model, tokens, mask, adv, None, None, 1.0, 0.2, 0.28, 0.0, float(mask.sum()))
        self.assertEqual(max(float(mx.abs(g).max()) for _, g in tree_flatten(grads)), 0.0)
        before = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
        stats = grpo.update(model, grpo.make_optimizer(1e-2, 10, 0, 0.0), seqs, self.settings())
        self.assertEqual(stats.sequences, 0)
        after = dict(tree_flatten(model.trainable_parameters()))
        self.assertTrue(all(np.array_equal(before[k], np.array(after[k])) for k in before))

    def test_policy_gradient_is_the_step_the_update_takes(self):
        model = lora_tiny()
        seqs = [grpo.TrainSequence(PROMPT, [40, 41, 42, 2], 1.0), grpo.TrainSequence(PROMPT, [60, 61, 2], -0.5),
                grpo.TrainSequence(PROMPT[:6], [50, 2], 0.7)]
        grads, tokens = grpo.policy_gradient(model, seqs, self.settings())
        self.assertEqual(tokens, 9)
        before = dict(tree_flatten(model.trainable_parameters()))
        import mlx.optimizers as optim
        grpo.update(model, optim.SGD(learning_rate=1.0), seqs, self.settings())
        after = dict(tree_flatten(model.trainable_parameters()))
        for k, g in tree_flatten(grads):
            np.testing.assert_allclose(np.array(before[k] - after[k]), np.array(g), atol=1e-6)

    def test_policy_gradients_of_parts_add_up_to_the_whole(self):
        model = lora_tiny()
        seqs = [grpo.TrainSequence(PROMPT, [40 + i, 41, 2], float(i) - 1.5) for i in range(4)]
        whole, tokens = grpo.policy_gradient(model, seqs, self.settings(), normalizer=1.0)
        first, _ = grpo.policy_gradient(model, seqs[:1], self.settings(), normalizer=1.0)
        rest, _ = grpo.policy_gradient(model, seqs[1:], self.settings(), normalizer=1.0)
        for (k, w), (_, a), (_, b) in zip(tree_flatten(whole), tree_flatten(first), tree_flatten(rest)):
            np.testing.assert_allclose(np.array(w), np.array(a + b), rtol=1e-4, atol=1e-5)

    def test_policy_gradient_of_zero_advantages_is_none(self):
        seqs = [grpo.TrainSequence(PROMPT, [40, 41, 2], 0.0)]
        self.assertEqual(grpo.policy_gradient(lora_tiny(), seqs, self.settings()), (None, 0))

    def test_kl_to_the_reference_is_zero_without_adapter_change(self):
        model = tiny_model()
        lora.apply_lora(model, lora.LoraSettings(rank=4))  # lora_b = 0: policy == reference
        seqs = [grpo.TrainSequence(PROMPT, [40, 41, 2], 1.0), grpo.TrainSequence(PROMPT, [50, 51, 2], -1.0)]
        stats = grpo.update(model, grpo.make_optimizer(1e-3, 10, 0, 0.0), seqs, self.settings(beta=0.1))
        self.assertAlmostEqual(stats.kl, 0.0, places=6)

    def test_kl_reference_can_be_the_starting_adapters(self):
        seqs = [grpo.TrainSequence(PROMPT, [40, 41, 2], 1.0), grpo.TrainSequence(PROMPT, [50, 51, 2], -1.0)]
        results = {}
        for label, kw in {"base": {"beta": 0.1}, "start": {"beta": 0.1, "reference": True}, "no kl": {}}.items():
            model = lora_tiny()  # lora_b != 0: the policy differs from the base model
            if kw.pop("reference", False):
                kw["reference_adapters"] = dict(tree_flatten(model.trainable_parameters()))
            stats = grpo.update(model, grpo.make_optimizer(1e-2, 10, 0, 0.0), seqs, self.settings(**kw))
            results[label] = (stats.kl, {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())})
        self.assertGreater(results["base"][0], 1e-6)
        self.assertAlmostEqual(results["start"][0], 0.0, places=7)
        # KL to the policy itself has zero gradient: the same update as without KL, and the swap restored
        # the current adapters before the gradient pass
        for k, v in results["no kl"][1].items():
            np.testing.assert_allclose(results["start"][1][k], v, atol=1e-7)

    def test_second_iteration_clips_large_ratios(self):
        model = lora_tiny()
        seqs = [grpo.TrainSequence(PROMPT, [40, 41, 42, 2], 1.0), grpo.TrainSequence(PROMPT, [60, 61, 62, 2], -1.0)]
        stats = grpo.update(model, grpo.make_optimizer(0.5, 10, 0, 0.0), seqs, self.settings(num_iterations=2))
        self.assertGreater(stats.clip_fraction, 0.0)


class TestBatchedSampling(unittest.TestCase):
    def test_forked_batched_rollout_matches_per_row_teacher_forcing(self):
        """Sampled tokens' log-probs from the batched forked-cache generator equal a fresh single-row pass."""
        model, tokenizer = models.load_model(models.TINY_MODEL)
        prompts = [[1, 120, 118, 104, 117, 13] + [50 + i] * (3 + i) for i in range(3)]  # different lengths
        mx.random.seed(3)
        groups = rollout.sample_groups(model, tokenizer, prompts, n=4, temperature=1.0, max_tokens=10)
        distinct = set()
        for prompt, group in zip(prompts, groups):
            for c in group:
                distinct.add(tuple(c.tokens))
                seq = grpo.TrainSequence(list(prompt), c.tokens, 0.0)
                tokens, mask, _ = grpo.make_batch([seq])
                per_token = np.array(grpo.token_logprobs(model, tokens))[0][np.array(mask)[0] > 0]
                np.testing.assert_allclose(per_token, c.logprobs, atol=1e-4)
        self.assertGreater(len(distinct), 6)  # rows sampled independently, not copies

    def test_greedy_batched_equals_greedy_one_by_one(self):
        model, tokenizer = models.load_model(models.TINY_MODEL)
        prompts = [[1, 120, 118, 104, 117, 13] + [60 + i] * (2 + 2 * i) for i in range(3)]
        batched = rollout.sample_groups(model, tokenizer, prompts, n=2, temperature=0.0, max_tokens=8)
        for prompt, group in zip(prompts, batched):
            single = rollout.sample_groups(model, tokenizer, [prompt], n=1, temperature=0.0, max_tokens=8)[0][0]
            for c in group:
                self.assertEqual(c.tokens, single.tokens)

    def test_each_prompt_samples_at_its_own_temperature_in_one_batch(self):
        model, tokenizer = models.load_model(models.TINY_MODEL)
        prompts = [[1, 120, 118, 104, 117, 13, 60, 60], [1, 120, 118, 104, 117, 13, 61, 61, 61]]
        greedy = rollout.sample_groups(model, tokenizer, prompts[:1], n=1, temperature=0.0, max_tokens=8)[0][0]
        mx.random.seed(5)
        cold, hot = rollout.sample_groups(model, tokenizer, prompts, n=6, temperature=[0.0, 2.0], max_tokens=8)
        self.assertEqual({tuple(c.tokens) for c in cold}, {tuple(greedy.tokens)})
        self.assertGreater(len({tuple(c.tokens) for c in hot}), 3)

    def test_one_temperature_per_prompt(self):
        model, tokenizer = models.load_model(models.TINY_MODEL)
        with self.assertRaisesRegex(ValueError, "2 temperatures for 1 prompts"):
            rollout.sample_groups(model, tokenizer, [PROMPT], n=2, temperature=[1.0, 0.5], max_tokens=4)


if __name__ == "__main__":
    unittest.main()
