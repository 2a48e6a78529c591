"""wordle_mlx.model.ggml against an independent reader: the `gguf` package (llama.cpp's gguf-py, test-only).

Every GGML type the reader knows is dequantized from random blocks (sane float16 scales, random
quants) and compared with gguf-py's numpy dequantization; GGUF files written by gguf-py's writer
(K-quant, 32-block and float tensors, metadata of every value type) read back the same.
"""

import tempfile
import unittest
from pathlib import Path

import numpy as np

from wordle_mlx.model import ggml

try:
    import gguf
    from gguf.quants import dequantize as reference_dequantize
except ImportError:  # pragma: no cover - install.sh installs it (pyproject extra "test")
    gguf = None

# byte offsets of the float16 scale fields in each block type (the rest are random quants)
SCALE_FIELDS = {"Q8_0": [0], "Q4_0": [0], "Q5_0": [0], "Q4_1": [0, 2], "Q5_1": [0, 2], "Q4_K": [0, 2],
                "Q5_K": [0, 2], "Q6_K": [208]}


def random_blocks(rng: np.random.Generator, type_name: str, n_blocks: int) -> np.ndarray:
    """Raw GGML data of `n_blocks` random blocks with small, finite scales."""
    _, block, size = ggml.TYPES[ggml.TYPE_IDS[type_name]]
    if type_name in ("F32", "F16"):
        return rng.normal(0, 1, n_blocks).astype("<f4" if type_name == "F32" else "<f2").view(np.uint8)
    if type_name == "BF16":
        return (rng.normal(0, 1, n_blocks).astype("<f4").view("<u4") >> 16).astype("<u2").view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for offset in SCALE_FIELDS[type_name]:
        raw[:, offset:offset + 2] = rng.normal(0, 0.05, n_blocks).astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


@unittest.skipIf(gguf is None, "the gguf package (test-only dependency) is not installed")
class TestDequantize(unittest.TestCase):
    def test_every_type_equals_gguf_py(self):
        rng = np.random.default_rng(0)
        for type_name in ggml.TYPE_IDS:
            with self.subTest(type=type_name):
                raw = random_blocks(rng, type_name, 64)
                ours = ggml.dequantize(raw, type_name)
                theirs = reference_dequantize(raw, gguf.GGMLQuantizationType[type_name]).reshape(-1)
                self.assertEqual(ours.shape, theirs.shape)
                np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-5)
                self.assertGreater(np.abs(ours).max(), 0.0)

    def test_k_quant_layout_matters(self):
        """Swapping two sub-block scales changes the output (so the comparison above can fail)."""
        raw = random_blocks(np.random.default_rng(1), "Q4_K", 4).reshape(4, -1)
        swapped = raw.copy()
        swapped[:, [4, 5]] = swapped[:, [5, 4]]
        self.assertFalse(np.allclose(ggml.dequantize(raw, "Q4_K"), ggml.dequantize(swapped, "Q4_K")))

    def test_partial_blocks_and_unknown_types_are_one_line_errors(self):
        with self.assertRaisesRegex(ggml.GGMLError, "not whole blocks of 144"):
            ggml.dequantize(np.zeros(100, np.uint8), "Q4_K")
        with self.assertRaisesRegex(ggml.GGMLError, "IQ2_XS is not supported"):
            ggml.dequantize(np.zeros(100, np.uint8), "IQ2_XS")


@unittest.skipIf(gguf is None, "the gguf package (test-only dependency) is not installed")
class TestReadFile(unittest.TestCase):
    def test_file_written_by_gguf_py_reads_back(self):
        rng = np.random.default_rng(2)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t.gguf"
            writer = gguf.GGUFWriter(str(path), "gemma3")
            writer.add_uint32("gemma3.block_count", 3)
            writer.add_float32("gemma3.attention.layer_norm_rms_epsilon", 1e-6)
            writer.add_bool("tokenizer.ggml.add_bos_token", True)
            writer.add_string("general.name", "tiny")
            writer.add_int64("some.int64", -5)
            writer.add_array("tokenizer.ggml.tokens", ["<pad>", "▁a", "b"])
            writer.add_array("tokenizer.ggml.scores", [0.0, -1.5, -2.0])
            writer.add_array("tokenizer.ggml.token_type", [3, 1, 1])
            shapes = {"Q4_K": (4, 512), "Q5_K": (2, 256), "Q6_K": (3, 256), "Q8_0": (5, 64), "Q4_0": (2, 32),
                      "F16": (3, 7), "F32": (6,), "BF16": (2, 5)}
            raws = {}
            for type_name, shape in shapes.items():
                _, block, size = ggml.TYPES[ggml.TYPE_IDS[type_name]]
                n = int(np.prod(shape)) // block
                raw = random_blocks(rng, type_name, n)
                raws[type_name] = raw
                byte_shape = (*shape[:-1], shape[-1] // block * size)
                writer.add_tensor(f"t.{type_name}", raw.reshape(byte_shape), raw_dtype=gguf.GGMLQuantizationType[type_name])
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()

            ours = ggml.GGUFFile(path)
            self.assertEqual(ours.metadata["gemma3.block_count"], 3)
            self.assertAlmostEqual(ours.metadata["gemma3.attention.layer_norm_rms_epsilon"], 1e-6, places=12)
            self.assertIs(ours.metadata["tokenizer.ggml.add_bos_token"], True)
            self.assertEqual(ours.metadata["general.name"], "tiny")
            self.assertEqual(ours.metadata["some.int64"], -5)
            self.assertEqual(ours.metadata["tokenizer.ggml.tokens"], ["<pad>", "▁a", "b"])
            self.assertEqual(ours.metadata["tokenizer.ggml.scores"], [0.0, -1.5, -2.0])
            reader = gguf.GGUFReader(str(path))
            for t in reader.tensors:
                with self.subTest(tensor=t.name):
                    type_name = t.name.split(".")[1]
                    self.assertEqual(ours.tensors[t.name].shape, shapes[type_name])
                    self.assertEqual(ours.tensors[t.name].type_name, type_name)
                    np.testing.assert_array_equal(ours.raw(t.name), raws[type_name])
                    theirs = reference_dequantize(t.data, t.tensor_type).reshape(shapes[type_name])
                    np.testing.assert_allclose(ours.tensor(t.name), theirs, rtol=1e-6, atol=1e-5)

    def test_not_gguf_and_truncated_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            bad = Path(tmp) / "x.gguf"
            bad.write_bytes(b"PK\x03\x04" + bytes(100))
            with self.assertRaisesRegex(ggml.GGMLError, r"is not a GGUF file \(magic b'PK\\x03\\x04'"):
                ggml.GGUFFile(bad)
            short = Path(tmp) / "short.gguf"
            short.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (1).to_bytes(8, "little") + (5).to_bytes(8, "little"))
            with self.assertRaisesRegex(ggml.GGMLError, "truncated"):
                ggml.GGUFFile(short)


if __name__ == "__main__":
    unittest.main()
