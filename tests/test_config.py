import json
import tempfile
import unittest
from pathlib import Path

from wordle_mlx.config import Config, ConfigError, load_config, save_config


class TestConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name: str, text: str) -> Path:
        path = self.dir / name
        path.write_text(text)
        return path

    def test_defaults(self):
        config = load_config(None)
        self.assertEqual(config.model.name, "smollm2-135m-instruct")
        self.assertGreaterEqual(config.sampling.num_generations, 8)

    def test_unknown_key_is_rejected_naming_it(self):
        path = self.write("c.json", json.dumps({"lora": {"rnak": 4}}))
        with self.assertRaisesRegex(ConfigError, r"c\.json: lora\.rnak: unknown key"):
            load_config(path)

    def test_out_of_range_value_names_key_and_value(self):
        with self.assertRaisesRegex(ConfigError, r"sampling\.num_generations: .*greater than or equal to 2 \(got 1\)"):
            load_config(None, ["sampling.num_generations=1"])

    def test_wrong_type(self):
        with self.assertRaisesRegex(ConfigError, r"training\.learning_rate"):
            load_config(None, ["training.learning_rate=fast"])

    def test_overrides_parse_json_values(self):
        config = load_config(None, ["lora.targets=[\"q\",\"v\"]", "training.seed=7", "model.name=my/model"])
        self.assertEqual(config.lora.targets, ["q", "v"])
        self.assertEqual(config.training.seed, 7)
        self.assertEqual(config.model.name, "my/model")

    def test_override_without_equals(self):
        with self.assertRaisesRegex(ConfigError, "KEY=VALUE"):
            load_config(None, ["training.seed"])

    def test_yaml_is_accepted(self):
        path = self.write("c.yaml", "sampling:\n  temperature: 0.7\n")
        self.assertEqual(load_config(path).sampling.temperature, 0.7)

    def test_invalid_json_is_one_line(self):
        path = self.write("c.json", "{not json")
        with self.assertRaises(ConfigError) as ctx:
            load_config(path)
        self.assertEqual(len(str(ctx.exception).splitlines()), 1)

    def test_missing_file(self):
        with self.assertRaisesRegex(ConfigError, "not found"):
            load_config(self.dir / "nope.json")

    def test_saved_config_round_trips(self):
        config = load_config(None, ["lora.rank=32"])
        path = save_config(config, self.dir / "run" / "config.json")
        self.assertEqual(load_config(path), config)
        self.assertIsInstance(config, Config)


class TestShippedConfigs(unittest.TestCase):
    def test_every_config_in_the_repo_loads(self):
        from wordle_mlx.model import models

        root = Path(__file__).resolve().parents[1] / "config"
        files = [f for pattern in ("*.json", "study/*.json", "history/*.json") for f in sorted(root.glob(pattern))]
        self.assertGreater(len(files), 10)
        for f in files:
            with self.subTest(config=f.name):
                config = load_config(f)  # raises ConfigError on an unknown key or a bad value
                name = config.model.name
                self.assertTrue(name in models.BUILTIN_MODELS or name in models.TINY_MODELS or "/" in name, name)


if __name__ == "__main__":
    unittest.main()
