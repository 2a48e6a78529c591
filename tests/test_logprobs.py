"""The shared-prompt, completion-only paths (wordle_mlx.train.logprobs) equal the reference paths.

GRPO: loss, KL, clip fraction and every LoRA gradient of `grpo.update` with `shared_prompt` on
and off, float32, over groups with different prompt and completion lengths (so rows are padded),
with and without a KL term and with two iterations (ratios away from 1), with one group per chunk
and with several groups packed into a chunk (shared prefix, group parts, rows: three levels). SFT:
the batch loss and its gradients with a shared system prefix. Plus: GRPO memory stays flat over steps.
"""

import json
import tempfile
import unittest

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from tests.tiny import tiny_model
from wordle_mlx.model import lora, models
from wordle_mlx.play import rollout
from wordle_mlx.train import grpo, logprobs, sft, train_rl
from wordle_mlx.config import load_config
from wordle_mlx.play.prompts import build_messages
from wordle_mlx.wordle.game import GameState


def lora_model(model, seed: int = 1, scale: float = 0.02):
    mx.random.seed(seed)  # LoRA A matrices are random
    lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8))
    for _, m in lora.lora_modules(model):
        m.lora_b = mx.random.normal(m.lora_b.shape) * scale
    mx.eval(model.parameters())
    return model


def random_groups(rng: np.random.Generator, vocab: int, prompt_lengths, completion_max: int, n: int,
                  stop: int) -> list[grpo.TrainSequence]:
    """Groups of n sequences per prompt; prompts share their first 3 tokens; completions 1..max tokens."""
    head = [int(t) for t in rng.integers(3, vocab, size=3)]
    seqs = []
    for length in prompt_lengths:
        prompt = (head + [int(t) for t in rng.integers(3, vocab, size=length)])[:length]
        for _ in range(n):
            k = int(rng.integers(1, completion_max + 1))
            completion = [int(t) for t in rng.integers(3, vocab, size=k - 1)] + [stop]
            seqs.append(grpo.TrainSequence(prompt, completion, float(rng.normal())))
    return seqs


def update_both_paths(make_model, seqs, lr: float = 1.0, **settings):
    """Run grpo.update with each path from identical models (plain SGD: the change is minus lr times
    the gradients of all iterations); return {path: (stats, {name: change})}."""
    out = {}
    for shared in (True, False):
        model = make_model()
        before = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
        stats = grpo.update(model, optim.SGD(learning_rate=lr), seqs,
                            grpo.UpdateSettings(max_grad_norm=1e9, shared_prompt=shared, **settings))
        after = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
        out[shared] = (stats, {k: after[k] - before[k] for k in before})
    return out


class TestTokenBatch(unittest.TestCase):
    def test_group_prefix_is_the_prompt_but_its_last_token(self):
        seqs = [grpo.TrainSequence([5, 6, 7, 8], [9, 2], 1.0), grpo.TrainSequence([5, 6, 7, 8], [10, 11, 2], -1.0)]
        b = logprobs.make_token_batch(seqs)
        self.assertEqual(b.prefix.tolist(), [[5, 6, 7]])
        self.assertEqual(b.inputs.tolist(), [[8, 9, 0], [8, 10, 11]])  # right-padded with pad_id 0
        self.assertEqual(b.targets.tolist(), [9, 2, 10, 11, 2])  # completion tokens only, stop token included
        self.assertEqual(b.positions.tolist(), [0, 1, 3, 4, 5])
        self.assertEqual(b.rows.tolist(), [0, 0, 1, 1, 1])
        self.assertEqual(b.real_tokens, 13)

    def test_different_prompts_share_only_their_common_start(self):
        seqs = [grpo.TrainSequence([5, 6, 7, 8], [9], 1.0), grpo.TrainSequence([5, 6, 1], [2], 1.0)]
        b = logprobs.make_token_batch(seqs)
        self.assertEqual(b.prefix.tolist(), [[5, 6]])
        self.assertEqual(b.inputs.tolist(), [[7, 8], [1, 0]])
        self.assertEqual(b.targets.tolist(), [9, 2])
        self.assertEqual(b.positions.tolist(), [1, 2])

    def test_without_sharing_there_is_no_prefix(self):
        seqs = [grpo.TrainSequence([5, 6, 7], [9], 1.0), grpo.TrainSequence([5, 6, 7], [2], 1.0)]
        self.assertIsNone(logprobs.make_token_batch(seqs, share_prefix=False).prefix)


class TestGroupedTokenBatch(unittest.TestCase):
    def test_groups_share_the_common_prefix_and_keep_their_own_parts(self):
        a, b = [5, 6, 7, 8, 9], [5, 6, 1]
        seqs = [grpo.TrainSequence(a, [10, 2], 1.0), grpo.TrainSequence(b, [11, 2], 1.0), grpo.TrainSequence(a, [2], -1.0)]
        batch = logprobs.make_token_batch(seqs, by_group=True)
        self.assertEqual(batch.prefix.tolist(), [[5, 6]])
        self.assertEqual(batch.groups.tolist(), [[7, 8], [0, 0]])  # each prompt but its last token, after the prefix
        self.assertEqual(batch.group_lengths.tolist(), [2, 0])
        self.assertEqual(batch.row_group.tolist(), [0, 1, 0])
        self.assertEqual(batch.row_starts().tolist(), [4, 2, 4])  # where each row's inputs sit in its sequence
        self.assertEqual(batch.inputs.tolist(), [[9, 10], [1, 11], [9, 0]])
        self.assertEqual(batch.targets.tolist(), [10, 2, 11, 2, 2])
        self.assertEqual(batch.positions.tolist(), [0, 1, 2, 3, 4])
        self.assertEqual(batch.num_groups, 2)
        self.assertEqual(batch.processed_tokens, 2 + 4 + 6)

    def test_one_prompt_by_group_is_the_plain_layout(self):
        seqs = [grpo.TrainSequence([5, 6, 7, 8], [9, 2], 1.0), grpo.TrainSequence([5, 6, 7, 8], [10, 11, 2], -1.0)]
        grouped, plain = logprobs.make_token_batch(seqs, by_group=True), logprobs.make_token_batch(seqs)
        self.assertIsNone(grouped.groups)
        self.assertEqual(grouped.prefix.tolist(), plain.prefix.tolist())
        self.assertEqual(grouped.inputs.tolist(), plain.inputs.tolist())

    def test_packed_chunks_hold_whole_groups_up_to_the_size(self):
        seqs = random_groups(np.random.default_rng(7), 260, [12, 7, 20, 9], 5, 3, stop=2)
        chunks = grpo.packed_chunks(seqs, 6)
        self.assertEqual([len(c) for c in chunks], [6, 6])
        for c in chunks:
            self.assertEqual(len({tuple(s.prompt) for s in c}), 2)
        big = grpo.packed_chunks(seqs, 2)  # groups of 3 cut into 2 + 1, the pieces of 1 packed together
        self.assertTrue(all(len(c) <= 2 for c in big))
        self.assertEqual(sorted(id(s) for c in big for s in c), sorted(id(s) for s in seqs))


class TestLogprobsEqualReference(unittest.TestCase):
    def test_several_groups_in_one_batch(self):
        model = lora_model(tiny_model(0))
        seqs = random_groups(np.random.default_rng(8), 260, [12, 7, 20, 4], 9, 3, stop=2)
        seqs.append(grpo.TrainSequence(seqs[0].prompt[:4], [7, 2], 0.5))  # a prompt with no group part of its own
        tokens, mask, _ = grpo.make_batch(seqs)
        reference = np.array(grpo.token_logprobs(model, tokens, 0.7))[np.array(mask) > 0]
        batch = logprobs.make_token_batch(seqs, by_group=True)
        self.assertEqual(batch.num_groups, 5)
        np.testing.assert_allclose(np.array(logprobs.batch_logprobs(model, batch, 0.7)), reference, atol=2e-5)
        # each row must see its own group's part: pointing rows at another group changes the values a lot
        batch.row_group = np.roll(batch.row_group, 3)
        self.assertGreater(np.abs(np.array(logprobs.batch_logprobs(model, batch, 0.7)) - reference).max(), 1e-2)

    def test_models_without_the_body_head_layout_use_whole_rows(self):
        inner = lora_model(tiny_model(0))

        class Opaque:  # no `.model`: split_model gives up, batch_logprobs runs each whole row
            def __call__(self, tokens):
                return inner(tokens)

        seqs = random_groups(np.random.default_rng(9), 260, [10, 6, 15], 7, 2, stop=2)
        tokens, mask, _ = grpo.make_batch(seqs)
        reference = np.array(grpo.token_logprobs(inner, tokens, 1.0))[np.array(mask) > 0]
        for by_group in (True, False):
            got = logprobs.batch_logprobs(Opaque(), logprobs.make_token_batch(seqs, by_group=by_group), 1.0)
            np.testing.assert_allclose(np.array(got), reference, atol=2e-5)

    def test_tiny_model_logprobs_at_completion_positions(self):
        model = lora_model(tiny_model(0))
        seqs = random_groups(np.random.default_rng(0), 260, [12, 7, 20], 9, 3, stop=2)
        tokens, mask, _ = grpo.make_batch(seqs)
        reference = np.array(grpo.token_logprobs(model, tokens, 0.7))[np.array(mask) > 0]
        for share in (True, False):
            got = np.array(logprobs.batch_logprobs(model, logprobs.make_token_batch(seqs, share_prefix=share), 0.7))
            np.testing.assert_allclose(got, reference, atol=2e-5)
        # a broken position offset would be caught: shifting the targets changes the values a lot
        b = logprobs.make_token_batch(seqs)
        b.positions = mx.maximum(b.positions - 1, 0)
        self.assertGreater(np.abs(np.array(logprobs.batch_logprobs(model, b, 0.7)) - reference).max(), 1e-2)


class TestUpdateEqualsReference(unittest.TestCase):
    def check(self, seqs, make_model, atol, **settings):
        out = update_both_paths(make_model, seqs, **settings)
        (new, d_new), (old, d_old) = out[True], out[False]
        self.assertEqual(new.tokens, old.tokens)
        self.assertLess(new.processed_tokens, old.processed_tokens)  # the point: less work
        self.assertAlmostEqual(new.loss, old.loss, delta=atol)
        self.assertAlmostEqual(new.kl, old.kl, delta=atol)
        self.assertAlmostEqual(new.clip_fraction, old.clip_fraction, delta=1e-9)
        scale = max(float(np.abs(v).max()) for v in d_old.values())
        self.assertGreater(scale, 1e-4)  # the update moved the adapters
        for k in d_old:
            np.testing.assert_allclose(d_new[k], d_old[k], atol=atol * max(scale, 1.0), err_msg=k)
        return new, old

    def test_policy_gradient_one_iteration(self):
        seqs = random_groups(np.random.default_rng(1), 260, [14, 9, 22], 10, 4, stop=2)
        self.check(seqs, lambda: lora_model(tiny_model(0)), 1e-5, loss_batch_size=3)

    def test_several_groups_per_chunk(self):
        seqs = random_groups(np.random.default_rng(6), 260, [14, 9, 22, 30, 5], 10, 3, stop=2)
        head = [int(t) for t in np.random.default_rng(0).integers(3, 260, size=20)]  # a system prompt all share
        for s in seqs:
            s.prompt = head + s.prompt
        new, old = self.check(seqs, lambda: lora_model(tiny_model(0)), 1e-5, loss_batch_size=9, beta=0.05,
                              num_iterations=2)
        self.assertEqual(new.chunks, 2)  # 5 groups of 3 in chunks of 9 rows: 3 + 2 groups
        self.assertEqual(new.groups_per_chunk, 2.5)
        self.assertEqual(new.forward_passes, 6)  # prefix, group parts, rows: per chunk
        one = update_both_paths(lambda: lora_model(tiny_model(0)), seqs, loss_batch_size=9, pack_groups=False)[True][0]
        self.assertEqual((one.chunks, one.groups_per_chunk), (5, 1.0))
        self.assertLess(new.processed_tokens, one.processed_tokens)  # the shared prefix runs once per chunk

    def test_kl_and_two_iterations_clip(self):
        seqs = random_groups(np.random.default_rng(2), 260, [11, 18], 8, 5, stop=2)
        new, old = self.check(seqs, lambda: lora_model(tiny_model(0)), 1e-5, loss_batch_size=8, beta=0.1,
                              num_iterations=2, temperature=0.8)
        self.assertGreater(old.kl, 0.0)
        self.assertGreater(old.clip_fraction, 0.0)  # the second iteration's ratios moved past the clip range

    def test_zero_advantage_groups_are_left_out_the_same_way(self):
        seqs = random_groups(np.random.default_rng(3), 260, [10, 13], 6, 3, stop=2)
        for s in seqs[:3]:
            s.advantage = 0.0
        new, old = self.check(seqs, lambda: lora_model(tiny_model(0)), 1e-5, loss_batch_size=2)
        self.assertEqual(new.sequences, 3)


class TestSftLossEqualsReference(unittest.TestCase):
    def test_loss_and_gradients_with_a_shared_system_prefix(self):
        model = lora_model(tiny_model(0))
        rng = np.random.default_rng(4)
        system = [int(t) for t in rng.integers(3, 260, size=9)]
        seqs = [grpo.TrainSequence(system + [int(t) for t in rng.integers(3, 260, size=int(rng.integers(2, 12)))],
                                   [int(t) for t in rng.integers(3, 260, size=int(rng.integers(1, 8)))] + [2], 1.0)
                for _ in range(5)]
        tokens, mask, _ = grpo.make_batch(seqs)
        ref_loss, ref_grads = nn.value_and_grad(model, sft.completion_loss)(model, tokens, mask)
        batch = logprobs.make_token_batch(seqs, share_prefix=True)
        self.assertEqual(batch.prefix_len, 9)
        new_loss, new_grads = nn.value_and_grad(model, sft.token_batch_loss)(model, batch)
        self.assertAlmostEqual(float(new_loss), float(ref_loss), delta=1e-5)
        ref, new = dict(tree_flatten(ref_grads)), dict(tree_flatten(new_grads))
        for k in ref:
            np.testing.assert_allclose(np.array(new[k]), np.array(ref[k]), atol=1e-5, err_msg=k)


class TestDefaultModelEqualsReference(unittest.TestCase):
    """The same equality on SmolLM2-135M in float32 with real Wordle prompts (compact and plain)."""

    def test_update_equals_reference_on_the_default_model(self):
        _, tokenizer = models.load_model(models.DEFAULT_MODEL, dequantize="float32")

        def fresh():
            model, _ = models.load_model(models.DEFAULT_MODEL, dequantize="float32")
            return lora_model(model, scale=0.005)

        rng = np.random.default_rng(5)
        stop = sorted(tokenizer.eos_token_ids)[0]
        seqs = []
        for turns, fmt in ((["crane"], "compact"), (["soare", "until"], "plain")):
            state = GameState("moist")
            for g in turns:
                state = state.play(g)
            prompt = rollout.chat_prompt(tokenizer, build_messages(state.turns, fmt))
            for _ in range(3):
                k = int(rng.integers(2, 12))
                seqs.append(grpo.TrainSequence(prompt, [int(t) for t in rng.integers(100, 40000, size=k)] + [stop],
                                               float(rng.normal())))
        self.check_paths(seqs, fresh)

    def check_paths(self, seqs, fresh):
        out = update_both_paths(fresh, seqs, lr=0.05, loss_batch_size=3, beta=0.05, num_iterations=2)
        (new, d_new), (old, d_old) = out[True], out[False]
        self.assertAlmostEqual(new.loss, old.loss, delta=1e-5 * max(1.0, abs(old.loss)))
        self.assertAlmostEqual(new.kl, old.kl, delta=1e-5 * max(1.0, abs(old.kl)))
        self.assertGreater(old.kl, 0.0)
        scale = max(float(np.abs(v).max()) for v in d_old.values())
        self.assertGreater(scale, 1e-5)
        worst = max(float(np.abs(d_new[k] - d_old[k]).max()) for k in d_old)
        self.assertLess(worst, 1e-3 * scale, f"largest gradient difference {worst:.3g} vs scale {scale:.3g}")


class TestMemoryStaysFlat(unittest.TestCase):
    def test_active_memory_after_the_last_step_within_10_percent_of_the_second(self):
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config("config/tiny_test.json", [f"logging.logs_dir={tmp}", "logging.run_name=m",
                                                           "training.steps=6", "logging.progress=false",
                                                           "training.checkpoint_every=100"])
            from rich.console import Console

            run_dir = train_rl.train(config, console=Console(quiet=True))
            lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
        self.assertEqual(len(lines), 6)
        for key in ("active_memory_gb", "cache_memory_gb", "peak_memory_gb", "rollout_peak_memory_gb",
                    "update_peak_memory_gb"):
            self.assertIn(key, lines[0])
        second, last = lines[1]["active_memory_gb"], lines[-1]["active_memory_gb"]
        self.assertGreater(second, 0.0)
        self.assertLessEqual(abs(last - second), 0.1 * second, f"active memory {second:.4f} -> {last:.4f} GiB")


if __name__ == "__main__":
    unittest.main()
