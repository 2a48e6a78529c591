"""The leaderboard (wordle_mlx.play.leaderboard, scripts.leaderboard): README and docs/results.md carry
exactly the table its rows' reports make, every row is measured on all 315 eval words, figures come from
the reports."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from wordle_mlx.play import leaderboard

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "docs" / "leaderboard.json"


class TestShippedLeaderboard(unittest.TestCase):
    def setUp(self):
        self.rows = leaderboard.load_rows(ROWS)

    def test_readme_and_results_carry_the_table_the_reports_make(self):
        for page in ("README.md", "docs/results.md"):
            expected = leaderboard.table(self.rows, ROOT, str(Path(page).parent), compact=page == "README.md")
            text = (ROOT / page).read_text()
            self.assertEqual(leaderboard.replace_between_markers(text, expected, page), text,
                             f"{page}: run python -m scripts.leaderboard --write")

    def test_every_row_is_all_315_eval_words_free_and_masked_as_labelled(self):
        for row in self.rows:
            for kind in ("free", "masked"):
                if row[kind] is None:
                    continue
                report = json.loads((ROOT / row[kind]).read_text())
                self.assertEqual((report["split"], report["n_games"]), ("eval", 315), row[kind])
                self.assertEqual(report.get("mask", "none") != "none", kind == "masked", row[kind])

    def test_every_shipped_adapter_has_a_row(self):
        shipped = {p.name for p in (ROOT / "adapters").iterdir() if p.is_dir()}
        named = {name for name in shipped if any(f"adapters/{name}`" in row["player"] for row in self.rows)}
        self.assertEqual(named, shipped)


class TestTable(unittest.TestCase):
    def write(self, root: Path, name: str, wins: int, mask: str = "none") -> str:
        report = {"split": "eval", "n_games": 10, "wins": wins, "mean_guesses": 4.0, "valid_guess_rate": 0.5,
                  "consistent_rate": 0.25, "repeat_rate": 0.125, "mask": mask}
        (root / name).write_text(json.dumps(report))
        return name

    def test_figures_and_links_come_from_the_reports(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "docs").mkdir()
            row = {"player": "p", "model": "m", "method": "SFT", "training": "t", "command": "c", "commit": "abc",
                   "free": self.write(root, "free.json", 3), "masked": self.write(root, "masked.json", 7, "allowed_new")}
            text = leaderboard.table([row], root, "docs")
            self.assertIn("[3/10 = 30.0% (10.8-60.3)](../free.json)", text)
            self.assertIn("[7/10 = 70.0% (39.7-89.2)](../masked.json) `allowed_new`", text)
            self.assertIn("| 50.0% | 25.0% | 12.5% | 4.00 |", text)
            self.write(root, "free.json", 4)
            self.assertIn("4/10 = 40.0%", leaderboard.table([row], root, "docs"))

    def test_an_unmeasured_play_mode_is_dashes(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            row = {"player": "p", "model": "m", "method": "SFT", "training": "t", "command": "c", "commit": None,
                   "free": None, "masked": self.write(root, "masked.json", 7, "allowed_new")}
            self.assertIn("| p | m | SFT | t | - | - | - | - | - | [7/10 = 70.0%", leaderboard.table([row], root))

    def test_a_grpo_row_carries_the_paired_tests_over_its_start(self):
        from wordle_mlx.play import evaluate

        from wordle_mlx.wordle.game import feedback

        def games(won, fit):  # the second guess fits the first's feedback (crane) or not (slate again)
            return [{"secret": f"w{i}", "won": w, "guesses": ["slate", "crane" if f else "slate"],
                     "feedback": [feedback("slate", "crane"), feedback("crane" if f else "slate", "crane")]}
                    for i, (w, f) in enumerate(zip(won, fit))]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            start = {"split": "eval", "n_games": 4, "wins": 1, "mask": "allowed_new", "consistent_rate": 0.25,
                     "games": games([1, 0, 0, 0], [1, 0, 0, 0])}
            after = {**start, "wins": 3, "consistent_rate": 0.75, "games": games([1, 1, 1, 0], [1, 1, 1, 0])}
            (root / "s.json").write_text(json.dumps(start))
            (root / "a.json").write_text(json.dumps(after))
            row = {"player": "p", "model": "m", "method": "GRPO", "training": "t", "command": "c", "commit": None,
                   "free": None, "masked": "a.json", "start": {"free": None, "masked": "s.json"}}
            p_wins = evaluate.paired_difference(start, after)["p_value"]
            fit = evaluate.paired_consistency(start, after)
            cell = f"wins 1 -> 3 (p {p_wins:.2g}), consistent {100 * fit['rate_a']:.1f} -> {100 * fit['rate_b']:.1f}%"
            self.assertIn(cell, leaderboard.table([row], root, compact=True))
            self.assertIn(cell, leaderboard.table([row], root))
            rows_file = root / "rows.json"
            rows_file.write_text(json.dumps([{k: v for k, v in row.items() if k != "start"}]))
            with self.assertRaisesRegex(leaderboard.LeaderboardError, "a GRPO row names its start's reports"):
                leaderboard.load_rows(rows_file)
            rows_file.write_text(json.dumps([{**row, "method": "RL"}]))
            with self.assertRaisesRegex(leaderboard.LeaderboardError, "method 'RL' is not one of SFT, GRPO, solver"):
                leaderboard.load_rows(rows_file)

    def test_a_row_without_its_keys_or_report_is_one_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "rows.json"
            path.write_text(json.dumps([{"player": "p"}]))
            with self.assertRaisesRegex(leaderboard.LeaderboardError, "row 1 lacks model"):
                leaderboard.load_rows(path)
            row = {k: "x" for k in leaderboard.ROW_KEYS}
            with self.assertRaisesRegex(leaderboard.LeaderboardError, "report x"):
                leaderboard.table([row], tmp)

    def test_the_command_prints_the_table(self):
        done = subprocess.run([sys.executable, "-m", "scripts.leaderboard"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, leaderboard.table(leaderboard.load_rows(ROWS), ROOT))


if __name__ == "__main__":
    unittest.main()
