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

    def test_a_bad_override_is_named_as_the_override_not_the_file(self):
        path = self.write("c.json", json.dumps({"training": {"steps": 3}}))
        with self.assertRaisesRegex(ConfigError, r"^--set nosuch\.key=1: nosuch: unknown key$"):
            load_config(path, ["nosuch.key=1"])
        with self.assertRaisesRegex(ConfigError, r"^--set training\.steps=abc: training\.steps: .*integer"):
            load_config(path, ["sampling.num_generations=4", "training.steps=abc"])
        bad_file = self.write("d.json", json.dumps({"training": {"steps": "abc"}}))
        with self.assertRaisesRegex(ConfigError, r"d\.json: training\.steps"):
            load_config(bad_file, ["sampling.num_generations=4"])  # the file's own mistake still names the file

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


class TestDefaultsAreTheRecipe(unittest.TestCase):
    ROOT = Path(__file__).resolve().parents[1]

    @staticmethod
    def sections(config: Config, names) -> dict:
        d = config.model_dump(mode="json")
        return {n: d[n] for n in names}

    def test_grpo_naming_only_the_start_adapter_is_the_recipe_run(self):
        recipe = load_config(self.ROOT / "config" / "recipe_grpo_guided_margin.json",
                             ["training.loss_batch_size=auto"])  # chunking never changes the update
        mine = load_config(None, ["model.adapter_path=adapters/recipe_sft_long"])
        names = ("model", "lora", "sampling", "rewards", "training")
        self.assertEqual(self.sections(mine, names), self.sections(recipe, names))

    def test_sft_defaults_are_the_recipe_sft(self):
        recipe = load_config(self.ROOT / "config" / "recipe_sft_long.json", ["sft.batch_size=auto"])  # 16 on the CPU
        names = ("model", "lora", "sft")
        self.assertEqual(self.sections(load_config(None), names), self.sections(recipe, names))

    def test_the_longest_recipe_prompt_fits_the_default_limit(self):
        from wordle_mlx.model import models
        from wordle_mlx.play import prompts, rollout
        from wordle_mlx.wordle.game import GameState

        state = GameState("zesty")
        for word in ("mamma", "puppy", "fluff", "queue"):  # four turns, then two rejected answers: the last prompt
            state = state.play(word)
        limit = Config().sampling.max_prompt_tokens
        for name in models.TINY_MODELS:  # byte-level tokenizers: the longest token counts
            with self.subTest(model=name):
                _, tokenizer = models.load_model(name)
                ids = rollout.chat_prompt(tokenizer, prompts.build_messages(state.turns, Config().sampling.prompt_format,
                                                                            rejected=["xxxxx", "qqqqq"]))
                self.assertLessEqual(len(ids), limit)
                self.assertGreater(len(ids), limit // 3)  # a real prompt, not an empty one

    def test_config_reference_says_what_it_wrote(self):
        import subprocess
        import sys

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "config.md"
            run = lambda: subprocess.run([sys.executable, "-m", "scripts.config_reference", "--out", str(out)],  # noqa: E731
                                         cwd=self.ROOT, capture_output=True, text=True).stdout
            self.assertRegex(run(), r"wrote .*config\.md \(\d+ lines, updated\)")
            self.assertRegex(run(), r"\(\d+ lines, unchanged\)")

    def test_the_config_reference_is_in_sync(self):
        from wordle_mlx.config import config_reference

        self.assertEqual((self.ROOT / "docs" / "config.md").read_text(), config_reference(),
                         "docs/config.md is out of date: run python -m scripts.config_reference")


class TestShippedConfigs(unittest.TestCase):
    def test_every_config_in_the_repo_loads(self):
        from wordle_mlx.model import models

        root = Path(__file__).resolve().parents[1] / "config"
        files = sorted(root.rglob("*.json"))
        self.assertGreater(len(files), 10)
        for f in files:
            with self.subTest(config=f.name):
                config = load_config(f)  # raises ConfigError on an unknown key or a bad value
                name = config.model.name
                self.assertTrue(name in models.BUILTIN_MODELS or name in models.TINY_MODELS or "/" in name, name)


if __name__ == "__main__":
    unittest.main()
