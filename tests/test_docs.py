"""The user docs say only what works: every `python -m scripts.NAME ...` command in README.md and
docs/results.md names a script that exists and flags it knows (from its `--help`), and every
repository path the docs name (config/, adapters/, docs/, scripts/, wordle_mlx/, tests/) exists."""

import re
import shlex
import subprocess
import sys
import unittest
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "docs" / "results.md"]
REPO_DIRS = ("config/", "adapters/", "docs/", "scripts/", "wordle_mlx/", "tests/")


def commands(text: str) -> list[str]:
    """Each `python -m scripts.NAME ...` command in a markdown text (code blocks and inline code),
    backslash continuations joined, comments dropped."""
    text = text.replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        for span in re.findall(r"`([^`]+)`", line) or [line]:
            for match in re.finditer(r"python -m scripts\.[a-z_]+\b[^`#|]*", span):
                found.append(" ".join(match.group(0).split()))
    return found


def paths(text: str) -> set[str]:
    """Repository paths the text names, placeholders (FILE, RUN, <run>, {a,b}, *) left out."""
    out = set()
    for token in re.findall(r"[\w./-]+", text):
        token = token.rstrip(".,;:)")
        if token.startswith(REPO_DIRS) and not re.search(r"[A-Z<>{}*]", token):
            out.add(token)
    return out


@lru_cache(maxsize=None)
def known_flags(script: str) -> frozenset[str]:
    """The option strings a script's --help lists."""
    result = subprocess.run([sys.executable, "-m", f"scripts.{script}", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, f"scripts.{script} --help failed: {result.stderr.strip()[-300:]}"
    return frozenset(re.findall(r"(--[a-z][a-z0-9-]*)", result.stdout))


class TestCommandParsing(unittest.TestCase):
    def test_commands_are_found_with_their_flags(self):
        text = "```bash\npython -m scripts.evaluate --adapter adapters/recipe \\\n    --n 5  # a comment\n```\n" \
               "| `python -m scripts.play --human` | one game | `python -m scripts.NAME` (a placeholder)"
        self.assertEqual(commands(text), ["python -m scripts.evaluate --adapter adapters/recipe --n 5",
                                          "python -m scripts.play --human"])

    def test_placeholders_are_not_paths(self):
        self.assertEqual(paths("see `config/FILE.json`, logs/RUN and docs/results.md."), {"docs/results.md"})


class TestUserDocs(unittest.TestCase):
    def test_every_command_names_a_script_and_known_flags(self):
        seen = 0
        for doc in DOCS:
            for command in commands(doc.read_text()):
                tokens = shlex.split(command)
                script = tokens[2].split(".", 1)[1]
                with self.subTest(doc=doc.name, command=command):
                    self.assertTrue((ROOT / "scripts" / f"{script}.py").is_file(), f"no scripts/{script}.py")
                    flags = {t.split("=", 1)[0] for t in tokens[3:] if t.startswith("--")}
                    unknown = flags - known_flags(script)
                    self.assertFalse(unknown, f"scripts.{script} does not know {sorted(unknown)}")
                seen += 1
        self.assertGreater(seen, 10)

    def test_every_repository_path_exists(self):
        for doc in DOCS:
            for path in sorted(paths(doc.read_text())):
                with self.subTest(doc=doc.name, path=path):
                    self.assertTrue((ROOT / path).exists() or (ROOT / "docs" / "results" / path).exists(),
                                    f"{doc.name} names {path}, which does not exist")

    def test_readme_is_short(self):
        self.assertLessEqual(len((ROOT / "README.md").read_bytes()), 15_000)
        self.assertLessEqual(len((ROOT / "docs" / "results.md").read_bytes()), 20_000)


if __name__ == "__main__":
    unittest.main()
