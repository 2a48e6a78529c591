"""The value of a guess for winning: exact against playing the games out, and its ordering invariants over
many engine-made states."""

import random
import unittest

from wordle_mlx.train import synth
from wordle_mlx.wordle import solvers, value, words
from wordle_mlx.wordle.game import GameState, Turn


def states(n: int, seed: int) -> list[GameState]:
    rng, sampler = random.Random(seed), synth.StateSampler(seed, max_turns=4)
    out = []
    while len(out) < n:
        state = sampler.sample(rng.choice(words.split_words("train")))
        if not state.finished:
            out.append(state)
    return out


class TestGuessValue(unittest.TestCase):
    def test_it_is_the_mean_score_of_the_games_the_solver_plays_on(self):
        rng, frequent = random.Random(3), solvers.make_policy("frequent")
        for state in states(12, 3):
            guess = rng.choice([rng.choice(words.allowed()), rng.choice(state.candidates())])
            scores, wins = [], 0
            for secret in state.candidates():  # each candidate as the secret, played out in the engine
                game = GameState(secret, state.turns).play(guess)
                while not game.finished:
                    game = game.play(frequent.guess(game.turns))
                wins += game.won
                scores.append((7 - len(game.turns)) / 6 if game.won else 0.0)
            v = value.guess_value(state.turns, guess)
            self.assertAlmostEqual(v.score, sum(scores) / len(scores), places=12)
            self.assertAlmostEqual(v.win_chance, wins / len(scores), places=12)

    def test_values_lie_in_zero_to_one(self):
        rng = random.Random(4)
        for state in states(20, 4):
            for guess in rng.sample(words.allowed(), 5):
                v = value.guess_value(state.turns, guess)
                self.assertTrue(0.0 <= v.score <= 1.0 and 0.0 <= v.win_chance <= 1.0)
                self.assertTrue(len(state.turns) + 1 <= v.expected_turns <= 7)

    def test_the_only_candidate_is_worth_the_most_a_guess_can_be(self):
        for state in states(40, 5):
            cands = state.candidates()
            if len(cands) != 1:
                continue
            best = (6 - len(state.turns)) / 6  # won with this very guess
            self.assertAlmostEqual(value.guess_value(state.turns, cands[0]).score, best)
            other = next(w for w in words.allowed() if w != cands[0])
            self.assertLess(value.guess_value(state.turns, other).score, best)

    def test_a_candidate_is_worth_at_least_its_own_chance_to_win_now(self):
        rng = random.Random(6)
        for state in states(20, 6):
            cands = state.candidates()
            for guess in rng.sample(cands, min(3, len(cands))):
                floor = (6 - len(state.turns)) / 6 / len(cands)
                self.assertGreaterEqual(value.guess_value(state.turns, guess).score, floor - 1e-12)

    def test_as_a_reward_component_it_is_the_same_for_every_secret_of_a_state(self):
        from wordle_mlx.config import RewardsConfig, RewardWeights
        from wordle_mlx.train import rewards

        weights = RewardWeights(value=1.0)
        first = GameState("crane").play("slate")
        fits = [w for w in first.candidates() if w != "crane"][0]  # another secret with the same feedback
        second = GameState(fits, first.turns)
        a = rewards.score("<guess>IRONY</guess>", first, weights, RewardsConfig(), think=False)
        b = rewards.score("<guess>IRONY</guess>", second, weights, RewardsConfig(), think=False)
        self.assertEqual(a.components["value"], b.components["value"])
        self.assertAlmostEqual(a.components["value"], value.guess_value(first.turns, "irony").score)
        off = rewards.score("<guess>IRONY</guess>", first, RewardWeights(), RewardsConfig(), think=False)
        self.assertEqual(off.components["value"], 0.0)  # not computed where it does not count

    def test_a_state_no_answer_fits_has_no_value(self):
        state = GameState("snafu").play("crane").play("sloth").play("spawn").play("snaky")
        self.assertIsNone(value.guess_value(state.turns, "snafu"))

    def test_a_word_that_is_not_allowed_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "not an allowed word"):
            value.guess_value([], "zzzzz")


if __name__ == "__main__":
    unittest.main()
