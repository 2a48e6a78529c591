import os
import subprocess
import sys
import unittest

from wordle_mlx.model import blas

PROBE = "import wordle_mlx, mlx.core as mx; from wordle_mlx.model import blas; print(blas.loaded_path)"


def probe(env_value):
    env = dict(os.environ)
    env.pop("WORDLE_MLX_BLAS", None)
    if env_value is not None:
        env["WORDLE_MLX_BLAS"] = env_value
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout.strip()


@unittest.skipUnless(sys.platform.startswith("linux"), "OpenBLAS loading applies to Linux only")
class TestOpenBLAS(unittest.TestCase):
    def test_opt_out_keeps_the_bundled_blas(self):
        self.assertEqual(probe("0"), "None")

    @unittest.skipIf(blas.find_openblas() is None, "no system OpenBLAS installed")
    def test_system_openblas_is_loaded_before_mlx(self):
        self.assertEqual(probe(None), blas.find_openblas())

    def test_describe_names_the_active_blas(self):
        self.assertIn("BLAS", blas.describe())


if __name__ == "__main__":
    unittest.main()
