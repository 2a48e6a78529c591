"""The package's layers import only downward (../shared/DESIGN.md): base < wordle, model < play < train < top.

`wordle/` (the game) and `model/` (loading and adapting models) sit side by side and never import
each other; `play/` never imports `train/`. Every import counts, those inside functions too.
"""

import ast
import unittest
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wordle_mlx"

# rank of each layer; a module may import its own layer or a lower rank, never a higher one
RANK = {"base": 0, "wordle": 1, "model": 1, "play": 2, "train": 3, "top": 4}
BASE = {"config", "paths", "jsonl", "data"}
SIDE_BY_SIDE = {("wordle", "model"), ("model", "wordle")}


def layer_of(dotted: str) -> str:
    """`wordle_mlx.play.rollout` -> play; `wordle_mlx.config` -> base; `wordle_mlx.plots` -> top."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return "base"  # the package itself (its __init__ loads model.blas only)
    if parts[1] in ("wordle", "model", "play", "train"):
        return parts[1]
    return "base" if parts[1] in BASE else "top"


def imports_of(path: Path) -> list[str]:
    """Every wordle_mlx module a file imports (`from wordle_mlx.play import a` -> wordle_mlx.play.a)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("wordle_mlx")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wordle_mlx"):
            names += [f"{node.module}.{a.name}" if node.module.count(".") < 1 else node.module for a in node.names]
    return names


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


class TestLayers(unittest.TestCase):
    def test_every_module_is_in_a_layer_package(self):
        flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
        self.assertEqual(flat, ["benchmarks", "config", "jsonl", "paths", "plots", "recipe"])

    def test_imports_only_downward(self):
        upward = []
        for path in sorted(PACKAGE.rglob("*.py")):
            me = layer_of(module_name(path))
            for name in imports_of(path):
                other = layer_of(name)
                if path.name == "__init__.py" and path.parent == PACKAGE:
                    continue  # the package's own __init__ loads model.blas first, by design
                if RANK[other] > RANK[me] or (me, other) in SIDE_BY_SIDE:
                    upward.append(f"{module_name(path)} ({me}) imports {name} ({other})")
        self.assertEqual(upward, [])

    def test_layer_of(self):
        self.assertEqual(layer_of("wordle_mlx.play.rollout"), "play")
        self.assertEqual(layer_of("wordle_mlx.config"), "base")
        self.assertEqual(layer_of("wordle_mlx.benchmarks"), "top")


if __name__ == "__main__":
    unittest.main()
