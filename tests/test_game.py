import csv
import random
import subprocess
import sys
import unittest
from pathlib import Path

from wordle_mlx.wordle import words
from wordle_mlx.wordle.game import (
    GameOver,
    GameState,
    InvalidGuess,
    Turn,
    code_to_feedback,
    feedback,
    feedback_code,
    feedback_to_code,
    filter_candidates,
    is_consistent,
    knowledge_from_history,
)

CASES_FILE = Path(__file__).with_name("external_feedback_cases.tsv")


def random_history(rng: random.Random, secret: str, n: int) -> list[Turn]:
    return [Turn(g, feedback(g, secret)) for g in rng.sample(words.allowed(), n)]


class TestFeedback(unittest.TestCase):
    def test_exact_match_is_all_green(self):
        self.assertEqual(feedback("crane", "crane"), "GGGGG")

    def test_no_common_letter_is_all_absent(self):
        self.assertEqual(feedback("quick", "blond"), "XXXXX")

    def test_extra_copy_beyond_secret_count_is_absent(self):
        # one E in the secret: the first E is yellow, the second absent
        self.assertEqual(feedback("speed", "abide"), "XXYXY")

    def test_greens_are_matched_before_yellows(self):
        # both L of HELLO are used by greens, so the leading L is absent
        self.assertEqual(feedback("lolly", "hello"), "XYGGX")

    def test_yellows_go_left_to_right(self):
        self.assertEqual(feedback("llama", "hello"), "YYXXX")

    def test_each_guess_copy_is_yellow_while_the_secret_has_copies(self):
        self.assertEqual(feedback("ember", "geese"), "YXXYX")

    def test_case_insensitive(self):
        self.assertEqual(feedback("CrAnE", "TRACE"), feedback("crane", "trace"))

    def test_wrong_length_raises(self):
        with self.assertRaisesRegex(ValueError, "guess: expected 5 letters"):
            feedback("cranes", "trace")

    def test_non_letters_raise(self):
        with self.assertRaisesRegex(ValueError, "secret: expected 5 letters"):
            feedback("crane", "tr4ce")

    def test_external_cases(self):
        with CASES_FILE.open() as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        self.assertEqual(len(rows), 129)
        for row in rows:
            self.assertEqual(feedback(row["guess"], row["secret"]), row["feedback"], row)

    def test_code_round_trip_for_every_pattern(self):
        for code in range(243):
            self.assertEqual(feedback_to_code(code_to_feedback(code)), code)

    def test_code_convention(self):
        self.assertEqual(feedback_to_code("GGGGG"), 242)
        self.assertEqual(feedback_to_code("YXXXX"), 1)
        self.assertEqual(feedback_to_code("XXXXG"), 2 * 81)
        self.assertEqual(feedback_code("crane", "crane"), 242)

    def test_bad_feedback_string_raises(self):
        with self.assertRaisesRegex(ValueError, "feedback"):
            feedback_to_code("GGBGG")


class TestGameState(unittest.TestCase):
    def test_play_returns_new_state(self):
        s0 = GameState("hello")
        s1 = s0.play("llama")
        self.assertEqual(s0.turns, ())
        self.assertEqual(s1.turns, (Turn("llama", "YYXXX"),))

    def test_win_finishes_the_game(self):
        s = GameState("hello").play("crane").play("HELLO")
        self.assertTrue(s.won and s.finished and not s.lost)
        self.assertEqual(s.guesses_used, 2)

    def test_six_misses_lose(self):
        s = GameState("hello")
        for g in ["crane", "slate", "pious", "dumpy", "fight", "wreck"]:
            self.assertFalse(s.finished)
            s = s.play(g)
        self.assertTrue(s.lost and s.finished)
        self.assertEqual(s.guesses_left, 0)

    def test_play_after_the_end_raises(self):
        s = GameState("hello").play("hello")
        with self.assertRaises(GameOver):
            s.play("crane")

    def test_invalid_guess_reasons(self):
        s = GameState("hello")
        for guess, reason in [("cran", "wrong_length"), ("cranes", "wrong_length"), ("cr4ne", "not_letters"),
                              ("abcde", "not_allowed"), ("", "not_letters")]:
            with self.assertRaises(InvalidGuess) as ctx:
                s.play(guess)
            self.assertEqual(ctx.exception.reason, reason, guess)

    def test_invalid_guess_is_not_scored(self):
        s = GameState("hello")
        self.assertIsNotNone(s.check_guess("abcde"))
        self.assertEqual(s.turns, ())

    def test_hard_mode_rejects_inconsistent_guess(self):
        s = GameState("hello", hard_mode=True).play("llama")  # L present, not at 0 or 1; A, M absent
        with self.assertRaises(InvalidGuess) as ctx:
            s.play("crane")
        self.assertEqual(ctx.exception.reason, "hard_mode")

    def test_hard_mode_accepts_consistent_guess(self):
        s = GameState("hello", hard_mode=True).play("llama")
        self.assertTrue(s.play("hello").won)

    def test_normal_mode_accepts_inconsistent_guess(self):
        s = GameState("hello").play("llama")
        self.assertEqual(s.play("crane").guesses_used, 2)

    def test_bad_secret_raises(self):
        with self.assertRaisesRegex(ValueError, "secret"):
            GameState("hi")


class TestKnowledge(unittest.TestCase):
    def setUp(self):
        self.k = GameState("hello").play("llama").play("lolly").knowledge

    def test_greens(self):
        self.assertEqual(self.k.greens, {2: "l", 3: "l"})
        self.assertEqual(self.k.pattern(), "??LL?")

    def test_min_counts(self):
        self.assertEqual(self.k.min_counts, {"l": 2, "o": 1})

    def test_max_counts_from_absent_copies(self):
        self.assertEqual(self.k.max_counts["l"], 2)
        self.assertEqual(self.k.absent, frozenset("amy"))

    def test_excluded_positions(self):
        self.assertEqual(self.k.excluded_positions["o"], frozenset({1}))
        self.assertEqual(self.k.excluded_positions["l"], frozenset({0, 1}))

    def test_misplaced_lists_letters_without_a_known_place(self):
        self.assertEqual(self.k.misplaced, {"o": frozenset({1})})

    def test_knowledge_allows_exactly_the_consistent_words(self):
        rng = random.Random(1)
        for _ in range(25):
            secret = rng.choice(words.answers())
            history = random_history(rng, secret, rng.randint(1, 4))
            k = knowledge_from_history(history)
            for w in words.answers():
                self.assertEqual(k.allows(w), is_consistent(w, history), (w, history))

    def test_a_word_breaks_no_rule_exactly_when_it_is_consistent(self):
        rng = random.Random(2)
        for _ in range(10):
            secret = rng.choice(words.answers())
            history = random_history(rng, secret, rng.randint(1, 4))
            k = knowledge_from_history(history)
            for w in rng.sample(words.allowed(), 400):
                self.assertEqual(k.broken(w) == (), is_consistent(w, history), (w, history))

    def test_broken_names_each_kind_of_constraint(self):
        k = GameState("crane").play("trace").knowledge  # XGGYG: R A in place, C not 4th, E last, no T
        self.assertEqual(k.broken("brace"), ("place",))              # C again 4th
        self.assertEqual(k.broken("grape"), ("missing",))            # no C
        self.assertEqual(k.broken("craze"), ())                      # fits
        self.assertEqual(k.broken("trade"), ("missing", "absent"))  # no C, a T
        self.assertEqual(k.broken("crone"), ("green", "missing"))   # A neither kept nor anywhere


class TestCandidates(unittest.TestCase):
    def test_candidates_keep_the_secret_and_only_consistent_words(self):
        rng = random.Random(2)
        for _ in range(20):
            secret = rng.choice(words.answers())
            history = random_history(rng, secret, 2)
            cands = filter_candidates(history)
            self.assertIn(secret, cands)
            self.assertTrue(all(is_consistent(w, history) for w in cands))

    def test_no_history_means_every_answer(self):
        self.assertEqual(len(GameState("hello").candidates()), 2315)


class TestPurity(unittest.TestCase):
    def test_pure_modules_do_not_import_mlx(self):
        code = "import sys, wordle_mlx.wordle.game, wordle_mlx.wordle.words; print('mlx' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()
