import random
import unittest

import numpy as np

from wordle_mlx.train import rewards
from wordle_mlx.wordle import words
from wordle_mlx.config import FORMAT_HEAVY, STRATEGY_HEAVY, RewardsConfig, RewardWeights
from wordle_mlx.wordle.game import GameState, Turn, feedback, knowledge_from_history
from wordle_mlx.play.prompts import format_completion, parse_completion

STATE = GameState("hello").play("crane")  # E yellow at 5th; C R A N absent


def Rewards(**settings) -> RewardsConfig:  # noqa: N802
    """The reward settings these properties were written against: the plain weighted tiers with the
    curriculum (the defaults before the recipe's became the defaults), plus `settings`."""
    return RewardsConfig(**{"curriculum": True, "fit_margin": 1.0, "repeat_as_invalid": False,
                            "rejected_again_lowest": False, **settings})


def ok(word: str) -> str:
    return format_completion("reasoning", word)


class TestComponents(unittest.TestCase):
    def test_format_levels(self):
        levels = [rewards.format_reward(parse_completion(t)) for t in
                  ["nothing", "<guess>cranes</guess>", "<guess>abcde</guess>", ok("crane")]]
        self.assertEqual(levels, [0.0, 0.1, 0.5, 1.0])

    def test_strict_layout_costs_a_little(self):
        self.assertEqual(rewards.format_reward(parse_completion("<guess>crane</guess>", strict=True)), 0.8)

    def test_feedback_keeps_green(self):
        turns = GameState("hello").play("belle").turns  # E, L, L green
        k = knowledge_from_history(turns)
        self.assertAlmostEqual(rewards.feedback_reward("hello", k, turns), 0.2 * 3 + 0.05 * 2)  # H, O new

    def test_feedback_moves_yellow(self):
        k = STATE.knowledge
        self.assertAlmostEqual(rewards.feedback_reward("eight", k, STATE.turns), 0.1 + 0.05 * 4)

    def test_feedback_punishes_yellow_in_old_place(self):
        k = STATE.knowledge
        self.assertAlmostEqual(rewards.feedback_reward("globe", k, STATE.turns), -0.2 + 0.05 * 4)

    def test_feedback_punishes_absent_letters(self):
        k = STATE.knowledge
        self.assertAlmostEqual(rewards.feedback_reward("cairn", k, STATE.turns), -0.5 * 4 + 0.05)

    def test_consistency(self):
        self.assertEqual(rewards.consistency_reward("hello", STATE.turns), 1.0)
        self.assertEqual(rewards.consistency_reward("globe", STATE.turns), 0.0)

    def test_information_is_normalised(self):
        self.assertEqual(rewards.information_reward(3.0, 8, False), 1.0)
        self.assertEqual(rewards.information_reward(1.5, 8, False), 0.5)
        self.assertEqual(rewards.information_reward(0.0, 1, True), 1.0)

    def test_information_from_the_table(self):
        b = rewards.score(ok("soare"), GameState("hello"))
        self.assertAlmostEqual(b.components["information"], 5.8860 / np.log2(2315), places=3)

    def test_win_with_early_bonus(self):
        self.assertAlmostEqual(rewards.win_reward("hello", "hello", 2, 6, 0.1), 1.4)
        self.assertEqual(rewards.win_reward("belle", "hello", 2, 6, 0.1), 0.0)

    def test_repeat_costs(self):
        self.assertEqual(rewards.repeat_reward("crane", STATE.turns), -1.0)
        self.assertEqual(rewards.repeat_reward("slate", STATE.turns), 0.0)

    def test_think_length(self):
        self.assertEqual(rewards.think_length_reward("x" * 100, 200), 0.0)
        self.assertEqual(rewards.think_length_reward("x" * 300, 200), -0.5)
        self.assertEqual(rewards.think_length_reward("x" * 5000, 200), -1.0)

    def test_breakdown_total_is_the_weighted_sum_without_ordering(self):
        b = rewards.score(ok("hello"), STATE, config=Rewards(ordering=False))
        w = Rewards().weights
        self.assertAlmostEqual(b.total, sum(getattr(w, k) * v for k, v in b.components.items()))
        self.assertEqual(set(b.components), set(rewards.COMPONENTS))

    def test_ordering_adds_the_tier_offset(self):
        config = Rewards()
        w = config.weights
        gap = rewards.tier_gap(w, config.early_win_bonus)
        for word, tier in (("hello", 2), ("slate", 1), ("crane", 0)):  # fits / does not fit / repeated
            b = rewards.score(ok(word), STATE, config=config)
            self.assertEqual(rewards.tier(b.components), tier, word)
            self.assertAlmostEqual(b.total, sum(getattr(w, k) * v for k, v in b.components.items()) + tier * gap)


JUNK = [
    "", "<think></think><guess></guess>", "<think>x</think>", "<guess>", "<guess>cranes</guess>",
    "<guess>12345</guess>", "<guess>abcde</guess>", "<guess>crane</guess><guess>slate</guess>",
    "<think>" + "long " * 2000 + "</think><guess>qqqqq</guess>", "THINK THINK THINK", "<guess>cr ne</guess>",
    "<think>hello</think>\n<guess>he</guess>",
]


def weight_sets():
    rng = random.Random(0)
    sets = [FORMAT_HEAVY, STRATEGY_HEAVY, RewardWeights(think_length=2.0, repeat=3.0, feedback=2.0)]
    for _ in range(3):
        sets.append(RewardWeights(**{k: rng.uniform(0, 3) for k in rewards.COMPONENTS}))
    return sets


class TestInvalidNeverBeatsValid(unittest.TestCase):
    """Exhaustive: every allowed word vs every junk completion, over generated states and weight sets."""

    def test_invalid_scores_strictly_below_every_allowed_word(self):
        rng = random.Random(7)
        allowed = words.allowed()
        for n_state in range(8):
            secret = rng.choice(words.split_words("train"))
            state = GameState(secret)
            for g in rng.sample(allowed, rng.randint(0, 5)):
                state = state.play(g)
            config = Rewards(early_win_bonus=rng.choice([0.0, 0.1, 0.5]))
            # every allowed word, with the worst layout and longest think allowed for a valid guess
            long_think = "x" * (config.think_target_chars * 3)
            completions = [format_completion(long_think, w) for w in allowed] + JUNK
            parsed = [parse_completion(c, strict=True) for c in completions]
            info = rewards.information_bits(state.turns, list(allowed))
            # the value component at both ends of its range (0..1) instead of its exact figure, which takes ~30 ms
            # a word: the bounds must hold for any value (tests/test_value.py checks the figures themselves)
            info.values = {w: float(sum(map(ord, w)) % 2) for w in allowed}
            for weights in weight_sets():
                totals = [rewards.score_parsed(p, state, weights, config, info) for p in parsed]
                valid = [b.total for b in totals if b.valid]
                invalid = [b.total for b in totals if not b.valid]
                self.assertEqual(len(valid), len(allowed))
                self.assertLess(max(invalid), min(valid), (secret, state.turns, weights))

    def test_invalid_completions_keep_their_order(self):
        b = [rewards.score(t, STATE).total for t in ["nothing", "<guess>cranes</guess>", "<guess>abcde</guess>"]]
        self.assertLess(b[0], b[1])
        self.assertLess(b[1], b[2])


def engine_states(n: int, seed: int = 0) -> list[GameState]:
    """Start states as training makes them: train secrets with 0-4 turns of sensible play."""
    from wordle_mlx.train import synth

    sampler = synth.StateSampler(seed, max_turns=5)
    return [sampler.sample(s) for s in synth.secrets_for("train", n, seed)]


def fuzzed_completions(state: GameState, rng: random.Random, allowed: list[str], candidates: list[str]) -> list[str]:
    """Valid guesses that fit, that do not fit and repeats, each in several layouts, plus junk."""
    played = [t.guess for t in state.turns]
    fits = rng.sample(candidates, min(len(candidates), 12))
    others = [w for w in rng.sample(allowed, 60) if w not in played and w not in candidates][:20]
    layouts = [lambda w: format_completion("short", w), lambda w: f"<guess>{w.upper()}</guess>",
               lambda w: format_completion("x" * 900, w), lambda w: f"<think>a</think> <guess> {w} </guess> trailing"]
    out = [layout(w) for w in fits + others + played for layout in layouts]
    return out + JUNK + [f"<guess>{w[:4]}</guess>" for w in fits[:3]]


class TestRewardOrdering(unittest.TestCase):
    """Property: in every engine-made state, for every weight setting (both curriculum phases and
    random ones, zeros included) and win bonus: invalid < repeated < valid not fitting < fitting."""

    def tiers(self, state, completions, weights, config):
        info = rewards.information_bits(state.turns, [p.guess for p in map(parse_completion, completions) if p.guess])
        scored = [rewards.score_parsed(parse_completion(c, strict=True), state, weights, config, info)
                  for c in completions]
        invalid = [b.total for b in scored if not b.valid]
        repeated = [b.total for b in scored if b.repeated]
        not_fitting = [b.total for b in scored if b.valid and not b.repeated and not b.consistent]
        fitting = [b.total for b in scored if b.consistent]
        return invalid, repeated, not_fitting, fitting

    def test_fitting_above_not_fitting_above_repeated_above_invalid(self):
        rng = random.Random(11)
        allowed = words.allowed()
        weights = weight_sets() + [RewardWeights(**{k: 0.0 for k in rewards.COMPONENTS}),
                                   RewardWeights(consistency=0.0, repeat=0.0, information=3.0, win=3.0)]
        checked = {"repeated": 0, "not_fitting": 0}
        for state in engine_states(40, seed=3):
            candidates = rewards.information_bits(state.turns, []).candidates
            completions = fuzzed_completions(state, rng, allowed, candidates)
            for w in weights:
                config = Rewards(early_win_bonus=rng.choice([0.0, 0.1, 0.5]),
                                       fit_margin=rng.choice([1.0, 1.0, 2.5, 8.0]))
                invalid, repeated, not_fitting, fitting = self.tiers(state, completions, w, config)
                where = (state.secret, [t.guess for t in state.turns], w, config.fit_margin)
                self.assertTrue(fitting and invalid, where)
                self.assertEqual(bool(not_fitting), bool(state.turns), where)  # before any feedback every word fits
                self.assertLess(max(invalid), min(not_fitting + fitting), where)
                if not_fitting:
                    self.assertLess(max(not_fitting), min(fitting), where)
                    checked["not_fitting"] += 1
                if repeated:
                    self.assertLess(max(repeated), min(not_fitting), where)
                    self.assertLess(max(invalid), min(repeated), where)
                    checked["repeated"] += 1
        self.assertGreater(checked["repeated"], 100)  # most states have earlier turns to repeat
        self.assertGreater(checked["not_fitting"], 100)

    def test_repeat_as_invalid_scores_a_repeat_like_a_made_up_word(self):
        rng = random.Random(13)
        allowed = words.allowed()
        checked = 0
        for state in engine_states(20, seed=5):
            if not state.turns:
                continue
            candidates = rewards.information_bits(state.turns, []).candidates
            completions = fuzzed_completions(state, rng, allowed, candidates)
            for w in weight_sets():
                config = Rewards(repeat_as_invalid=True, early_win_bonus=rng.choice([0.0, 0.1, 0.5]))
                invalid, repeated, not_fitting, fitting = self.tiers(state, completions, w, config)
                made_up = rewards.score(f"<think>a</think><guess>{'zzzzz'}</guess>", state, w, config).total
                where = (state.secret, [t.guess for t in state.turns], w)
                self.assertTrue(repeated, where)
                self.assertEqual(set(repeated), {made_up}, where)  # exactly a word that is not allowed
                self.assertLess(max(repeated), min(not_fitting + fitting), where)
                self.assertLess(max(not_fitting), min(fitting), where)  # the ordering above is unchanged
                checked += 1
        self.assertGreater(checked, 50)

    def test_repeat_above_invalid_without_the_option(self):
        state = next(s for s in engine_states(20, seed=5) if s.turns)
        config = Rewards()
        repeat = rewards.score(ok(state.turns[0].guess), state, config=config).total
        made_up = rewards.score(ok("zzzzz"), state, config=config).total
        self.assertGreater(repeat, made_up)  # so the test above can fail

    def test_inconsistent_as_invalid_leaves_only_fitting_guesses_above_the_floor(self):
        rng = random.Random(17)
        allowed = words.allowed()
        checked = 0
        for state in engine_states(20, seed=6):
            candidates = rewards.information_bits(state.turns, []).candidates
            completions = fuzzed_completions(state, rng, allowed, candidates)
            for w in weight_sets():
                config = Rewards(inconsistent_as_invalid=True, early_win_bonus=rng.choice([0.0, 0.1, 0.5]))
                invalid, repeated, not_fitting, fitting = self.tiers(state, completions, w, config)
                made_up = rewards.score("<think>a</think><guess>zzzzz</guess>", state, w, config).total
                where = (state.secret, [t.guess for t in state.turns], w)
                self.assertEqual(set(repeated + not_fitting), {made_up} if state.turns else set(), where)
                self.assertLessEqual(max(invalid), made_up, where)
                self.assertLess(made_up, min(fitting), where)
                checked += bool(not_fitting)
        self.assertGreater(checked, 50)

    def test_a_group_without_a_fitting_guess_is_flat_under_inconsistent_as_invalid(self):
        state = next(s for s in engine_states(20, seed=6) if s.turns)
        candidates = set(rewards.information_bits(state.turns, []).candidates)
        others = [w for w in words.allowed()[:400] if w not in candidates][:5] + [state.turns[0].guess]
        group = [ok(w) for w in others] + ["<guess>zzzzz</guess>"]
        flat = rewards.score_group(group, state, config=Rewards(inconsistent_as_invalid=True))
        self.assertEqual(len({b.total for b in flat}), 1)
        graded = rewards.score_group(group, state, config=Rewards())
        self.assertGreater(len({b.total for b in graded}), 1)  # without it the same group has a gradient

    def test_fit_margin_widens_only_the_gap_below_fitting_words(self):
        state = next(s for s in engine_states(20, seed=6) if s.turns)
        fit = rewards.information_bits(state.turns, []).candidates[0]
        misfit = next(w for w in words.allowed() if not rewards.consistency_reward(w, state.turns))
        totals = {}
        for margin in (1.0, 4.0):
            config = Rewards(fit_margin=margin)
            totals[margin] = [rewards.score(ok(w), state, config=config).total
                              for w in (fit, misfit, state.turns[0].guess, "zzzzz")]
        gap = rewards.tier_gap(Rewards().weights, Rewards().early_win_bonus)
        self.assertAlmostEqual(totals[4.0][0] - totals[1.0][0], 3 * gap)  # the fitting word moves up
        self.assertEqual(totals[4.0][1:], totals[1.0][1:])  # misfit, repeat and made-up word stay put

    def test_fit_margin_leaves_a_group_without_a_fitting_word_as_it_was(self):
        from wordle_mlx.train.grpo import group_advantages

        state = next(s for s in engine_states(20, seed=6) if s.turns)
        candidates = set(rewards.information_bits(state.turns, []).candidates)
        misfits = [w for w in words.allowed()[:400] if w not in candidates][:4]
        group = [ok(w) for w in misfits] + ["<guess>zzzzz</guess>", ok(state.turns[0].guess)]
        with_fit = group + [ok(sorted(candidates)[0])]
        adv = {}
        for margin in (1.0, 4.0):
            config = Rewards(fit_margin=margin)
            adv[margin] = [group_advantages([b.total for b in rewards.score_group(g, state, config=config)])[0]
                           for g in (group, with_fit)]
        np.testing.assert_allclose(adv[4.0][0], adv[1.0][0])
        self.assertGreater(adv[4.0][1][-1], adv[1.0][1][-1])  # the fitting sample's share grows

    def test_without_ordering_a_guess_that_does_not_fit_can_win_the_group(self):
        rng = random.Random(12)
        allowed = words.allowed()
        broken = 0
        for state in engine_states(8, seed=4):
            candidates = rewards.information_bits(state.turns, []).candidates
            completions = fuzzed_completions(state, rng, allowed, candidates)
            for w in weight_sets():
                _, repeated, not_fitting, fitting = self.tiers(state, completions, w, Rewards(ordering=False))
                broken += bool(not_fitting) and max(not_fitting) > min(fitting)
        self.assertGreater(broken, 0)  # so the property test above can fail


def near_misses(state: GameState, rng: random.Random, n: int) -> list[str]:
    """Non-words one letter from a candidate, as a stuck letters model writes them (upper case)."""
    allowed, out = set(words.allowed()), []
    for w in rng.sample(rewards.information_bits(state.turns, []).candidates, 1) * 50:
        i = rng.randrange(5)
        miss = w[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + w[i + 1:]
        if miss not in allowed and miss.upper() not in out:
            out.append(miss.upper())
        if len(out) == n:
            break
    return out


class TestRejectedAgain(unittest.TestCase):
    """Property: with `rejected_again_lowest`, writing an answer already rejected in the game scores
    strictly below every other completion (valid, repeated, made up, no tags), in every state, for
    every weight setting, with or without the other options; without it, like any made-up word."""

    def test_a_rejected_answer_written_again_is_the_lowest_completion(self):
        rng = random.Random(19)
        allowed = words.allowed()
        checked = 0
        for state in engine_states(30, seed=8):
            candidates = rewards.information_bits(state.turns, []).candidates
            rejected = near_misses(state, rng, 2)
            again = [c for r in rejected for c in (f"<guess>{r}</guess>", f"<guess> {' '.join(r)}</guess>",
                                                    f"<think>a</think><guess>{r.lower()}</guess>")]
            completions = fuzzed_completions(state, rng, allowed, candidates) + again
            for w in weight_sets():
                for options in ({}, {"inconsistent_as_invalid": True}, {"repeat_as_invalid": True, "ordering": False}):
                    config = Rewards(rejected_again_lowest=True, early_win_bonus=rng.choice([0.0, 0.1, 0.5]),
                                           **options)
                    scored = rewards.score_group(completions, state, w, config, rejected=rejected)
                    lowest = [b.total for b in scored if b.rejected_again]
                    others = [b.total for b in scored if not b.rejected_again]
                    where = (state.secret, [t.guess for t in state.turns], rejected, w, options)
                    self.assertEqual(len(lowest), len(again), where)  # spelled, lower case: the same answer
                    self.assertLess(max(lowest), min(others), where)
                    checked += 1
        self.assertGreater(checked, 200)

    def test_without_the_option_a_rejected_answer_scores_like_a_new_made_up_word(self):
        state = GameState("hello").play("crane")
        group = ["<guess>HELLP</guess>", "<guess>ZZZZZ</guess>"]
        plain = rewards.score_group(group, state, config=Rewards(), rejected=["HELLP"])
        self.assertTrue(plain[0].rejected_again)
        self.assertFalse(plain[1].rejected_again)
        self.assertEqual(plain[0].total, plain[1].total)  # a flat group: what the option changes
        lowest = rewards.score_group(group, state, config=Rewards(rejected_again_lowest=True), rejected=["HELLP"])
        self.assertLess(lowest[0].total, lowest[1].total)

    def test_an_empty_answer_is_never_rejected_again(self):
        state = GameState("hello").play("crane")
        b = rewards.score("no tags at all", state, config=Rewards(rejected_again_lowest=True))
        self.assertFalse(b.rejected_again)
        b = rewards.score_group(["no tags at all"], state, config=Rewards(rejected_again_lowest=True),
                                rejected=[""])[0]
        self.assertFalse(b.rejected_again)


class TestCurriculum(unittest.TestCase):
    def test_switches_once_compliance_passes_threshold(self):
        config = Rewards(window=10, switch_threshold=0.9)
        cur = rewards.Curriculum(config)
        self.assertEqual(cur.weights, config.format_weights)
        bad = rewards.score("nothing", STATE)
        good = rewards.score(ok("hello"), STATE)
        self.assertFalse(cur.update([good] * 8 + [bad] * 2))  # 80%
        self.assertTrue(cur.update([good] * 9))  # last 10: 1 bad, 9 good = 90%
        self.assertEqual(cur.weights, config.weights)
        self.assertFalse(cur.update([bad] * 10))  # stays switched

    def test_disabled_curriculum_uses_strategy_weights(self):
        config = Rewards(curriculum=False)
        self.assertEqual(rewards.Curriculum(config).weights, config.weights)


if __name__ == "__main__":
    unittest.main()
