import json
import os
import tempfile
import unittest
from unittest import mock
from pathlib import Path

import mlx.core as mx
import mlx_lm

from tests.tiny import tiny_model, tiny_model_dir, write_tiny_gguf
from wordle_mlx.model import gguf


class TestGGUFImport(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.model_dir, cls.original = tiny_model_dir(Path(cls.tmp.name))
        cls.loaded, cls.tokenizer = mlx_lm.load(str(cls.model_dir))

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_config_uses_traditional_rope_for_permuted_qk(self):
        config = json.loads((self.model_dir / "config.json").read_text())
        self.assertTrue(config["rope_traditional"])
        self.assertEqual((config["num_hidden_layers"], config["num_key_value_heads"]), (2, 2))
        self.assertTrue(config["tie_word_embeddings"])

    def test_converted_model_computes_the_same_logits(self):
        x = mx.array([[5, 17, 40, 99, 3]])
        self.assertEqual(float(mx.abs(self.original(x) - self.loaded(x)).max()), 0.0)

    def test_tokenizer_round_trips_text(self):
        text = "hello world 123"
        self.assertEqual(self.tokenizer.decode(self.tokenizer.encode(text)), text)

    def test_tokenizer_applies_merges_and_splits_digits(self):
        ids = self.tokenizer.encode("hello 42")
        pieces = [self.tokenizer.decode([i]) for i in ids]
        self.assertEqual(pieces[0], "hell")  # merges h+e, l+l, he+ll
        self.assertEqual(pieces[-2:], ["4", "2"])  # digits one by one

    def test_control_tokens_are_single_special_tokens(self):
        self.assertEqual(self.tokenizer.encode("<|im_start|>")[:1], [1])
        self.assertEqual(self.tokenizer.eos_token_id, 2)

    def test_chat_template_comes_from_metadata(self):
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                                  tokenize=False)
        self.assertEqual(text, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


class TestQuantizedTensors(unittest.TestCase):
    def setUp(self):
        mx.random.seed(1)
        w4 = mx.random.normal((64, 128))
        w8 = mx.random.normal((300, 128))
        q4, q8 = mx.quantize(w4, group_size=32, bits=4), mx.quantize(w8, group_size=32, bits=8)
        self.w4, self.w8 = w4, w8
        self.tensors = {
            "blk.0.attn_q.weight": q4[0], "blk.0.attn_q.scales": q4[1], "blk.0.attn_q.biases": q4[2],
            "token_embd.weight": q8[0], "token_embd.scales": q8[1], "token_embd.biases": q8[2],
            "output_norm.weight": mx.ones((128,)),
        }

    def test_bits_are_inferred_per_tensor(self):
        _, bits = gguf.convert_weights(self.tensors)
        self.assertEqual(bits, {"model.layers.0.self_attn.q_proj": 4, "model.embed_tokens": 8})

    def test_quantization_config_overrides_the_odd_tensor(self):
        _, bits = gguf.convert_weights(self.tensors)
        meta = {"general.architecture": "llama", "llama.attention.head_count": mx.array(4), "llama.embedding_length": mx.array(128),
                "llama.block_count": mx.array(1), "llama.feed_forward_length": mx.array(256), "tokenizer.ggml.tokens": ["a"] * 300}
        config = gguf.model_config(meta, {**bits, "model.layers.0.self_attn.k_proj": 4}, tied=True)
        self.assertEqual(config["quantization"]["bits"], 4)
        self.assertEqual(config["quantization"]["model.embed_tokens"]["bits"], 8)

    def test_dequantize_expands_to_float(self):
        weights, bits = gguf.convert_weights(self.tensors, dequantize="float32")
        self.assertEqual(bits, {})
        self.assertNotIn("model.embed_tokens.scales", weights)
        self.assertEqual(weights["model.embed_tokens.weight"].dtype, mx.float32)
        self.assertLess(float(mx.abs(weights["model.embed_tokens.weight"] - self.w8).max()), 0.05)

    def test_unknown_dequantize_type_raises(self):
        with self.assertRaisesRegex(gguf.GGUFError, "dequantize"):
            gguf.convert_weights(self.tensors, dequantize="int2")


class TestGGUFErrors(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_garbage_file_gives_one_line_error(self):
        bad = self.dir / "bad.gguf"
        bad.write_bytes(b"this is not a gguf file at all" * 10)
        with self.assertRaises(gguf.GGUFError) as ctx:
            gguf.convert_gguf(bad, self.dir / "out")
        self.assertEqual(len(str(ctx.exception).splitlines()), 1)

    def test_failed_conversion_leaves_nothing_behind(self):
        src = write_tiny_gguf(self.dir / "t.gguf", tiny_model(), architecture="mamba")
        with self.assertRaisesRegex(gguf.GGUFError, "architecture 'mamba'"):
            gguf.convert_gguf(src, self.dir / "out")
        self.assertEqual(sorted(p.name for p in self.dir.iterdir()), ["t.gguf"])

    def test_random_bytes_are_not_a_gguf_file(self):
        bad = self.dir / "random.gguf"
        bad.write_bytes(os.urandom(1024))
        with self.assertRaisesRegex(gguf.GGUFError, r"is not a GGUF file \(magic b(['\"]).*\1, expected b'GGUF'\)$") as ctx:
            gguf.convert_gguf(bad, self.dir / "out")
        self.assertNotIn("K-quants", str(ctx.exception))

    def test_unknown_version_is_named(self):
        bad = self.dir / "v9.gguf"
        bad.write_bytes(b"GGUF" + (9).to_bytes(4, "little") + bytes(64))
        with self.assertRaisesRegex(gguf.GGUFError, "GGUF version 9 is not supported"):
            gguf.read_gguf(bad)

    def test_a_real_header_passes(self):
        src = write_tiny_gguf(self.dir / "t.gguf", tiny_model())
        self.assertIn(gguf.check_header(src), gguf.GGUF_VERSIONS)

    def test_model_loader_says_not_gguf_before_converting(self):
        from wordle_mlx.model import models

        bad = self.dir / "random.gguf"
        bad.write_bytes(os.urandom(1024))
        said = []
        with mock.patch.object(models, "_status", side_effect=said.append), \
                self.assertRaisesRegex(models.ModelLoadError, "is not a GGUF file"):
            models.resolve_model_path(str(bad))
        self.assertEqual(said, [])  # no "converting ..." line first

    def test_missing_file(self):
        with self.assertRaisesRegex(gguf.GGUFError, "not found"):
            gguf.read_gguf(self.dir / "nope.gguf")


if __name__ == "__main__":
    unittest.main()
