import random
import unittest

from wordle_mlx.play import evaluate
from wordle_mlx.wordle import solvers, words
from wordle_mlx.wordle.game import GameState, is_consistent


def play(policy, secret):
    state = GameState(secret)
    while not state.finished:
        state = state.play(policy.guess(state.turns))
    return state


class TestOptimalTree(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tree = solvers.load_optimal_tree("normal")

    def test_tree_has_one_path_per_answer(self):
        self.assertEqual(set(self.tree), set(words.answers()))

    def test_tree_totals(self):
        lengths = [len(p) for p in self.tree.values()]
        self.assertEqual(sum(lengths), 7920)
        self.assertEqual(max(lengths), 5)

    def test_every_tree_pattern_is_the_real_feedback(self):
        for answer, path in self.tree.items():
            self.assertTrue(solvers.check_tree_path(answer, path), answer)

    def test_hard_tree_totals(self):
        hard = solvers.load_optimal_tree("hard")
        self.assertEqual(len(hard), 2315)
        self.assertEqual(sum(len(p) for p in hard.values()), 8122)

    def test_indented_lines_share_the_prefix(self):
        text = "salet BBBBB1 courd BBBBB2 nymph BBBBY3 whiff GGGGG4\n" \
               "                                BGYYB3 pygmy GGGGG4\n"
        tree = solvers.parse_optimal_tree(text)
        self.assertEqual(tree["pygmy"][:3], [("salet", "XXXXX"), ("courd", "XXXXX"), ("nymph", "XGYYX")])

    def test_malformed_line_raises_with_line_number(self):
        with self.assertRaisesRegex(ValueError, "line 1"):
            solvers.parse_optimal_tree("salet BBBBB1 courd\n")

    def test_optimal_policy_reproduces_the_tree_on_every_answer(self):
        report = evaluate.evaluate(solvers.OptimalTreePolicy(), words.answers(), progress=False)
        self.assertEqual(report["win_rate"], 1.0)
        self.assertEqual(report["total_guesses"], 7920)
        self.assertEqual(report["max_guesses"], 5)

    def test_optimal_policy_falls_back_off_the_tree(self):
        policy = solvers.OptimalTreePolicy()
        state = GameState("hello").play("crane")  # not the tree's opener
        self.assertNotIn(solvers.history_key(state.turns), policy.moves)
        self.assertEqual(policy.guess(state.turns), solvers.EntropyPolicy().guess(state.turns))


class TestEntropyPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.policy = solvers.EntropyPolicy()

    def test_opener_is_the_best_from_the_table(self):
        self.assertEqual(self.policy.guess(()), "soare")

    def test_solves_every_answer_in_at_most_six(self):
        report = evaluate.evaluate(self.policy, words.answers(), progress=False)
        self.assertEqual(report["win_rate"], 1.0)
        self.assertLess(report["mean_guesses"], 3.5)

    def test_plays_a_candidate_when_two_remain(self):
        state = GameState("hello")
        while len(state.candidates()) > 2:
            state = state.play(self.policy.guess(state.turns))
        self.assertIn(self.policy.guess(state.turns), state.candidates())


class TestSimplePolicies(unittest.TestCase):
    def test_consistent_policy_only_plays_candidates(self):
        policy = solvers.ConsistentPolicy(seed=1)
        for secret in random.Random(1).sample(words.answers(), 30):
            state = GameState(secret)
            while not state.finished:
                guess = policy.guess(state.turns)
                self.assertTrue(is_consistent(guess, state.turns))
                state = state.play(guess)

    def test_random_policy_plays_allowed_words_without_repeats(self):
        policy = solvers.RandomPolicy(seed=2)
        state = play(policy, "hello")
        self.assertEqual(len(set(state.guesses)), len(state.guesses))
        self.assertTrue(all(words.is_allowed(g) for g in state.guesses))

    def test_random_policy_is_seeded(self):
        a = play(solvers.RandomPolicy(seed=5), "hello").guesses
        b = play(solvers.RandomPolicy(seed=5), "hello").guesses
        self.assertEqual(a, b)

    def test_unknown_policy_raises_naming_choices(self):
        with self.assertRaisesRegex(ValueError, "random, consistent, frequent, candidate-entropy, entropy, optimal"):
            solvers.make_policy("greedy")


if __name__ == "__main__":
    unittest.main()


class TestCandidatePolicies(unittest.TestCase):
    def test_frequent_and_candidate_entropy_only_play_words_that_fit(self):
        from wordle_mlx.wordle.game import GameState, is_consistent

        for name in ("frequent", "candidate-entropy"):
            policy = solvers.make_policy(name)
            for secret in ("store", "hello", "vivid"):
                state = GameState(secret)
                while not state.finished:
                    guess = policy.guess(state.turns)
                    self.assertTrue(is_consistent(guess, state.turns), (name, secret, guess))
                    state = state.play(guess)

    def test_frequent_prefers_the_common_word(self):
        from wordle_mlx.wordle.game import GameState

        turns = GameState("hound").play("raise").play("clout").turns  # candidates include hound, found, ...
        freq = solvers.wordlists.word_frequencies()
        cands = solvers.patterns.candidate_indices(turns, solvers.patterns.load_pattern_table())
        best = max((solvers.wordlists.answers()[i] for i in cands), key=lambda w: freq[w])
        self.assertEqual(solvers.make_policy("frequent").guess(turns), best)


def outside_secrets(n: int = 12) -> list[str]:
    """Allowed words outside the 2,315 answers that the daily puzzle could use: the most frequent that are
    not plurals in -s, plus two it did use (snafu, kefir)."""
    answers, freq = set(words.answers()), words.word_frequencies()
    common = sorted((w for w in words.allowed() if w not in answers and not w.endswith("s")), key=lambda w: -freq[w])
    return ["snafu", "kefir"] + common[: n - 2]


class TestSecretsOutsideTheAnswerList(unittest.TestCase):
    def test_candidates_fall_back_to_allowed_words_most_frequent_first(self):
        state = GameState("snafu").play("crane").play("sloth").play("spawn").play("snaky")
        self.assertEqual(state.candidates(), [])  # no answer fits
        from wordle_mlx.wordle import patterns

        cands = patterns.candidate_words(state.turns)
        self.assertIn("snafu", cands)
        self.assertTrue(all(is_consistent(w, state.turns) for w in cands))
        freq = words.word_frequencies()
        self.assertEqual(cands, sorted(cands, key=lambda w: (-freq[w], w)))

    def test_every_solver_plays_such_secrets_to_the_end_with_allowed_words(self):
        secrets = outside_secrets()
        self.assertFalse(set(secrets) & set(words.answers()))
        for name in solvers.POLICIES:
            report = evaluate.evaluate(solvers.make_policy(name), secrets, progress=False)
            for game in report["games"]:
                self.assertTrue(all(words.is_allowed(g) for g in game["guesses"]), (name, game))
            if name != "random":
                self.assertGreaterEqual(report["wins"], len(secrets) - 2, name)

    def test_the_eval_split_is_played_exactly_as_the_shipped_reports(self):
        import json
        from pathlib import Path

        results = Path(__file__).resolve().parents[1] / "docs" / "results"
        for name in ("frequent", "entropy", "optimal", "candidate-entropy", "consistent"):
            shipped = results / f"solver_{name}_315.json"
            if not shipped.exists():
                continue
            report = evaluate.evaluate(solvers.make_policy(name), words.split_words("eval"), progress=False)
            self.assertEqual([g["guesses"] for g in report["games"]],
                             [g["guesses"] for g in json.loads(shipped.read_text())["games"]], name)

    def test_contradictory_feedback_is_one_clear_error(self):
        from wordle_mlx.wordle.game import Turn

        history = [Turn("crane", "GGGGG"), Turn("sloth", "GGGGG")]
        for name in ("frequent", "entropy", "consistent"):
            with self.assertRaisesRegex(ValueError, "no allowed word is consistent"):
                solvers.make_policy(name).guess(history)
