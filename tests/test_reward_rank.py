import json
import tempfile
import unittest
from pathlib import Path

from wordle_mlx.train import reward_rank
from wordle_mlx.wordle import value
from wordle_mlx.wordle.game import GameState

STATE = GameState("crane").play("slate")
GUESSES = ["irony", "crane", "brake", "mourn", "drake"]


def group(rewards):
    return reward_rank.Group(list(STATE.turns), list(GUESSES), list(rewards), [{"consistency": 1.0}] * len(GUESSES))


class TestRankAgreement(unittest.TestCase):
    def test_kendall_tau_b(self):
        self.assertEqual(reward_rank.kendall_tau_b([1, 2, 3], [10, 20, 30]), 1.0)
        self.assertEqual(reward_rank.kendall_tau_b([1, 2, 3], [3, 2, 1]), -1.0)
        self.assertAlmostEqual(reward_rank.kendall_tau_b([1, 1, 2], [1, 2, 3]), 2 / (3 * 2) ** 0.5)
        self.assertIsNone(reward_rank.kendall_tau_b([1, 1], [1, 2]))

    def test_a_reward_equal_to_the_value_agrees_fully_and_its_reverse_not_at_all(self):
        values = [value.guess_value(STATE.turns, g).score for g in GUESSES]
        same = reward_rank.agreement([group(values)])["total"]
        self.assertEqual((same["tau_b"], same["best_is_best_value"], same["regret"]), (1.0, 1.0, 0.0))
        self.assertGreater(same["push"], 0)
        reverse = reward_rank.agreement([group([-v for v in values])])["total"]
        self.assertEqual(reverse["tau_b"], -1.0)
        self.assertEqual(reverse["best_is_best_value"], 0.0)
        self.assertAlmostEqual(reverse["regret"], max(values) - min(values))
        self.assertLess(reverse["push"], 0)

    def test_groups_are_read_from_samples_and_invalid_answers_are_worth_nothing(self):
        records = [{"step": 1, "game": 0, "turns": [["slate", STATE.turns[0].feedback]], "valid": valid,
                    "completion": f"<guess>{word}</guess>", "reward": r, "components": {"consistency": 0.0}}
                   for word, valid, r in [("CRANE", True, 2.0), ("SLATE", True, 0.0), ("QQQQQ", False, -1.0)]]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "samples.jsonl"
            path.write_text("".join(json.dumps(r) + "\n" for r in records))
            groups = reward_rank.groups_from_samples([path])
        self.assertEqual(len(groups), 1)
        self.assertEqual(groups[0].guesses, ["crane", None, None])  # a repeat and an invalid answer: no guess
        self.assertEqual(reward_rank.guess_values(groups[0])[1:], [0.0, 0.0])


if __name__ == "__main__":
    unittest.main()
