import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from wordle_mlx.play import evaluate
from wordle_mlx.wordle.solvers import Policy

ROOT = Path(__file__).resolve().parents[1]


def render_80(columns, total: float, completed: float, **fields) -> str:
    """One progress line as an 80-column terminal shows it (asserts it fits on one line)."""
    import io

    from rich.console import Console
    from rich.progress import Progress

    console = Console(width=80, file=io.StringIO(), color_system=None)
    bar = Progress(*columns, console=console, auto_refresh=False)
    task = bar.add_task("x", total=total, **fields)
    bar.update(task, completed=completed)
    console.print(bar.make_tasks_table(bar.tasks))
    lines = console.file.getvalue().rstrip("\n").splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 80, lines
    return lines[0]


class ScriptedPolicy(Policy):
    """Plays a fixed list of guesses per game, by turn index (attempts count, not valid turns)."""

    name = "scripted"

    def __init__(self, script):
        self.script = script
        self.calls = 0

    def guess_batch(self, histories):
        self.calls += 1
        return [self.script[self.calls - 1] for _ in histories]


class TestPlayGames(unittest.TestCase):
    def test_invalid_guess_costs_a_turn(self):
        games = evaluate.play_games(ScriptedPolicy(["zzzzz", "hello"]), ["hello"])
        self.assertTrue(games[0].won)
        self.assertEqual(len(games[0].attempts), 2)
        self.assertEqual(games[0].attempts[0]["invalid"], "not_allowed")
        self.assertIsNone(games[0].attempts[0]["feedback"])

    def test_always_invalid_loses_after_six_attempts(self):
        games = evaluate.play_games(ScriptedPolicy(["abc"] * 10), ["hello"])
        self.assertFalse(games[0].won)
        self.assertEqual(len(games[0].attempts), 6)

    def test_games_run_in_lock_step_batches(self):
        policy = ScriptedPolicy(["crane", "hello", "world"])
        evaluate.play_games(policy, ["hello", "world"])
        self.assertEqual(policy.calls, 3)  # one batched call per round, not per game


class TestGamesAtOnce(unittest.TestCase):
    """`games_at_once` bounds a round's batch; a finished game's place goes to the next secret."""

    class Sizes(Policy):
        """The frequent solver, recording each batch's size."""

        name = "sizes"

        def __init__(self):
            from wordle_mlx.wordle.solvers import make_policy

            self.solver, self.sizes = make_policy("frequent"), []

        def guess_batch(self, histories):
            self.sizes.append(len(histories))
            return self.solver.guess_batch(histories)

    SECRETS = ["crane", "pizza", "hello", "world", "fjord", "nymph", "awake"]

    def play(self, games_at_once):
        policy = self.Sizes()
        games = evaluate.play_games(policy, self.SECRETS, games_at_once=games_at_once)
        return policy.sizes, [(g.secret, [a["guess"] for a in g.attempts]) for g in games]

    def test_no_batch_holds_more_games_than_the_bound(self):
        sizes, _ = self.play(3)
        self.assertEqual(max(sizes), 3)
        self.assertGreater(len(sizes), 6)  # seven games cannot all be over in six rounds of three

    def test_every_secret_is_played_in_order_as_all_at_once(self):
        self.assertEqual(self.play(2)[1], self.play(None)[1])  # a deterministic policy plays the same games

    def test_a_bound_above_the_games_is_all_at_once(self):
        sizes, _ = self.play(100)
        self.assertEqual(sizes[0], len(self.SECRETS))

    def test_the_report_records_the_bound_where_it_split_the_games(self):
        from wordle_mlx.wordle.solvers import make_policy

        self.assertEqual(evaluate.evaluate(make_policy("frequent"), self.SECRETS, progress=False,
                                           games_at_once=3)["games_at_once"], 3)
        self.assertNotIn("games_at_once", evaluate.evaluate(make_policy("frequent"), self.SECRETS, progress=False,
                                                            games_at_once=7))

    def test_progress_counts_only_finished_games_as_done(self):
        seen = []
        evaluate.play_games(self.Sizes(), self.SECRETS, games_at_once=3, on_progress=lambda *a: seen.append(a))
        self.assertEqual(seen[0][1], 0)  # waiting games are not done
        self.assertEqual(seen[-1][1], len(self.SECRETS))

    def test_a_bound_below_one_is_refused(self):
        with self.assertRaises(ValueError):
            evaluate.play_games(self.Sizes(), self.SECRETS, games_at_once=0)


class TestProgress(unittest.TestCase):
    """The bar moves with every turn (and within a model's batch), not only when games end."""

    def test_turns_advance_every_round_before_any_game_ends(self):
        seen = []
        evaluate.play_games(ScriptedPolicy(["crane", "slate", "pious", "dough", "lymph", "hello"]),
                            ["hello", "world", "pizza"], on_progress=lambda *a: seen.append(a))
        turns = [t for t, _, _ in seen]
        self.assertEqual(turns, [0, 3, 6, 9, 12, 15, 18])  # 3 games x 6 turns; every round moves the bar
        self.assertEqual([d for _, d, _ in seen][:6], [0] * 6)  # no game was over before the last round
        self.assertEqual(seen[-1], (18, 3, 1))

    def test_a_model_moves_the_bar_within_its_batch(self):
        from wordle_mlx.model import models
        from wordle_mlx.play.policy import ModelPolicy

        model, tokenizer = models.load_model(models.TINY_MODEL)
        policy = ModelPolicy(model, tokenizer, "compact", max_tokens=6)
        seen = []
        evaluate.play_games(policy, ["hello", "world"], on_progress=lambda *a: seen.append(a[0]))
        self.assertEqual(seen, sorted(seen))
        self.assertTrue(any(t != int(t) for t in seen))  # fractions of a round
        self.assertEqual(seen[-1], 12)

    def test_columns_fit_80(self):
        from rich.console import Console
        from rich.progress import Progress

        line = render_80(evaluate.progress_columns(), total=1200, completed=700, done=137, won=12, games=200)
        self.assertIn("games 137/200 done, 12 won ━━━", line)


class TestSummary(unittest.TestCase):
    def setUp(self):
        # hello won in 2, world won in 3, pizza lost (6 misses, one invalid)
        script = ["crane", "hello", "world", "slate", "abcde", "fight"]
        games = evaluate.play_games(ScriptedPolicy(script), ["hello", "world", "pizza"])
        self.s = evaluate.summarize(games)

    def test_win_rate(self):
        self.assertAlmostEqual(self.s["win_rate"], 2 / 3)

    def test_mean_and_max_over_wins_only(self):
        self.assertEqual(self.s["mean_guesses"], 2.5)
        self.assertEqual(self.s["max_guesses"], 3)
        self.assertEqual(self.s["total_guesses"], 5)

    def test_histogram(self):
        self.assertEqual(self.s["histogram"], {"1": 0, "2": 1, "3": 1, "4": 0, "5": 0, "6": 0, "fail": 1})

    def test_invalid_reasons_are_counted(self):
        self.assertEqual(self.s["invalid_reasons"], {"not_allowed": 1})


class TestIntervals(unittest.TestCase):
    def test_wilson_interval_known_values(self):
        lo, hi = evaluate.wilson_interval(15, 100)
        self.assertAlmostEqual(lo, 0.0930, places=3)  # 15/100: centre 0.1630, half-width 0.0699
        self.assertAlmostEqual(hi, 0.2328, places=3)

    def test_wilson_interval_at_zero_wins_is_not_empty(self):
        lo, hi = evaluate.wilson_interval(0, 200)
        self.assertEqual(lo, 0.0)
        self.assertGreater(hi, 0.01)

    def test_paired_difference_counts_games_won_by_one_only(self):
        a = {"games": [{"secret": "crane", "won": True}, {"secret": "slate", "won": False}, {"secret": "moist", "won": True}]}
        b = {"games": [{"secret": "crane", "won": False}, {"secret": "slate", "won": True}, {"secret": "moist", "won": True}]}
        self.assertEqual(evaluate.paired_difference(a, b), {"games": 3, "only_a": 1, "only_b": 1, "both": 1, "p_value": 1.0})

    def test_consistent_counts_skip_the_first_valid_guess_and_invalid_attempts(self):
        # secret CRANE: TRACE first (not judged), an invalid attempt, GRAPE misfits (C left out), CRAZE fits
        game = {"guesses": ["trace", "xxxxx", "grape", "craze"], "feedback": ["XGGYG", None, "XGGXG", "GGGXG"]}
        self.assertEqual(evaluate.consistent_counts(game), (1, 2))

    def paired_games(self, fits_a: list[bool], fits_b: list[bool]) -> tuple[dict, dict]:
        """Two reports over the same secrets (all CRANE games): per game one judged guess, fitting or not."""
        game = lambda i, fits: {"secret": f"s{i}", "guesses": ["trace", "craze" if fits else "grape"],  # noqa: E731
                                "feedback": ["XGGYG", "GGGXG" if fits else "XGGXG"]}
        return ({"games": [game(i, f) for i, f in enumerate(fits_a)]},
                {"games": [game(i, f) for i, f in enumerate(fits_b)]})

    def test_paired_consistency_of_one_player_against_itself_is_no_evidence(self):
        a, _ = self.paired_games([True, False] * 20, [])
        result = evaluate.paired_consistency(a, a, permutations=2000)
        self.assertEqual((result["games"], result["rate_a"], result["rate_b"], result["p_value"]), (40, 0.5, 0.5, 1.0))

    def test_paired_consistency_finds_a_consistent_difference(self):
        a, b = self.paired_games([False] * 30 + [True] * 10, [True] * 30 + [True] * 10)
        result = evaluate.paired_consistency(a, b, permutations=2000)
        self.assertEqual((result["rate_a"], result["rate_b"]), (0.25, 1.0))
        self.assertLess(result["p_value"], 0.001)
        self.assertEqual(evaluate.paired_consistency(b, a, permutations=2000)["p_value"], result["p_value"])

    def test_first_divergence_values_each_sides_attempt_where_the_games_part(self):
        from wordle_mlx.wordle import solvers, value
        from wordle_mlx.wordle.game import Turn, feedback

        turns = [Turn("trace", feedback("trace", "crane"))]
        best = solvers.make_policy("frequent").guess(turns)  # the frequent solver's word here
        game = lambda secret, second: {"secret": secret, "guesses": ["trace", second],  # noqa: E731
                                       "feedback": [feedback("trace", secret), feedback(second, secret)]}
        same = {"secret": "slate", "guesses": ["slate"], "feedback": ["GGGGG"]}  # the same in both: identical
        a = {"games": [game("crane", best), same]}
        b = {"games": [game("crane", "mound"), same]}
        result = evaluate.first_divergence(a, b)
        va, vb = value.guess_value(turns, best).score, value.guess_value(turns, "mound").score
        self.assertEqual((result["identical"], result["diverged"]), (1, 1))
        self.assertEqual((result["b_higher"], result["b_lower"]), (int(vb > va), int(vb < va)))
        self.assertAlmostEqual(result["mean_a"], va)
        self.assertEqual((result["a_frequent"], result["b_frequent"]), (1, 0))
        b["games"][0] = {"secret": "crane", "guesses": ["trace", "xxxxx"], "feedback": [feedback("trace", "crane"), None]}
        self.assertEqual(evaluate.first_divergence(a, b)["mean_b"], 0.0)  # an invalid attempt is worth nothing

    def test_first_divergence_tests_worth_more_against_worth_less(self):
        from wordle_mlx.wordle import solvers
        from wordle_mlx.wordle.game import feedback

        best = solvers.make_policy("frequent").guess([])  # the frequent solver's opener: worth more than a gray-heavy one
        game = lambda secret, first: {"secret": secret, "guesses": [first],  # noqa: E731
                                      "feedback": [feedback(first, secret)]}
        secrets = ("crane", "moist", "plumb", "fjord", "gawky", "vivid", "shelf", "tryst")
        a = {"games": [game(s, "fuzzy") for s in secrets]}
        b = {"games": [game(s, best) for s in secrets]}
        result = evaluate.first_divergence(a, b)
        self.assertEqual((result["b_higher"], result["b_lower"]), (8, 0))
        self.assertAlmostEqual(result["p_value"], 2 / 2 ** 8)
        self.assertAlmostEqual(evaluate.first_divergence(b, a)["p_value"], result["p_value"])
        self.assertEqual(evaluate.first_divergence(a, a)["p_value"], 1.0)  # nothing diverges: no evidence

    def test_paired_consistency_of_a_small_difference_is_chance(self):
        a, b = self.paired_games([True, False] * 20, [True, False] * 19 + [True, True])
        self.assertGreater(evaluate.paired_consistency(a, b, permutations=2000)["p_value"], 0.5)

    def test_broken_rule_rates_count_each_misfit_once_per_rule(self):
        # secret CRANE, first TRACE (XGGYG): GRAPE leaves C out; TRADE leaves C out and uses T;
        # an invalid attempt (no feedback) is skipped; CRAZE fits and is not counted
        game = {"guesses": ["trace", "grape", "xxxxx", "trade", "craze"],
                "feedback": ["XGGYG", "XGGXG", None, "XGGXG", "GGGXG"]}
        rates = evaluate.broken_rule_rates({"games": [game]})
        self.assertEqual(rates, {"green": 0.0, "missing": 1.0, "place": 0.0, "absent": 0.5})

    def test_broken_rule_rates_are_none_without_a_misfit(self):
        self.assertIsNone(evaluate.broken_rule_rates({"games": [{"guesses": ["crane"], "feedback": ["GGGGG"]}]}))
        self.assertIsNone(evaluate.broken_rule_rates({}))

    def test_rejected_again_counts_invalid_answers_already_rejected_in_the_same_game(self):
        # ABOSE rejected, then written again (case aside); ABASE is valid; a new game starts afresh
        games = [{"guesses": ["raise", "ABOSE", "abose", "abase"], "invalid": [None, "not_allowed", "not_allowed", None]},
                 {"guesses": ["abose", "zzzzz"], "invalid": ["not_allowed", "not_allowed"]}]
        self.assertAlmostEqual(evaluate.rejected_again_rate({"games": games}), 1 / 4)

    def test_stuck_states_are_the_moments_an_answer_already_rejected_comes_again(self):
        game = {"secret": "abase", "guesses": ["raise", "ABOSE", "ABOSE", "abose"],
                "feedback": ["XYXGG", None, None, None], "invalid": [None, "not_allowed", "not_allowed", "not_allowed"]}
        states = evaluate.stuck_states({"games": [game]})
        self.assertEqual(len(states), 2)  # the second and the third ABOSE
        secret, turns, rejected = states[1]
        self.assertEqual((secret, [(t.guess, t.feedback) for t in turns], rejected), ("abase", [("raise", "XYXGG")], ["ABOSE", "ABOSE"]))

    def test_rejected_again_is_none_without_an_invalid_answer(self):
        self.assertIsNone(evaluate.rejected_again_rate({"games": [{"guesses": ["crane"], "invalid": [None]}]}))

    def test_wins_by_trained_target_splits_games_by_whether_the_secret_was_a_training_answer(self):
        games = [{"secret": "abase", "won": True}, {"secret": "cargo", "won": False},
                 {"secret": "First", "won": True}, {"secret": "zesty", "won": False}]
        split = evaluate.wins_by_trained_target({"games": games}, ["CARGO", "first"])
        self.assertEqual(split, {"trained": (1, 2), "untrained": (1, 2)})

    def test_mcnemar_p_is_the_two_sided_binomial_tail_of_the_discordant_games(self):
        self.assertAlmostEqual(evaluate.mcnemar_p(0, 5), 2 / 32)  # 5-0: both tails of 1/32
        self.assertAlmostEqual(evaluate.mcnemar_p(6, 11), evaluate.mcnemar_p(11, 6))
        self.assertAlmostEqual(evaluate.mcnemar_p(1, 9), 2 * 11 / 1024)
        self.assertEqual(evaluate.mcnemar_p(3, 3), 1.0)
        self.assertEqual(evaluate.mcnemar_p(0, 0), 1.0)

    def test_mcnemar_split_needed_is_the_narrowest_split_beyond_chance(self):
        needed = evaluate.mcnemar_split_needed(88)
        self.assertLess(evaluate.mcnemar_p(88 - needed, needed), 0.05)
        self.assertGreaterEqual(evaluate.mcnemar_p(88 - needed + 1, needed - 1), 0.05)
        self.assertEqual(needed, 54)
        self.assertEqual(evaluate.mcnemar_split_needed(6), 6)  # 6-0: p = 2/64
        self.assertIsNone(evaluate.mcnemar_split_needed(5))  # 5-0: p = 2/32, never below 0.05
        self.assertIsNone(evaluate.mcnemar_split_needed(0))


class TestEvaluateCli(unittest.TestCase):
    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "scripts.evaluate", *args], cwd=ROOT, capture_output=True, text=True)

    def test_json_report_has_the_documented_keys(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "report.json"
            proc = self.run_cli("--policy", "optimal", "--split", "eval", "--n", "25", "--json", str(out))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            report = json.loads(out.read_text())
        for key in ["win_rate", "mean_guesses", "histogram", "max_guesses", "n_games", "games", "policy", "split"]:
            self.assertIn(key, report)
        self.assertEqual(report["n_games"], 25)
        self.assertEqual(report["win_rate"], 1.0)

    def test_bad_argument_gives_one_error_line(self):
        proc = self.run_cli("--policy", "entropy", "--n", "-3")
        self.assertEqual(proc.returncode, 2)
        errors = [l for l in proc.stderr.splitlines() if "error" in l]
        self.assertEqual(len(errors), 1)
        self.assertIn("--n", errors[0])
        self.assertNotIn("Traceback", proc.stderr)


class TestEntropyCli(unittest.TestCase):
    def test_writes_table_and_prints_top_openers(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, "-m", "scripts.calculate_word_entropy", "--out", tmp, "--top", "3"],
                                  cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertTrue((Path(tmp) / "pattern_table.npy").exists())
            lines = (Path(tmp) / "opener_entropy.tsv").read_text().splitlines()
        self.assertEqual(lines[1].split("\t")[0], "soare")
        self.assertEqual(len(lines), 1 + 12972)
        self.assertRegex(proc.stdout, r"soare\s*│\s*5\.8860")


if __name__ == "__main__":
    unittest.main()
