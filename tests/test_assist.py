"""play --assist: a person types the word played and its colours; the player suggests; bad input never costs a turn."""

import subprocess
import sys
import unittest
from pathlib import Path

from wordle_mlx.play import assist
from wordle_mlx.wordle import solvers
from wordle_mlx.wordle.game import GameState, Turn, feedback

ROOT = Path(__file__).resolve().parents[1]


class Person:
    """Plays a hidden secret elsewhere: takes every suggestion (Enter) unless told words to type first, and
    answers the true colours, after any bad colour lines it is told to type first."""

    def __init__(self, secret: str, words: list[str] = (), bad_colours: dict[str, list[str]] | None = None):
        self.secret, self.words, self.bad_colours = secret, list(words), dict(bad_colours or {})
        self.word = None
        self.prompts: list[str] = []

    def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if prompt.startswith("word played"):
            typed = self.words.pop(0) if self.words else ""
            self.word = typed or (prompt.split("Enter = ")[1].split(")")[0].lower() if "Enter = " in prompt else None)
            return typed
        if self.bad_colours.get(self.word):
            return self.bad_colours[self.word].pop(0)
        return feedback(self.word, self.secret).lower()


class TestParsing(unittest.TestCase):
    def test_colours_take_g_y_x_and_grey_aliases(self):
        self.assertEqual(assist.parse_colours("gyxxg"), "GYXXG")
        self.assertEqual(assist.parse_colours(" G Y b . - "), "GYXXX")

    def test_bad_colours_are_one_line(self):
        for text in ("", "ggg", "gyxxq", "gggggg"):
            with self.assertRaisesRegex(ValueError, "^colours: expected 5 of g"):
                assist.parse_colours(text)

    def test_word_problems(self):
        turns = [Turn("crane", "XXGYX")]
        self.assertIsNone(assist.word_problem("snafu", turns))
        self.assertRegex(assist.word_problem("crane", turns), "played already")
        self.assertRegex(assist.word_problem("zzzzz", turns), "not in the allowed word list")
        self.assertRegex(assist.word_problem("cran", turns), "4 letters")


class TestAssistedGame(unittest.TestCase):
    def test_taking_every_suggestion_plays_the_solver_game(self):
        for secret in ("crane", "snafu"):  # an answer, and an allowed word outside the answers
            person, said = Person(secret), []
            game = assist.assist(solvers.make_policy("frequent"), person.ask, said.append)
            state = GameState(secret)
            policy = solvers.make_policy("frequent")
            while not state.finished:
                state = state.play(policy.guess(state.turns))
            self.assertEqual(game.turns, list(state.turns))
            self.assertTrue(game.won)

    def test_bad_input_is_asked_again_and_costs_no_turn(self):
        # SLATE after CRANE XXGYX must show its A green: all grey is a typo
        person = Person("snafu", words=["zzzzz", "cran", "crane", "crane", "slate"],
                        bad_colours={"crane": ["ggg", "gyxxq"], "slate": ["xxxxx"]})
        said: list[str] = []
        game = assist.assist(solvers.make_policy("entropy"), person.ask, said.append)
        self.assertEqual(game.turns[:2], [Turn("crane", feedback("crane", "snafu")), Turn("slate", feedback("slate", "snafu"))])
        self.assertTrue(game.won)
        problems = [s for s in said if s.startswith("  ")]
        self.assertTrue(any("not in the allowed word list" in s for s in problems))
        self.assertTrue(any("4 letters" in s for s in problems))
        self.assertTrue(any("played already" in s for s in problems))
        self.assertEqual(sum("expected 5 of g" in s for s in problems), 2)
        self.assertTrue(any("no allowed word gives these colours" in s for s in problems))

    def test_input_ending_says_at_which_turn(self):
        lines = iter(["", "xxxxx"])

        def ask(prompt):
            try:
                return next(lines)
            except StopIteration:
                raise EOFError from None
        with self.assertRaises(assist.InputEnded) as ended:
            assist.assist(solvers.make_policy("frequent"), ask, lambda s: None)
        self.assertEqual(ended.exception.turn, 2)

    def test_a_model_answer_that_is_not_a_word_asks_for_the_word_played(self):
        from wordle_mlx.model import models
        from wordle_mlx.play.policy import ModelPolicy

        model, tokenizer = models.load_model(models.TINY_MODEL)  # random weights: never writes a word
        policy = ModelPolicy(model, tokenizer, "compact", 0.0, 8, think=False)
        person, said = Person("snafu", words=["crane", "", "sloth", "spawn", "snaky", "snafu"]), []
        game = assist.assist(policy, person.ask, said.append)
        self.assertEqual([t.guess for t in game.turns], ["crane", "sloth", "spawn", "snaky", "snafu"])
        self.assertTrue(game.won)
        self.assertTrue(all("Enter =" not in p for p in person.prompts))
        self.assertIn("  type a five-letter word; try again", said)  # Enter with no usable suggestion


class TestAssistCommand(unittest.TestCase):
    def run_play(self, stdin: str, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "scripts.play", *args], input=stdin, capture_output=True,
                              text=True, cwd=ROOT, timeout=300)

    def test_from_a_pipe_a_game_is_typed_in_and_read_back(self):
        out = self.run_play("crane\nxxgyx\n\nggggg\n", "--assist", "--policy", "frequent")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("CRANE  XXGYX", out.stdout)  # feedback letters, not bare letters, without a terminal
        self.assertIn("8 words left: AGAIN", out.stdout)
        self.assertIn("solved in 2", out.stdout)

    def test_input_ending_mid_game_is_one_error_line(self):
        out = self.run_play("crane\n", "--assist", "--policy", "entropy")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stderr.strip().splitlines()[-1], "error: input ended at turn 1/6, before the game did")
        self.assertFalse(any("Traceback" in line for line in out.stderr.splitlines()))

    def test_assist_with_a_secret_is_a_usage_error(self):
        out = self.run_play("", "--assist", "--policy", "entropy", "--secret", "crane")
        self.assertEqual(out.returncode, 2)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main()
