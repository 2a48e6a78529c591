import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import mlx.core as mx
import numpy as np

from wordle_mlx.play import rollout
from wordle_mlx.train import rewards, runs, train_rl
from wordle_mlx.config import load_config

ROOT = Path(__file__).resolve().parents[1]
REAL_SCORE_GROUP = rewards.score_group


def varied_score_group(completions, state, weights=None, config=None, think=True, rejected=()):
    """Real scoring plus a small text-dependent term, so a random tiny model's groups have variance."""
    scored = REAL_SCORE_GROUP(completions, state, weights, config, think, rejected)
    for text, b in zip(completions, scored):
        b.total += 0.01 * (sum(map(ord, text)) % 97)
    return scored


def tiny_config(logs_dir: str, name: str, steps: int = 2):
    return load_config(ROOT / "config" / "tiny_test.json",
                       [f"logging.logs_dir={logs_dir}", f"logging.run_name={name}", f"training.steps={steps}"])


def temperature_spy(seen: list[float]):
    """A rollout.sample_groups stand-in that records each group's temperature, then samples for real."""
    real_sample = rollout.sample_groups

    def spy(model, tokenizer, prompts, n, temperature, *args, **kwargs):
        seen.extend([temperature] * len(prompts) if isinstance(temperature, float) else temperature)
        return real_sample(model, tokenizer, prompts, n, temperature, *args, **kwargs)
    return spy


def lines(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines()]


class TestTrainLoop(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.logs = self.tmp.name
        self.patch = mock.patch.object(rewards, "score_group", side_effect=varied_score_group)
        self.patch.start()

    def tearDown(self):
        self.patch.stop()
        self.tmp.cleanup()

    def test_two_steps_write_metrics_samples_and_checkpoint(self):
        run_dir = train_rl.train(tiny_config(self.logs, "a"))
        metrics = lines(run_dir / "metrics.jsonl")
        self.assertEqual([m["step"] for m in metrics], [1, 2])
        for key in ["games", "wins", "win_rate", "cumulative_wins", "mean_turns", "reward_mean", "reward_std",
                    "reward_format", "reward_information", "skipped_group_fraction", "loss", "kl", "clip_fraction",
                    "grad_norm", "lr", "generated_tokens", "generation_tps", "training_tps", "peak_memory_gb", "elapsed_s",
                    "consistent_rate", "repeat_rate", "groups_with_consistent", "consistent_group_fraction",
                    "reward_consistency", "reward_repeat"]:
            self.assertIn(key, metrics[0])
        for m in metrics:
            self.assertEqual(m["consistent_group_fraction"], m["groups_with_consistent"] / m["groups"])
        self.assertGreater(metrics[0]["grad_norm"], 0.0)  # an update really happened
        self.assertEqual(len(lines(run_dir / "samples.jsonl")), 4)  # 2 per step
        ckpt = run_dir / "checkpoint"
        self.assertEqual(json.loads((ckpt / "state.json").read_text())["step"], 2)
        self.assertEqual(json.loads((ckpt / "adapter_config.json").read_text())["fine_tune_type"], "lora")
        self.assertTrue((run_dir / "adapters" / "adapters.safetensors").exists())
        self.assertEqual(load_config(run_dir / "config.json").training.steps, 2)

    def test_keep_adapters_every_keeps_standalone_adapters_of_those_steps(self):
        from wordle_mlx.play.policy import run_answer_settings

        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=k", "training.steps=3", "training.checkpoint_every=100",
            "training.keep_adapters_every=2"])
        run_dir = train_rl.train(config)
        kept = sorted(p.name for p in (run_dir / "kept").iterdir())
        self.assertEqual(kept, ["step_0002"])
        step2 = run_dir / "kept" / "step_0002"
        self.assertEqual(run_answer_settings(step2)["prompt_format"], config.sampling.prompt_format)  # standalone
        weights = mx.load(str(step2 / "adapters.safetensors"))
        self.assertTrue(all(v.dtype == mx.float16 for v in weights.values()))
        from wordle_mlx.play.evaluate import training_minutes

        at_step2 = next(m["elapsed_s"] for m in lines(run_dir / "metrics.jsonl") if m["step"] == 2)
        self.assertAlmostEqual(training_minutes(str(step2)), at_step2 / 60)  # the run's minutes up to that step
        final = mx.load(str(run_dir / "adapters" / "adapters.safetensors"))
        self.assertTrue(any(not mx.array_equal(weights[k], final[k].astype(mx.float16)).item() for k in weights))

    def test_final_eval_is_printed_and_saved(self):
        from rich.console import Console

        config = load_config(ROOT / "config" / "tiny_test.json", [f"logging.logs_dir={self.logs}", "logging.run_name=f",
                                                                  "training.steps=1", "training.final_eval_games=2"])
        console = Console(record=True, width=200)
        run_dir = train_rl.train(config, console=console)
        report = json.loads((run_dir / "final_eval.json").read_text())
        start = json.loads((run_dir / "final_eval_start.json").read_text())
        self.assertEqual((report["n_games"], start["n_games"]), (2, 2))
        self.assertEqual([g["secret"] for g in start["games"]], [g["secret"] for g in report["games"]])  # same words
        self.assertRegex(console.export_text(), r"2 eval words \(greedy\), start \(the base model\) -> trained: "
                                                r"won \d -> \d, valid (\d+%|n/a) -> (\d+%|n/a), consistent")

    def test_a_masked_run_trains_and_its_adapters_say_which_mask(self):
        from wordle_mlx.play.policy import run_answer_settings

        config = load_config(ROOT / "config" / "tiny_test.json", [f"logging.logs_dir={self.logs}", "logging.run_name=m",
                                                                  "training.steps=1", "sampling.mask=allowed_new"])
        run_dir = train_rl.train(config)
        self.assertEqual(len(lines(run_dir / "metrics.jsonl")), 1)
        self.assertEqual(run_answer_settings(run_dir / "adapters")["mask"], "allowed_new")  # evaluate's default

    def test_a_share_of_masked_games_samples_those_games_masked_and_the_rest_free(self):
        seen: list[bool] = []  # per sampled game turn: did it carry a legal-move mask
        real_sample = rollout.sample_groups

        def spy(*args, prompt_processors=None, **kwargs):
            seen.extend(p is not None for p in prompt_processors)
            return real_sample(*args, prompt_processors=prompt_processors, **kwargs)

        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=half", "training.steps=1", "training.games_per_step=4",
            "sampling.mask=allowed_new", "sampling.masked_games=0.5", "training.dynamic_sampling=false"])
        with mock.patch.object(rollout, "sample_groups", side_effect=spy):
            m = lines(train_rl.train(config) / "metrics.jsonl")[0]
        self.assertEqual(m["masked_games"], 2)
        self.assertLessEqual(m["masked_wins"], m["wins"])
        self.assertTrue(any(seen) and not all(seen), seen)  # both kinds of game sampled in the one step

    def test_a_share_of_masked_games_needs_a_mask(self):
        from wordle_mlx.config import ConfigError

        with self.assertRaisesRegex(ConfigError, "masked_games.*needs sampling.mask"):
            load_config(ROOT / "config" / "tiny_test.json", ["sampling.masked_games=0.5"])

    def test_resuming_a_finished_run_shows_its_saved_result_without_playing_again(self):
        from rich.console import Console

        config = load_config(ROOT / "config" / "tiny_test.json", [f"logging.logs_dir={self.logs}", "logging.run_name=d",
                                                                  "training.steps=1", "training.final_eval_games=2"])
        first = Console(record=True, width=300)
        run_dir = train_rl.train(config, console=first)
        saved = [l for l in first.export_text().splitlines() if "eval words (greedy)" in l]
        console = Console(record=True, width=300)
        with mock.patch.object(train_rl, "greedy_report", side_effect=AssertionError("played again")):
            train_rl.train(load_config(None), resume=run_dir, console=console)
        text = console.export_text()
        self.assertIn(f"{run_dir} is finished (1/1 steps", text)
        self.assertEqual([l for l in text.splitlines() if "eval words (greedy)" in l], saved)
        self.assertEqual(len(lines(run_dir / "metrics.jsonl")), 1)

    def test_final_eval_without_the_start(self):
        from rich.console import Console

        config = load_config(ROOT / "config" / "tiny_test.json", [f"logging.logs_dir={self.logs}", "logging.run_name=g",
                                                                  "training.steps=1", "training.final_eval_games=2",
                                                                  "training.final_eval_start=false"])
        console = Console(record=True, width=200)
        run_dir = train_rl.train(config, console=console)
        self.assertFalse((run_dir / "final_eval_start.json").exists())
        self.assertRegex(console.export_text(), r"eval on 2 eval words \(greedy\): \d/2 won, (\d+%|n/a) valid")

    def test_skipped_fraction_counts_zero_variance_groups(self):
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP):  # random outputs: all invalid
            run_dir = train_rl.train(tiny_config(self.logs, "z", steps=1))
        m = lines(run_dir / "metrics.jsonl")[0]
        self.assertEqual(m["zero_variance_groups"], m["groups"])
        self.assertEqual(m["skipped_group_fraction"], 1.0)
        self.assertEqual(m["trained_sequences"], 0)

    def test_a_game_without_a_valid_guess_ends_at_once_by_default(self):
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP):  # random outputs: all invalid
            m = lines(train_rl.train(tiny_config(self.logs, "end", steps=1)) / "metrics.jsonl")[0]
        self.assertEqual(m["groups"], m["games"])
        self.assertEqual(m["games_ended_no_valid_guess"], m["games"])
        self.assertEqual(m["rejected_answers"], 0)

    def test_play_on_invalid_spends_turns_on_rejected_answers_as_evaluation_does(self):
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=on", "training.steps=1",
            "training.play_on_invalid=true", "logging.samples_per_step=1000"])
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP):
            run_dir = train_rl.train(config)
        m = lines(run_dir / "metrics.jsonl")[0]
        self.assertGreater(m["groups"], m["games"])  # games went on after an invalid group
        self.assertEqual(m["rejected_answers"], m["groups"])  # every group's answer was rejected, one turn each
        self.assertEqual(m["games_ended_no_valid_guess"], 0)
        self.assertEqual(m["groups_after_invalid_temperature"], 0)  # not set: one temperature
        samples = lines(run_dir / "samples.jsonl")
        later = [s for s in samples if s.get("rejected")]
        self.assertTrue(later)
        for s in later:
            self.assertLess(len(s["turns"]) + len(s["rejected"]), 6)  # a turn is left to play
        games = {s["game"] for s in samples}
        for g in games:  # each game used all its turns: the last group saw 5 spent
            self.assertEqual(max(len(s["turns"]) + len(s.get("rejected", [])) for s in samples if s["game"] == g), 5)

    def _fixed_groups(self, texts: list[str]):
        """A rollout.sample_groups stand-in: every group is `texts` (one completion each), whatever the prompt."""
        def fake(model, tokenizer, prompts, n, temperature, *args, **kwargs):
            return [[rollout.Completion(tokenizer.encode(t, add_special_tokens=False), t, "stop") for t in texts]
                    for _ in prompts]
        return fake

    def _run_fixed_groups(self, name: str, advance_on: str) -> dict:
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", f"logging.run_name={name}", "training.steps=1",
            "training.start_turns_max=0", "sampling.think=false", f"training.advance_on={advance_on}"])
        texts = ["<guess>CRANE</guess>"] + ["<guess>ZZZZZ</guess>"] * 3  # one valid word, the commonest invalid
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP), \
                mock.patch.object(rollout, "sample_groups", side_effect=self._fixed_groups(texts)):
            return lines(train_rl.train(config) / "metrics.jsonl")[0]

    def test_games_advance_on_the_best_valid_guess_by_default(self):
        m = self._run_fixed_groups("best", "best")
        self.assertEqual(m["rejected_answers"], 0)  # CRANE was played, never the commoner ZZZZZ
        self.assertGreater(m["games_ended_no_valid_guess"] + m["wins"], 0)  # then CRANE again is a repeat: the game ends

    def test_advance_on_commonest_plays_the_group_majority_even_when_invalid(self):
        m = self._run_fixed_groups("common", "commonest")
        self.assertEqual(m["games_ended_no_valid_guess"], 0)
        self.assertEqual(m["wins"], 0)
        self.assertEqual(m["rejected_answers"], m["groups"])  # every turn spent on ZZZZZ, as greedy eval would
        self.assertEqual(m["groups"], 6 * m["games"])

    def _run_invalid_groups(self, name: str, guide: str, dynamic_sampling: bool = False) -> dict:
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", f"logging.run_name={name}", "training.steps=1",
            "training.start_turns_max=0", "sampling.think=false", f"training.guide={guide}",
            f"training.dynamic_sampling={str(dynamic_sampling).lower()}"])
        texts = ["<guess>ZZZZZ</guess>"] * 4  # every sample the same non-word: no signal on its own
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP), \
                mock.patch.object(rollout, "sample_groups", side_effect=self._fixed_groups(texts)):
            return lines(train_rl.train(config) / "metrics.jsonl")[0]

    def test_a_group_of_equal_invalid_answers_teaches_nothing_without_a_guide(self):
        m = self._run_invalid_groups("unguided", "none")
        self.assertEqual(m["zero_variance_groups"], m["groups"])
        self.assertEqual(m["trained_sequences"], 0)

    def test_the_guide_answer_gives_such_a_group_signal_but_never_moves_the_game(self):
        m = self._run_invalid_groups("guided", "frequent")
        self.assertEqual(m["zero_variance_groups"], 0)
        self.assertEqual(m["trained_sequences"], 5 * m["groups"])  # 4 samples + the solver's answer
        self.assertEqual(m["guide_above_group"], m["groups"])
        self.assertGreater(m["guide_advantage_mean"], 0)
        self.assertEqual(m["groups"], m["games"])  # no valid sample: each game ended, the guide played nothing
        self.assertEqual(m["valid_guess_rate"], 0.0)  # metrics describe the model's samples only

    def test_dynamic_sampling_resamples_a_flat_group_but_not_one_the_guide_gives_signal(self):
        unguided = self._run_invalid_groups("flat-resampled", "none", dynamic_sampling=True)
        self.assertEqual(unguided["resampled_groups"], unguided["groups"])
        guided = self._run_invalid_groups("guided-kept", "frequent", dynamic_sampling=True)
        self.assertEqual(guided["resampled_groups"], 0)
        self.assertEqual(guided["trained_sequences"], 5 * guided["groups"])

    def test_guide_completion_is_the_solver_word_in_the_sft_answer_format(self):
        from wordle_mlx.model import models
        from wordle_mlx.train import synth
        from wordle_mlx.wordle.game import GameState

        _, tokenizer = models.load_model("tiny-random-llama")
        state = GameState("cigar").play("raise")
        c = train_rl._guide_completion(synth.target_policy("frequent"), tokenizer, state, "upper")
        word = synth.target_policy("frequent").guess(state.turns)
        self.assertEqual(c.text, f"<guess>{word.upper()}</guess>")
        self.assertEqual(c.tokens[-1], rollout.turn_end_token(tokenizer))
        self.assertEqual(tokenizer.decode(c.tokens[:-1]), c.text)

    def test_turns_after_a_rejected_answer_sample_at_temperature_after_invalid(self):
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=hot", "training.steps=1",
            "training.play_on_invalid=true", "sampling.temperature=0.7", "sampling.temperature_after_invalid=1.5"])
        seen = []  # the temperature of each group, in sampling order
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP), \
                mock.patch.object(rollout, "sample_groups", side_effect=temperature_spy(seen)):
            m = lines(train_rl.train(config) / "metrics.jsonl")[0]
        self.assertEqual(len(seen), m["groups"])
        self.assertEqual(m["groups_after_invalid_temperature"], m["groups"] - m["games"])  # all but each first turn
        self.assertEqual(sum(t == 0.7 for t in seen), m["games"])  # each game's first group
        self.assertEqual(sum(t == 1.5 for t in seen), m["groups"] - m["games"])  # every later one

    def test_hot_after_invalid_answers_keeps_the_first_turn_after_one_at_temperature(self):
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=hot2", "training.steps=1",
            "training.play_on_invalid=true", "sampling.temperature=0.7", "sampling.temperature_after_invalid=1.5",
            "sampling.hot_after_invalid_answers=2", "logging.samples_per_step=1000"])
        seen = []  # the temperature of each group, in sampling order
        with mock.patch.object(rewards, "score_group", side_effect=REAL_SCORE_GROUP), \
                mock.patch.object(rollout, "sample_groups", side_effect=temperature_spy(seen)):
            run_dir = train_rl.train(config)
        m = lines(run_dir / "metrics.jsonl")[0]
        groups = {(s["game"], len(s["turns"]), len(s.get("rejected", []))) for s in lines(run_dir / "samples.jsonl")}
        self.assertEqual(len(groups), m["groups"])  # every sample was written: one key per group
        self.assertTrue(any(spent == 1 for _, _, spent in groups))  # some groups came after one invalid answer
        two_or_more = sum(spent >= 2 for _, _, spent in groups)
        self.assertGreater(two_or_more, 0)
        self.assertEqual(m["groups_after_invalid_temperature"], two_or_more)
        self.assertEqual(sum(t == 1.5 for t in seen), two_or_more)
        self.assertEqual(sum(t == 0.7 for t in seen), m["groups"] - two_or_more)

    def test_each_group_is_scored_with_its_games_rejected_answers(self):
        config = load_config(ROOT / "config" / "tiny_test.json", [
            f"logging.logs_dir={self.logs}", "logging.run_name=again", "training.steps=1",
            "training.play_on_invalid=true", "rewards.rejected_again_lowest=true", "logging.samples_per_step=1000"])
        calls = []  # (rejected answers passed, scored group) per group

        def spy(completions, state, weights=None, config=None, think=True, rejected=()):
            passed = list(rejected)
            if rejected:  # two samples of every later group write a rejected answer again
                completions = ["<guess>NOTAW</guess>"] * 2 + list(completions[2:])
                rejected = passed + ["notaw"]
            scored = REAL_SCORE_GROUP(completions, state, weights, config, think, rejected)
            calls.append((passed, scored))
            return scored

        with mock.patch.object(rewards, "score_group", side_effect=spy):
            run_dir = train_rl.train(config)
        m = lines(run_dir / "metrics.jsonl")[0]
        n = config.sampling.num_generations
        later = [(r, scored) for r, scored in calls if r]
        self.assertEqual(len(calls), m["groups"])
        self.assertEqual(len(later), m["groups"] - m["games"])  # each game's first group: nothing rejected yet
        self.assertTrue(later)
        for r, scored in later:
            self.assertEqual([b.rejected_again for b in scored[:2]], [True, True])
            self.assertLess(scored[0].total, min(b.total for b in scored[2:]))  # the option is on
        samples = lines(run_dir / "samples.jsonl")
        self.assertEqual(sorted(tuple(s.get("rejected", [])) for s in samples), sorted(tuple(r) for r, _ in calls for _ in range(n)))
        self.assertEqual(m["samples_after_invalid"], len(later) * n)
        self.assertEqual(m["samples_rejected_again"], sum(b.rejected_again for _, g in later for b in g))
        self.assertGreaterEqual(m["samples_rejected_again"], 2 * len(later))
        self.assertEqual(m["samples_rejected_again"], sum(s.get("rejected_again", False) for s in samples))
        self.assertEqual(m["rejected_again_rate"], m["samples_rejected_again"] / m["samples_after_invalid"])

    def test_kl_anchors_to_the_starting_adapters_by_default(self):
        start = train_rl.train(tiny_config(self.logs, "sft-like", steps=1)) / "adapters"
        kl = {}
        for reference in ("start", "base"):
            config = load_config(ROOT / "config" / "tiny_test.json", [
                f"logging.logs_dir={self.logs}", f"logging.run_name=kl-{reference}", "training.steps=1",
                f"model.adapter_path={start}", "training.beta=0.1", f"training.kl_reference={reference}"])
            kl[reference] = lines(train_rl.train(config) / "metrics.jsonl")[0]["kl"]
        self.assertAlmostEqual(kl["start"], 0.0, places=7)  # the first update starts at its reference
        self.assertGreater(kl["base"], 0.0)

    def test_resume_reproduces_the_next_step(self):
        straight = train_rl.train(tiny_config(self.logs, "straight", steps=3))
        real_for_step = train_rl.StartStates.for_step

        def interrupt_at_3(self_, step):
            if step == 3:
                raise KeyboardInterrupt
            return real_for_step(self_, step)

        with mock.patch.object(train_rl.StartStates, "for_step", interrupt_at_3), \
                self.assertRaises(runs.Interrupted) as stop:
            train_rl.train(tiny_config(self.logs, "resumed", steps=3))
        resumed = stop.exception.run_dir
        self.assertEqual(stop.exception.step, 2)
        self.assertEqual(len(lines(resumed / "metrics.jsonl")), 2)
        self.assertEqual(json.loads((resumed / "checkpoint" / "state.json").read_text())["step"], 2)
        train_rl.train(load_config(None), resume=resumed)
        a, b = lines(straight / "metrics.jsonl")[2], lines(resumed / "metrics.jsonl")[2]
        for key in ["step", "reward_mean", "loss", "grad_norm", "generated_tokens", "lr"]:
            self.assertAlmostEqual(a[key], b[key], places=5, msg=key)
        wa = mx.load(str(straight / "adapters" / "adapters.safetensors"))
        wb = mx.load(str(resumed / "adapters" / "adapters.safetensors"))
        for k in wa:
            np.testing.assert_allclose(np.array(wa[k]), np.array(wb[k]), atol=1e-6)

    def test_too_long_prompt_is_a_clear_error(self):
        config = load_config(ROOT / "config" / "tiny_test.json",
                             [f"logging.logs_dir={self.logs}", "logging.run_name=long", "sampling.max_prompt_tokens=16"])
        with self.assertRaisesRegex(train_rl.TrainingError, "sampling.max_prompt_tokens: a prompt has"):
            train_rl.train(config)

    def test_existing_run_dir_is_refused(self):
        train_rl.train(tiny_config(self.logs, "dup", steps=1))
        with self.assertRaisesRegex(train_rl.TrainingError, "--resume"):
            train_rl.train(tiny_config(self.logs, "dup", steps=1))


class TestProgress(unittest.TestCase):
    def test_the_bar_moves_through_the_rollout_turns_and_the_update(self):
        calls = []
        real = train_rl.StepProgress.__call__

        def record(self_, phase, fraction):
            calls.append((phase, round(self_.bar.tasks[0].completed, 4)))
            return real(self_, phase, fraction)

        with tempfile.TemporaryDirectory() as logs, \
                mock.patch.object(rewards, "score_group", side_effect=varied_score_group), \
                mock.patch.object(train_rl.StepProgress, "__call__", record):
            train_rl.train(tiny_config(logs, "p", steps=1))
        phases = list(dict.fromkeys(p for p, _ in calls))
        self.assertEqual(phases[-1], "update")
        turns = [int(p.split()[2].split("/")[0]) for p in phases[:-1]]  # start states may have earlier turns
        self.assertTrue(all(p.startswith("rollout turn") and p.endswith("/6") for p in phases[:-1]), phases)
        self.assertEqual(turns, sorted(turns))
        self.assertGreater(len(calls), 10)  # within the step, not once per step
        done = [c for _, c in calls]
        self.assertEqual(done, sorted(done))

    def test_bar_and_step_line_fit_80_columns(self):
        from tests.test_evaluate import render_80

        line = render_80(train_rl.progress_columns(), total=200, completed=122.5, step=123, phase="rollout turn 6/6")
        self.assertIn("step 123/200 ━━━", line)
        self.assertIn("rollout turn 6/6", line)
        metrics = {"step": 123, "loss": -0.01234, "reward_mean": -12.5, "win_rate": 0.125, "wins": 1, "games": 8,
                   "consistent_group_fraction": 0.5}
        run = train_rl.RunState(step=123, cumulative_wins=1234, cumulative_games=9840)
        line = train_rl.step_line(metrics, run)
        self.assertLessEqual(len(line), 80)
        self.assertIn("won 1/8 (1234/9840 in all)", line)  # the step's count and the run's, each labelled


class TestBestGuess(unittest.TestCase):
    def test_the_game_never_advances_on_a_repeat(self):
        from wordle_mlx.train import rewards
        from wordle_mlx.config import RewardsConfig
        from wordle_mlx.wordle.game import GameState
        from wordle_mlx.play.prompts import format_completion

        state = GameState("hello").play("crane").play("slate")
        config = RewardsConfig(ordering=False, weights=RewardsConfig().weights.model_copy(update={"repeat": 0.0}))
        group = rewards.score_group([format_completion("x", "crane"), "junk"], state, config=config)
        self.assertTrue(group[0].repeated)
        self.assertIsNone(train_rl._best_valid(group))  # only a repeat: the game cannot advance on it
        group = rewards.score_group([format_completion("x", "crane"), format_completion("x", "pious")], state,
                                    config=config)
        self.assertEqual(train_rl._best_valid(group), "pious")


class TestTrainCli(unittest.TestCase):
    def test_bad_config_value_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.train_rl", "--config", "config/tiny_test.json",
                               "--set", "sampling.num_generations=1"], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(),
                         ["error: --set sampling.num_generations=1: sampling.num_generations: Input should be greater than or "
                          "equal to 2 (got 1)"])

    def run_cli(self, *args):
        return subprocess.run([sys.executable, "-m", "scripts.train_rl", *args], cwd=ROOT, capture_output=True, text=True)

    def test_missing_start_adapters_are_one_line_naming_the_key(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = self.run_cli("--config", "config/tiny_test.json", "--set", f"logging.logs_dir={tmp}",
                                "--set", "model.adapter_path=no-such-dir")
            self.assertEqual(os.listdir(tmp), [])  # nothing left behind
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("model.adapter_path: no-such-dir is not an adapter directory", proc.stderr)

    def test_adapters_of_another_base_model_are_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = self.run_cli("--config", "config/tiny_test.json", "--set", f"logging.logs_dir={tmp}",
                                "--set", "model.adapter_path=adapters/recipe")
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip().splitlines(),
                         ["error: model.adapter_path: adapters/recipe was trained on smollm2-135m-instruct, not "
                          "tiny-random-llama (set model.name=smollm2-135m-instruct, or start from adapters made for "
                          "tiny-random-llama)"])

    def test_resume_applies_a_new_length_and_refuses_other_keys(self):
        with tempfile.TemporaryDirectory() as tmp:
            first = self.run_cli("--config", "config/tiny_test.json", "--set", f"logging.logs_dir={tmp}",
                                 "--set", "logging.run_name=r", "--set", "training.steps=1")
            self.assertEqual(first.returncode, 0, first.stderr)
            run_dir = Path(tmp) / "r"
            refused = self.run_cli("--resume", str(run_dir), "--set", "training.learning_rate=1")
            self.assertEqual(refused.returncode, 1)
            self.assertIn("--set training.learning_rate: cannot change when resuming", refused.stderr)
            self.assertEqual(len(refused.stderr.strip().splitlines()), 1)
            longer = self.run_cli("--resume", str(run_dir), "--set", "training.steps=2")
            self.assertEqual(longer.returncode, 0, longer.stderr)
            self.assertEqual([m["step"] for m in lines(run_dir / "metrics.jsonl")], [1, 2])
            self.assertEqual(load_config(run_dir / "config.json").training.steps, 2)

    def test_missing_start_states_file(self):
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([sys.executable, "-m", "scripts.train_rl", "--config", "config/tiny_test.json",
                                   "--set", f"logging.logs_dir={tmp}", "--set", "training.start_states=nope.jsonl"],
                                  cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("training.start_states: file not found", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)


if __name__ == "__main__":
    unittest.main()
