import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import mlx.core as mx

from wordle_mlx import plots
from wordle_mlx.model import models
from wordle_mlx.play import evaluate
from wordle_mlx.play.policy import ModelPolicy
from wordle_mlx.wordle.solvers import Policy

ROOT = Path(__file__).resolve().parents[1]


class CannedModelPolicy(Policy):
    """Behaves like ModelPolicy (completions + parsed) with scripted completions per round."""

    name = "canned"

    def __init__(self, rounds):
        self.rounds, self.calls = rounds, 0

    def guess_batch(self, histories):
        from wordle_mlx.play.prompts import parse_completion

        texts = [self.rounds[min(self.calls, len(self.rounds) - 1)]] * len(histories)
        self.calls += 1
        self.last_completions = texts
        self.last_parsed = [parse_completion(t, strict=True) for t in texts]
        return [p.guess or p.raw_guess or "" for p in self.last_parsed]


class TestModelMetrics(unittest.TestCase):
    def setUp(self):
        rounds = ["no tags at all", "<think>a</think>\n<guess>CRANE</guess>", "<think>b</think>\n<guess>CRANE</guess>",
                  "<guess>hello</guess>"]
        games = evaluate.play_games(CannedModelPolicy(rounds), ["hello"])
        self.s = evaluate.summarize(games)
        self.game = games[0].to_json()

    def test_parser_reasons_are_reported(self):
        self.assertEqual(self.s["invalid_reasons"], {"no_guess_tag": 1})

    def test_repeats_are_counted(self):
        self.assertAlmostEqual(self.s["repeat_rate"], 1 / 4)

    def test_consistency_counts_valid_guesses_after_the_first(self):
        # CRANE again (inconsistent: C R A N absent), then HELLO (consistent)
        self.assertAlmostEqual(self.s["consistent_rate"], 1 / 2)

    def test_format_compliance_is_strict(self):
        self.assertAlmostEqual(self.s["format_compliance"], 2 / 4)  # the last one has no think

    def test_completions_are_kept_per_attempt(self):
        self.assertEqual(len(self.game["completions"]), 4)
        self.assertTrue(self.s["win_rate"] == 1.0)


class RecordingPolicy(CannedModelPolicy):
    sees_rejected = True

    def guess_batch(self, histories, rejected=None):
        self.seen = getattr(self, "seen", []) + [rejected]
        return super().guess_batch(histories)


class TestRejectedAnswers(unittest.TestCase):
    def test_evaluator_passes_earlier_invalid_answers(self):
        policy = RecordingPolicy(["<guess>zzzzz</guess>", "<guess>hello</guess>"])
        evaluate.play_games(policy, ["hello"])
        self.assertEqual(policy.seen, [[[]], [["zzzzz"]]])


class TestModelPolicy(unittest.TestCase):
    def test_tiny_model_plays_batched_games_to_the_end(self):
        model, tokenizer = models.load_model(models.TINY_MODEL)
        policy = ModelPolicy(model, tokenizer, "rows", 0.0, 6)
        report = evaluate.evaluate(policy, ["hello", "world", "pizza"], progress=False)
        self.assertEqual(report["attempts"], 18)  # random model: every attempt invalid, 6 per game
        self.assertEqual(report["format_compliance"], 0.0)

    def test_cli_model_json_and_compare(self):
        with tempfile.TemporaryDirectory() as tmp:
            a, b = Path(tmp) / "m.json", Path(tmp) / "o.json"
            proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--model", models.TINY_MODEL, "--n", "2",
                                   "--max-tokens", "4", "--format", "rows", "--json", str(a)], cwd=ROOT,
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            subprocess.run([sys.executable, "-m", "scripts.evaluate", "--policy", "optimal", "--n", "2", "--json", str(b)],
                           cwd=ROOT, capture_output=True, check=True)
            secrets = lambda p: [g["secret"] for g in json.loads(p.read_text())["games"]]  # noqa: E731
            self.assertEqual(secrets(a), secrets(b))  # same --n/--seed: the same words for models and solvers
            proc = subprocess.run([sys.executable, "-m", "scripts.evaluate", "--compare", str(a), str(b)], cwd=ROOT,
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("tiny-random-llama", proc.stdout)
            self.assertIn("optimal", proc.stdout)


class TestPlots(unittest.TestCase):
    def test_training_and_histogram_pngs(self):
        metrics = [{"step": i, "cumulative_wins": i // 2, "win_rate": (i % 2) * 0.5, "reward_mean": 0.1 * i,
                    "reward_format": 1.0, "skipped_group_fraction": 0.25, "valid_guess_rate": 0.9, "loss": 0.01,
                    "grad_norm": 0.5} for i in range(1, 8)]
        report = {"label": "x", "n_games": 10, "win_rate": 0.5, "histogram": {"3": 2, "4": 3, "fail": 5}}
        with tempfile.TemporaryDirectory() as tmp:
            a = plots.plot_training(metrics, Path(tmp) / "t.png")
            b = plots.plot_histograms([report], Path(tmp) / "h.png")
            self.assertEqual(a.read_bytes()[:4], b"\x89PNG")
            self.assertGreater(b.stat().st_size, 5000)

    def test_training_figure_axes_read_right(self):
        from wordle_mlx.train import rewards

        metrics = [{"step": i, "cumulative_wins": 0, "win_rate": 0.0, "reward_mean": -1.0, "skipped_group_fraction": 0.5,
                    "loss": 0.01, "grad_norm": 0.5, "elapsed_s": 90.0 * i,
                    **{f"reward_{k}": (0.0 if k in ("win", "repeat") else 0.3) for k in rewards.COMPONENTS}}
                   for i in range(1, 4)]
        fig = plots.training_figure(metrics)
        wins_ax, reward_ax = fig.axes[0], fig.axes[1]
        self.assertEqual(wins_ax.get_ylim()[0], 0.0)  # nothing won: the axis starts at 0, not at -0.04
        self.assertGreater(wins_ax.get_ylim()[1], 0.0)
        win_rate_ax, parts_ax = fig.axes[4], fig.axes[5]  # the twin axes
        self.assertLess(win_rate_ax.get_ylim()[0], 0.0)  # the 0% line is above the frame
        self.assertEqual([t.get_text() for t in reward_ax.get_legend().get_texts()], ["total (weighted)"])
        legend = parts_ax.get_legend()
        self.assertEqual([t.get_text() for t in legend.get_texts()], list(rewards.COMPONENTS))  # zero components too
        self.assertIn("unweighted", legend.get_title().get_text())  # not on the total's scale: the legend says so
        for ax in fig.axes[:4]:
            ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
            self.assertTrue(all(float(t).is_integer() for t in ticks), ticks)
        fig = plots.training_figure(metrics, x="minutes")
        self.assertEqual(fig.axes[0].get_xlabel(), "training minutes")
        self.assertEqual(list(fig.axes[0].lines[0].get_xdata()), [1.5, 3.0, 4.5])

    def test_a_one_step_run_draws_points_on_whole_steps(self):
        from wordle_mlx.train import rewards

        metrics = [{"step": 1, "cumulative_wins": 1, "win_rate": 0.5, "reward_mean": 1.0, "skipped_group_fraction": 0.5,
                    "loss": 0.01, "grad_norm": 0.5, **{f"reward_{k}": 0.3 for k in rewards.COMPONENTS}}]
        fig = plots.training_figure(metrics)
        for ax in fig.axes:
            self.assertEqual(ax.get_xlim(), (0.0, 2.0))
            for line in ax.get_lines():
                if len(line.get_xdata()) == 1:
                    self.assertEqual(line.get_marker(), "o")  # a one-point line without a marker draws nothing
        for ax in fig.axes[:4]:
            self.assertEqual([t for t in ax.get_xticks() if 0 <= t <= 2], [0.0, 1.0, 2.0])

    def test_a_cut_last_metrics_line_is_skipped_with_a_warning(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "metrics.jsonl"
            path.write_text('{"step": 1, "train_loss": 1.0}\n{"step": 2, "train_loss": 0.9}\n{"step": 3, "tra')
            warned = []
            self.assertEqual([m["step"] for m in plots.read_metrics(path, warned.append)], [1, 2])
            self.assertRegex(warned[0], "line 3 is cut short")
            path.write_text('{"step": 1, "train_loss": 1.0}\n{"step": 2, "tra\n{"step": 3, "train_loss": 0.9}\n')
            with self.assertRaisesRegex(plots.PlotError, "line 2: not JSON"):
                plots.read_metrics(path, warned.append)  # inside the file: not a cut, an error
            proc = subprocess.run([sys.executable, "-m", "scripts.plot_cumulative_wins", "--file", str(path)], cwd=ROOT,
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 1)
            path.write_text('{"step": 1, "train_loss": 1.0}\n{"step": 2, "train_loss": 0.9}\n{"step": 3, "tra')
            proc = subprocess.run([sys.executable, "-m", "scripts.plot_cumulative_wins", "--file", str(path)], cwd=ROOT,
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn("cut short", proc.stderr)

    def test_a_curve_of_kept_checkpoints_is_drawn_against_the_runs_minutes(self):
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "grpo"
            run.mkdir()
            (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "elapsed_s": 60.0 * 3 * s}) + "\n"
                                                       for s in range(1, 21)))
            report = lambda step, wins, mask: {"adapter": str(run / "kept" / f"step_{step:04d}"), "mask": mask,  # noqa: E731
                                               "wins": wins, "n_games": 315, "consistent_rate": 0.3}
            start = {"adapter": "adapters/x", "mask": "allowed_new", "wins": 128, "n_games": 315, "consistent_rate": 0.36}
            out = plots.plot_curve([report(10, 120, "allowed_new"), report(20, 131, "allowed_new"), report(20, 70, "none")],
                                   Path(tmp) / "c.png", [start])
            self.assertEqual(out.read_bytes()[:4], b"\x89PNG")
            with self.assertRaisesRegex(plots.PlotError, "not a kept step"):
                plots.plot_curve([start], Path(tmp) / "d.png")
            import matplotlib.pyplot as plt

            with mock.patch.object(plots, "_save", side_effect=lambda fig, out: fig):
                fig = plots.plot_curve([report(10, 120, "allowed_new"), report(20, 131, "allowed_new")], "x.png", [start])
            lines = fig.axes[1].get_lines()
            self.assertEqual(list(lines[0].get_xdata()), [0.0, 30.0, 60.0])  # the start at 0, then the run's minutes
            self.assertEqual(len(fig.axes[2].get_lines()), 1)  # reports without games: only the 50% line
            plt.close(fig)

    def test_the_curve_pairs_each_checkpoint_with_the_start_at_the_first_different_attempt(self):
        import matplotlib.pyplot as plt
        from wordle_mlx.wordle import solvers
        from wordle_mlx.wordle.game import feedback

        best = solvers.make_policy("frequent").guess([])
        games = lambda first, k: [{"secret": s, "guesses": [first if i < k else "fuzzy"],  # noqa: E731
                                   "feedback": [feedback(first if i < k else "fuzzy", s)]}
                                  for i, s in enumerate(["crane", "moist", "plumb", "fjord"])]
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "grpo"
            run.mkdir()
            (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "elapsed_s": 60.0 * s}) + "\n"
                                                       for s in range(1, 21)))
            report = lambda step, k: {"adapter": str(run / "kept" / f"step_{step:04d}"), "mask": "allowed_new",  # noqa: E731
                                      "wins": 1, "n_games": 4, "consistent_rate": 0.3, "games": games(best, k)}
            start = {"adapter": "adapters/x", "mask": "allowed_new", "wins": 1, "n_games": 4, "consistent_rate": 0.3,
                     "games": games("fuzzy", 0)}
            with mock.patch.object(plots, "_save", side_effect=lambda fig, out: fig):
                fig = plots.plot_curve([report(10, 1), report(20, 4)], "x.png", [start])
            share = [line for line in fig.axes[2].get_lines() if len(line.get_xdata()) == 2][0]
            self.assertEqual(list(share.get_xdata()), [10.0, 20.0])
            self.assertEqual(list(share.get_ydata()), [100.0, 100.0])  # every diverged game: the checkpoint's worth more
            plt.close(fig)

    def test_sft_loss_png(self):
        metrics = [{"step": i, "train_loss": 2.0 / i, **({"valid_loss": 1.0 / i} if i % 3 == 0 else {})} for i in range(1, 10)]
        with tempfile.TemporaryDirectory() as tmp:
            out = plots.plot_sft(metrics, Path(tmp) / "s.png")
            self.assertEqual(out.read_bytes()[:4], b"\x89PNG")
        with self.assertRaisesRegex(plots.PlotError, "train_sft"):
            plots.plot_sft([{"step": 1, "loss": 1.0}], "x.png")

    def test_plot_cli_bad_file_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.plot_cumulative_wins", "--file", "nope.jsonl"], cwd=ROOT,
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(), "error: metrics file not found: nope.jsonl")

    def test_rolling_mean(self):
        self.assertEqual(list(plots.rolling([0, 2, 4, 6], 2)), [0.0, 1.0, 3.0, 5.0])


class TestPlayCli(unittest.TestCase):
    def test_human_game(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.play", "--human", "--secret", "hello"], cwd=ROOT,
                              input="crane\nabcde\nhello\n", capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("not in the allowed word list", proc.stdout)
        self.assertIn("won in 2", proc.stdout)
        self.assertIn("CRANE  XXXXY", proc.stdout)  # piped: the feedback as letters, not bare tiles

    def test_human_game_at_end_of_input_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.play", "--human", "--secret", "hello"], cwd=ROOT,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(),
                         ["error: input ended at guess 1/6; the game is not finished (the word was HELLO)"])

    def test_a_solver_game_piped_shows_the_feedback_letters(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.play", "--policy", "entropy", "--secret", "snafu"],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout, r"SOARE  [GYX]{5}")
        self.assertIn("SNAFU  GGGGG", proc.stdout)
        self.assertIn("won in", proc.stdout)


if __name__ == "__main__":
    unittest.main()


class TestStudyReporting(unittest.TestCase):
    def make_run(self, root: Path, name: str, elapsed: float, parent: str | None) -> Path:
        run = root / name
        (run / "adapters").mkdir(parents=True)
        (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "elapsed_s": 1.0}) + "\n" +
                                           json.dumps({"step": 2, "elapsed_s": elapsed}) + "\n")
        (run / "config.json").write_text(json.dumps({"model": {"adapter_path": parent}}))
        return run / "adapters"

    def test_training_minutes_chain_sft_then_grpo(self):
        with tempfile.TemporaryDirectory() as tmp:
            sft = self.make_run(Path(tmp), "sft", 600.0, None)
            grpo = self.make_run(Path(tmp), "grpo", 300.0, str(sft))
            self.assertAlmostEqual(evaluate.training_minutes(str(sft)), 10.0)
            self.assertAlmostEqual(evaluate.training_minutes(str(grpo)), 15.0)
            self.assertIsNone(evaluate.training_minutes(str(Path(tmp) / "missing" / "adapters")))

    def test_training_minutes_survive_export_and_count_in_a_run_started_from_it(self):
        from wordle_mlx.model import lora

        with tempfile.TemporaryDirectory() as tmp:
            sft = self.make_run(Path(tmp), "sft", 600.0, None)
            (sft / lora.ADAPTER_CONFIG).write_text(json.dumps({"fine_tune_type": "lora"}))
            mx.save_safetensors(str(sft / lora.ADAPTER_WEIGHTS), {"w": mx.zeros((2,))})
            shipped = lora.export_adapters(sft, Path(tmp) / "shipped", training_minutes=evaluate.training_minutes(str(sft)))
            self.assertAlmostEqual(evaluate.training_minutes(str(shipped)), 10.0)  # no run beside it
            grpo = self.make_run(Path(tmp), "grpo", 300.0, str(shipped))
            self.assertAlmostEqual(evaluate.training_minutes(str(grpo)), 15.0)

    def test_markdown_row_and_study_plot(self):
        report = {"label": "v1", "wins": 3, "n_games": 10, "win_rate": 0.3, "mean_guesses": 4.5, "valid_guess_rate": 0.9,
                  "consistent_rate": 0.8, "repeat_rate": 0.0, "format_compliance": 1.0, "wall_seconds": 12.0,
                  "training_minutes": 20.0, "policy": {"name": "model"}}
        table = evaluate.markdown_table([report])
        self.assertIn("| v1 | 3/10 (30.0%) | 4.50 | 90.0% | 80.0% | 0.0% | 100.0% | 20.0 | 12 |", table)
        with tempfile.TemporaryDirectory() as tmp:
            png = plots.plot_study([report], Path(tmp) / "s.png")
            self.assertEqual(png.read_bytes()[:4], b"\x89PNG")
        with self.assertRaisesRegex(plots.PlotError, "no report has training minutes"):
            plots.plot_study([dict(report, training_minutes=None)], "unused.png")
