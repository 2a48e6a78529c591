"""bfloat16 base weights with float32 LoRA parameters (`model.dequantize: bfloat16`, the usual GPU
compute dtype) train like float32: the GRPO update's direction and the SFT loss within stated
tolerances of the same model in float32, and the LoRA weights and their updates stay float32."""

import unittest

import mlx.core as mx
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from tests.test_logprobs import lora_model, random_groups
from tests.tiny import tiny_model
from wordle_mlx.train import grpo, logprobs, sft

GRPO_DIRECTION_TOL = 0.03  # |d_bf16 - d_f32| / |d_f32| of the LoRA update (measured: 0.008)
SFT_LOSS_TOL = 0.01  # relative


def model_in(dtype):
    """The tiny model with the same LoRA weights; base weights cast to `dtype`, LoRA kept float32."""
    model = lora_model(tiny_model(0))
    if dtype != mx.float32:
        base = [(k, v.astype(dtype)) for k, v in tree_flatten(model.parameters())
                if "lora_" not in k and v.dtype == mx.float32]
        model.update(tree_unflatten(base))
    return model


def flat(params) -> np.ndarray:
    return np.concatenate([np.array(v, dtype=np.float64).ravel() for _, v in sorted(tree_flatten(params))])


class TestBfloat16Base(unittest.TestCase):
    def setUp(self):
        self.seqs = random_groups(np.random.default_rng(1), 260, [14, 9, 22], 10, 4, stop=2)

    def test_the_base_is_bfloat16_and_lora_float32(self):
        model = model_in(mx.bfloat16)
        self.assertEqual({v.dtype for k, v in tree_flatten(model.parameters()) if "lora_" not in k}, {mx.bfloat16})
        self.assertEqual({v.dtype for _, v in tree_flatten(model.trainable_parameters())}, {mx.float32})

    def test_grpo_update_direction_within_tolerance_of_float32(self):
        deltas = {}
        for dtype in (mx.float32, mx.bfloat16):
            model = model_in(dtype)
            before = flat(model.trainable_parameters())
            grpo.update(model, optim.SGD(learning_rate=1.0), self.seqs,
                        grpo.UpdateSettings(max_grad_norm=1e9, loss_batch_size=6, beta=0.05))
            self.assertEqual({v.dtype for _, v in tree_flatten(model.trainable_parameters())}, {mx.float32})
            deltas[dtype] = flat(model.trainable_parameters()) - before
        d32, d16 = deltas[mx.float32], deltas[mx.bfloat16]
        self.assertGreater(np.linalg.norm(d32), 1e-4)
        self.assertLess(np.linalg.norm(d16 - d32) / np.linalg.norm(d32), GRPO_DIRECTION_TOL)

    def test_sft_loss_within_tolerance_of_float32(self):
        batch = logprobs.make_token_batch(self.seqs[:6], share_prefix=True)
        losses = {dtype: float(sft.token_batch_loss(model_in(dtype), batch)) for dtype in (mx.float32, mx.bfloat16)}
        self.assertLess(abs(losses[mx.bfloat16] - losses[mx.float32]) / losses[mx.float32], SFT_LOSS_TOL)
        self.assertNotEqual(losses[mx.bfloat16], losses[mx.float32])  # really computed in another dtype


if __name__ == "__main__":
    unittest.main()
