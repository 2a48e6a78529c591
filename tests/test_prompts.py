import unittest

from wordle_mlx.wordle.game import GameState
from wordle_mlx.play.prompts import (FORMATS, GUESS_STYLES, SYSTEM_PROMPT, build_messages, format_completion, guess_text,
                                 parse_completion, render_state)

# HELLO after LLAMA (L yellow twice) and LOLLY (first L gray, two L green): repeated letters in both directions
REPEATS = GameState("hello").play("llama").play("lolly").turns


class TestRender(unittest.TestCase):
    def test_plain_lists_every_letter_with_its_colour(self):
        text = render_state(REPEATS, "plain")
        self.assertIn("1. LLAMA: L yellow, L yellow, A gray, M gray, A gray", text)
        self.assertIn("2. LOLLY: L gray, O yellow, L green, L green, Y gray", text)

    def test_plain_states_what_is_known(self):
        text = render_state(REPEATS, "plain")
        self.assertIn("Letters in place: __LL_", text)
        self.assertIn("In the word, place unknown: O (not 2nd)", text)
        self.assertIn("Not in the word: A M Y", text)

    def test_plain_states_exact_letter_counts_from_repeats(self):
        self.assertIn("exactly 2 L", render_state(REPEATS, "plain"))

    def test_symbols_format(self):
        text = render_state(REPEATS, "symbols")
        self.assertIn("1. L(-) L(-) A(x) M(x) A(x)", text)
        self.assertIn("2. L(x) O(-) L(✓) L(✓) Y(x)", text)

    def test_rows_format(self):
        self.assertEqual(render_state(REPEATS, "rows").splitlines()[:2], ["LLAMA YYXXX", "LOLLY XYGGX"])

    def test_every_format_says_guesses_left(self):
        for fmt in FORMATS:
            self.assertIn("4 left" if fmt == "compact" else "4 guesses left", render_state(REPEATS, fmt), fmt)

    def test_first_turn(self):
        self.assertIn("first guess", render_state((), "plain"))

    def test_rejected_answers_are_listed_and_cost_turns(self):
        text = render_state(REPEATS, "plain", rejected=["ayups", "", "AYUPS"])
        self.assertIn("Not valid words (not accepted): AYUPS", text)
        self.assertIn("1 guess left", text)  # 6 - 2 turns - 3 rejected answers

    def test_unknown_format_raises(self):
        with self.assertRaisesRegex(ValueError, "prompt format"):
            render_state(REPEATS, "emoji")

    def test_messages_are_system_then_user(self):
        messages = build_messages(REPEATS)
        self.assertEqual([m["role"] for m in messages], ["system", "user"])
        self.assertEqual(messages[0]["content"], SYSTEM_PROMPT)
        self.assertIn("<guess>WORD</guess>", SYSTEM_PROMPT)


class TestParse(unittest.TestCase):
    def test_valid_completion(self):
        p = parse_completion("<think>E is green</think>\n<guess>CRANE</guess>", strict=True)
        self.assertEqual((p.guess, p.think, p.reason), ("crane", "E is green", None))

    def test_case_and_whitespace_tolerant(self):
        self.assertEqual(parse_completion("<THINK>x</THINK> <Guess>  Crane \n</GUESS>").guess, "crane")

    def test_no_guess_tag(self):
        self.assertEqual(parse_completion("<think>hmm</think> CRANE").reason, "no_guess_tag")

    def test_several_guess_tags(self):
        self.assertEqual(parse_completion("<guess>crane</guess><guess>slate</guess>").reason, "several_guess_tags")

    def test_wrong_length(self):
        self.assertEqual(parse_completion("<guess>cranes</guess>").reason, "wrong_length")

    def test_non_letters(self):
        self.assertEqual(parse_completion("<guess>cr4ne</guess>").reason, "not_letters")

    def test_not_an_allowed_word(self):
        self.assertEqual(parse_completion("<guess>abcde</guess>").reason, "not_allowed")

    def test_empty_think_only_matters_when_strict(self):
        text = "<think> </think><guess>crane</guess>"
        self.assertIsNone(parse_completion(text).reason)
        self.assertEqual(parse_completion(text, strict=True).reason, "empty_think")

    def test_missing_think_when_strict(self):
        self.assertEqual(parse_completion("<guess>crane</guess>", strict=True).reason, "no_think")

    def test_extra_text_when_strict(self):
        self.assertEqual(parse_completion("<think>a</think><guess>crane</guess> done!", strict=True).reason, "extra_text")

    def test_format_completion_round_trips(self):
        p = parse_completion(format_completion("pattern ??A?E", "brace"), strict=True)
        self.assertEqual((p.guess, p.think, p.reason), ("brace", "pattern ??A?E", None))

    def test_every_guess_style_round_trips_with_and_without_think(self):
        for style in GUESS_STYLES:
            with self.subTest(style=style):
                p = parse_completion(format_completion("x", "brace", style), strict=True)
                self.assertEqual((p.guess, p.reason), ("brace", None))
                p = parse_completion(format_completion(None, "brace", style), strict=True, think=False)
                self.assertEqual((p.guess, p.reason), ("brace", None))

    def test_letters_style_writes_one_spaced_capital_per_letter(self):
        self.assertEqual(guess_text("crane", "letters"), " C R A N E")

    def test_spelled_guess_is_one_word_and_keeps_its_problems(self):
        self.assertEqual(parse_completion("<guess>c r a n e</guess>").guess, "crane")
        self.assertEqual(parse_completion("<guess>C R A N E S</guess>").reason, "wrong_length")
        self.assertEqual(parse_completion("<guess>A B C D E</guess>").reason, "not_allowed")
        self.assertEqual(parse_completion("<guess>CR ANE</guess>").reason, "not_letters")  # only single letters join


if __name__ == "__main__":
    unittest.main()


class TestCompactFormat(unittest.TestCase):
    def test_compact_states_pattern_has_and_not(self):
        from wordle_mlx.wordle.game import GameState
        from wordle_mlx.play.prompts import COMPACT_SYSTEM_PROMPT

        turns = GameState("store").play("crane").play("slate").turns
        self.assertEqual(render_state(turns, "compact"),
                         "tried CRANE SLATE\npattern S???E\nhas R (not 2), T (not 4)\nnot A C L N\n4 left")
        self.assertEqual(build_messages(turns, "compact")[0]["content"], COMPACT_SYSTEM_PROMPT)

    def test_compact_lists_rejected_answers_and_counts_their_turns(self):
        from wordle_mlx.wordle.game import GameState

        turns = GameState("store").play("crane").turns
        text = render_state(turns, "compact", rejected=["abcd"])
        self.assertIn("not words ABCD", text)
        self.assertTrue(text.endswith("4 left"))


class TestNoThinkLayout(unittest.TestCase):
    def test_guess_only_is_strictly_valid(self):
        self.assertTrue(parse_completion("<guess>CRANE</guess>", strict=True, think=False).valid)

    def test_think_block_is_extra_text_without_think(self):
        self.assertEqual(parse_completion("<think>x</think><guess>CRANE</guess>", strict=True, think=False).reason,
                         "extra_text")

    def test_guess_problems_still_reported(self):
        self.assertEqual(parse_completion("<guess>CRAN</guess>", think=False).reason, "wrong_length")
