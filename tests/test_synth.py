import json
import re
import subprocess
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

from wordle_mlx.train import synth
from wordle_mlx.wordle import solvers, words
from wordle_mlx.wordle.game import GameState, feedback, filter_candidates, is_consistent, knowledge_from_history
from wordle_mlx.play.prompts import build_messages, parse_completion

ROOT = Path(__file__).resolve().parents[1]


def replay(record) -> GameState:
    """Play the record's turns through the engine, checking each recorded feedback."""
    state = GameState(record["secret"])
    for guess, fb in record["turns"]:
        state = state.play(guess)
        assert state.turns[-1].feedback == fb, (record["secret"], guess, fb)
    return state


def scratchpad_facts(think: str) -> dict:
    return dict(f.split(" ", 1) if " " in f else (f, "") for f in think.split(" | "))


class TestSftRecords(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.secrets = synth.secrets_for("train", 120, seed=5)
        cls.records = list(synth.sft_records(cls.secrets, "train", seed=5))

    def test_every_example_replays_and_its_think_is_true(self):
        entropy = solvers.EntropyPolicy()
        for r in self.records:
            state = replay(r)
            self.assertFalse(state.finished)
            parsed = parse_completion(r["completion"], strict=True)
            self.assertTrue(parsed.valid, r["completion"])
            self.assertEqual(parsed.guess, r["target"])
            self.assertEqual(r["target"], entropy.guess(state.turns))  # the solver's move for this history
            self.assertEqual(r["messages"], build_messages(state.turns))
            if not state.turns:
                continue
            facts = scratchpad_facts(parsed.think)
            k = knowledge_from_history(state.turns)
            cands = filter_candidates(state.turns)
            self.assertEqual(facts["pattern"], k.pattern("?"))
            self.assertEqual(set(facts.get("has", "").split()), {c.upper() for c in k.misplaced})
            self.assertEqual(set(facts.get("not", "").split()), {c.upper() for c in k.absent})
            count = next(int(f.split()[0]) for f in parsed.think.split(" | ") if f.endswith(" fit"))
            self.assertEqual(count, len(cands))
            last = parsed.think.split(" | ")[-1]
            if is_consistent(r["target"], state.turns):
                self.assertEqual(last, f"{r['target'].upper()} fits")
            else:
                n_groups = int(re.search(r"into (\d+)", last).group(1))
                self.assertEqual(n_groups, len({feedback(r["target"], c) for c in cands}))

    def test_histories_cover_zero_to_four_turns(self):
        self.assertEqual({len(r["turns"]) for r in self.records}, {0, 1, 2, 3, 4})

    def test_think_max_chars_trims_fields(self):
        turns = GameState("hello").play("soare").play("until").turns
        short = synth.think_text(turns, "hello", max_chars=30)
        self.assertLessEqual(len(short), 30)
        self.assertTrue(short.endswith("HELLO fits"))

    def test_count_style(self):
        turns = GameState("hello").play("soare").turns
        self.assertEqual(synth.think_text(turns, "hello", "count"), f"{len(filter_candidates(turns))} words still fit")

    def test_optimal_policy_targets(self):
        record = next(synth.sft_records(["hello"], "train", seed=1, max_turns=0, policy="optimal"))
        self.assertEqual(record["target"], "salet")


class TestSecretsOutsideTheAnswerList(unittest.TestCase):
    def test_sft_examples_for_such_secrets_replay_and_their_targets_fit(self):
        secrets = ["snafu", "kefir", "mixed", "greek"]  # allowed words, none an answer
        self.assertFalse(set(secrets) & set(words.answers()))
        for policy in ("frequent", "entropy", "candidate-entropy"):
            for record in synth.sft_records(secrets * 3, "custom", seed=1, max_turns=5, policy=policy, think_style="none"):
                state = replay(record)
                if policy != "entropy":
                    self.assertTrue(is_consistent(record["target"], state.turns), record)
                self.assertTrue(words.is_allowed(record["target"]))


class TestStudyLevers(unittest.TestCase):
    """The issue-9 levers: candidate targets, no think, compact prompts, data mix."""

    @classmethod
    def setUpClass(cls):
        cls.secrets = synth.secrets_for("train", 80, seed=7)
        cls.records = list(synth.sft_records(cls.secrets, "train", seed=7, fmt="compact", max_turns=5, policy="frequent",
                                             min_turns=1, rejected_rate=0.5))

    def test_frequent_targets_always_fit_the_feedback(self):
        for r in self.records:
            state = replay(r)
            self.assertTrue(is_consistent(r["target"], state.turns), r)
            self.assertTrue(parse_completion(r["completion"], strict=True).think.endswith(f"{r['target'].upper()} fits"))

    def test_frequent_target_is_the_most_common_candidate(self):
        freq = words.word_frequencies()
        for r in self.records[:20]:
            cands = filter_candidates(replay(r).turns)
            self.assertEqual(r["target"], max(cands, key=lambda w: freq[w]))

    def test_candidate_entropy_targets_fit(self):
        for r in synth.sft_records(self.secrets[:15], "train", seed=3, policy="candidate-entropy", min_turns=1):
            self.assertTrue(is_consistent(r["target"], replay(r).turns))

    def test_min_turns_and_rejected_answers(self):
        self.assertGreaterEqual(min(len(r["turns"]) for r in self.records), 1)
        with_mistakes = [r for r in self.records if r.get("rejected")]
        self.assertTrue(with_mistakes)
        for r in with_mistakes:
            self.assertLess(len(r["turns"]) + len(r["rejected"]), 6)
            for bad in r["rejected"]:
                self.assertFalse(words.is_allowed(bad.lower()), bad)
            state = replay(r)
            self.assertEqual(r["messages"], build_messages(state.turns, "compact", rejected=r["rejected"]))
            self.assertIn("not words " + " ".join(r["rejected"]), r["messages"][1]["content"])

    def near_records(self) -> list[dict]:
        records = list(synth.sft_records(self.secrets[:60], "train", seed=11, fmt="compact", max_turns=4,
                                         policy="frequent", min_turns=1, rejected_rate=1.0, mistake_style="near"))
        return [r for r in records if r.get("rejected")]

    def test_near_mistakes_are_the_target_with_one_letter_changed_and_not_words(self):
        records = self.near_records()
        self.assertGreater(len(records), 30)
        for r in records:
            for bad in r["rejected"]:
                self.assertFalse(words.is_allowed(bad.lower()), bad)
                self.assertEqual(sum(a != b for a, b in zip(bad.lower(), r["target"])), 1, (bad, r["target"]))

    def test_near_mistakes_keep_the_greens_and_use_no_gray_letter(self):
        for r in self.near_records():
            k = knowledge_from_history(replay(r).turns)
            for bad in r["rejected"]:
                for place, letter in k.greens.items():
                    self.assertEqual(bad[place].lower(), letter, (bad, r["turns"]))
                self.assertFalse(set(bad.lower()) & set(k.absent - set(r["target"])), (bad, r["turns"]))

    def test_near_mistakes_in_one_state_differ(self):
        for r in self.near_records():
            self.assertEqual(len(set(r["rejected"])), len(r["rejected"]))

    def test_unknown_mistake_style_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "mistake style"):
            next(synth.sft_records(["hello"], "train", mistake_style="nearby"))

    def consistent_records(self, rate: float) -> list[dict]:
        return list(synth.sft_records(self.secrets[:40], "train", seed=5, fmt="compact", max_turns=4,
                                      policy="frequent", min_turns=1, consistent_target_rate=rate))

    def test_consistent_targets_fit_are_new_and_say_their_policy(self):
        for r in self.consistent_records(1.0):
            self.assertEqual(r["policy"], "consistent")
            self.assertTrue(is_consistent(r["target"], replay(r).turns), r)
            self.assertNotIn(r["target"], [g for g, _ in r["turns"]])

    def test_consistent_targets_are_mostly_not_the_frequent_word(self):
        frequent = solvers.CandidatePolicy("frequent")
        records = self.consistent_records(1.0)
        same = sum(r["target"] == frequent.guess(replay(r).turns) for r in records)
        self.assertLess(same, len(records) / 2)
        self.assertGreater(len({r["target"] for r in records}), len(records) * 0.8)

    def test_consistent_target_rate_mixes_the_two_policies(self):
        policies = Counter(r["policy"] for r in self.consistent_records(0.5))
        self.assertEqual(set(policies), {"frequent", "consistent"})

    def test_consistent_target_rate_out_of_range_is_an_error(self):
        with self.assertRaisesRegex(ValueError, "consistent_target_rate"):
            next(synth.sft_records(["hello"], "train", consistent_target_rate=1.5))

    def test_repeat_states_replay_an_earlier_guess_and_target_a_new_word(self):
        records = list(synth.sft_records(self.secrets[:40], "train", seed=7, fmt="compact", max_turns=4,
                                         policy="frequent", min_turns=1, repeat_rate=1.0))
        for r in records:
            played = [g for g, _ in r["turns"]]
            self.assertEqual(len(set(played)), len(played) - 1, played)  # exactly one replayed guess
            self.assertNotIn(r["target"], played)
            self.assertTrue(is_consistent(r["target"], replay(r).turns), r)

    def test_no_repeat_rate_makes_the_same_data_as_before(self):
        plain = list(synth.sft_records(self.secrets[:20], "train", seed=7, fmt="compact", max_turns=5,
                                       policy="frequent", min_turns=1, rejected_rate=0.5))
        self.assertEqual(plain, self.records[:20])
        for r in plain:
            played = [g for g, _ in r["turns"]]
            self.assertEqual(len(set(played)), len(played))

    def test_none_style_has_no_think_block(self):
        r = next(synth.sft_records(["hello"], "train", seed=1, max_turns=2, policy="frequent", think_style="none"))
        self.assertEqual(r["completion"], f"<guess>{r['target'].upper()}</guess>")
        self.assertTrue(parse_completion(r["completion"], strict=True, think=False).valid)
        self.assertEqual(parse_completion(r["completion"], strict=True).reason, "no_think")

    def test_unknown_think_style_is_one_clear_error(self):
        with self.assertRaisesRegex(ValueError, "think style: expected one of"):
            next(synth.sft_records(["hello"], "train", think_style="long"))


class TestRlRecords(unittest.TestCase):
    def test_states_replay_and_are_never_won(self):
        secrets = synth.secrets_for("train", 200, seed=2)
        for r in synth.rl_records(secrets, "train", seed=2):
            state = replay(r)
            self.assertFalse(state.won)
            self.assertLessEqual(len(r["turns"]), 4)
            self.assertEqual(r["messages"], build_messages(state.turns))

    def test_seeded_and_reproducible(self):
        a = list(synth.rl_records(synth.secrets_for("train", 30, 3), "train", seed=3))
        b = list(synth.rl_records(synth.secrets_for("train", 30, 3), "train", seed=3))
        c = list(synth.rl_records(synth.secrets_for("train", 30, 4), "train", seed=4))
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)


def own_game(secret: str, answers: list[str]) -> dict:
    """A report's game dict for `answers` played against `secret` as evaluation records it."""
    state, guesses, fbs = GameState(secret), [], []
    for answer in answers:
        if words.is_allowed(answer.lower()):
            state = state.play(answer.lower())
            guesses.append(answer.lower())
            fbs.append(state.turns[-1].feedback)
        else:
            guesses.append(answer)
            fbs.append(None)
    return {"secret": secret, "won": False, "guesses": guesses, "feedback": fbs}


class TestOnPolicyRecords(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.secret = next(s for s in synth.secrets_for("train", 50, seed=3) if s not in ("raise", "table"))
        # a greedy model stuck as evaluation sees it: a non-word written twice, then a valid word twice
        cls.game = own_game(cls.secret, ["raise", "ABUZE", "ABUZE", "table", "table"])
        cls.records = list(synth.onpolicy_records([cls.game], "train", "compact", "frequent"))

    def test_one_record_per_move_before_it(self):
        self.assertEqual([r["model_answer"] for r in self.records], ["raise", "ABUZE", "ABUZE", "table", "table"])
        self.assertEqual([len(r["turns"]) for r in self.records], [0, 1, 1, 1, 2])

    def test_rejected_answers_are_listed_as_evaluation_lists_them(self):
        self.assertEqual([r.get("rejected", []) for r in self.records], [[], [], ["ABUZE"], ["ABUZE", "ABUZE"],
                                                                         ["ABUZE", "ABUZE"]])
        self.assertIn("ABUZE", self.records[2]["messages"][-1]["content"])
        self.assertEqual(self.records[3]["messages"],
                         build_messages([GameState(self.secret).play("raise").turns[0]], "compact",
                                        rejected=["ABUZE", "ABUZE"]))

    def test_states_replay_and_targets_fit_and_are_new(self):
        for r in self.records:
            state = replay(r)
            target = parse_completion(r["completion"], think=False).guess
            self.assertEqual(target, r["target"])
            self.assertTrue(is_consistent(r["target"], state.turns))
            self.assertNotIn(r["target"], {t.guess for t in state.turns} - {self.secret})

    def test_a_state_reached_twice_makes_one_record(self):
        again = list(synth.onpolicy_records([self.game, self.game], "train", "compact", "frequent"))
        self.assertEqual(len(again), len(self.records))

    def test_eval_secrets_are_refused_as_training_data(self):
        game = own_game(sorted(words.eval_set())[0], ["raise"])
        with self.assertRaises(words.EvalLeakError):
            list(synth.onpolicy_records([game], "train"))


class TestSplitsAndCli(unittest.TestCase):
    def test_train_secrets_never_include_eval_answers(self):
        secrets = synth.secrets_for("train", 5000, seed=9)
        self.assertFalse(set(secrets) & set(words.split_words("eval")))
        self.assertEqual(set(secrets), set(words.split_words("train")))  # cycles through the whole split

    def test_cli_writes_jsonl(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sft.jsonl"
            proc = subprocess.run([sys.executable, "-m", "scripts.data_synth", "--mode", "sft", "--n", "12",
                                   "--split", "train", "--out", str(out), "--seed", "1"], cwd=ROOT,
                                  capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            rows = [json.loads(l) for l in out.read_text().splitlines()]
        self.assertEqual(len(rows), 12)
        self.assertTrue(all(r["split"] == "train" and r["secret"] in words.split_words("train") for r in rows))

    def test_cli_from_games_writes_records_of_the_reports_states(self):
        game = own_game(synth.secrets_for("train", 1, seed=4)[0], ["raise", "ABUZE", "ABUZE"])
        with tempfile.TemporaryDirectory() as tmp:
            report, out = Path(tmp) / "play.json", Path(tmp) / "onpolicy.jsonl"
            report.write_text(json.dumps({"split": "train", "games": [game]}))
            proc = subprocess.run([sys.executable, "-m", "scripts.data_synth", "--mode", "sft", "--n", "100",
                                   "--from-games", str(report), "--format", "compact", "--policy", "frequent",
                                   "--think", "none", "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            rows = [json.loads(l) for l in out.read_text().splitlines()]
            self.assertIn("1 after a rejected answer", proc.stdout)
            report.write_text(json.dumps({"split": "eval", "games": [game]}))
            bad = subprocess.run([sys.executable, "-m", "scripts.data_synth", "--mode", "sft", "--n", "100",
                                  "--from-games", str(report), "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
        self.assertEqual([r["model_answer"] for r in rows], ["raise", "ABUZE", "ABUZE"])
        self.assertEqual(bad.returncode, 2)
        self.assertIn("holds eval games, expected --split train", bad.stderr)
        self.assertNotIn("Traceback", bad.stderr)

    def test_cli_bad_argument_is_one_error_line(self):
        proc = subprocess.run([sys.executable, "-m", "scripts.data_synth", "--mode", "rl", "--n", "0", "--out", "x.jsonl"],
                              cwd=ROOT, capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--n: expected a positive number", proc.stderr)
        self.assertNotIn("Traceback", proc.stderr)


class TestCapCopies(unittest.TestCase):
    @staticmethod
    def record(prompt: str, answer: str, secret: str = "hello") -> dict:
        return {"secret": secret, "messages": [{"role": "user", "content": prompt}],
                "completion": f"<guess>{answer}</guess>"}

    def test_a_pair_is_kept_at_most_k_times_and_the_order_is_kept(self):
        records = [self.record("new game", "RAISE", s) for s in ("a", "b", "c", "d")]
        records.insert(1, self.record("tried RAISE", "CLOUT"))
        kept = synth.cap_copies(records, 2)
        self.assertEqual([r["secret"] for r in kept], ["a", "hello", "b"])

    def test_the_same_prompt_with_another_answer_is_another_example(self):
        records = [self.record("new game", "RAISE"), self.record("new game", "SOARE")]
        self.assertEqual(synth.cap_copies(records, 1), records)

    def test_made_data_keeps_its_opening_at_most_k_times(self):
        records = list(synth.sft_records(synth.secrets_for("train", 200, seed=3), "train", seed=3, fmt="compact",
                                         policy="frequent", think_style="none"))
        def openings(rs):
            return sum(1 for r in rs if not r["turns"] and not r.get("rejected"))
        self.assertGreater(openings(records), 3)
        kept = synth.cap_copies(records, 3)
        self.assertEqual(openings(kept), 3)
        self.assertEqual(len(records) - len(kept), openings(records) - 3)  # only copies of a kept pair go

    def test_k_below_one_is_an_error(self):
        with self.assertRaises(ValueError):
            synth.cap_copies([], 0)


if __name__ == "__main__":
    unittest.main()


class TestWordGuessStyle(unittest.TestCase):
    def test_word_style_writes_a_lowercase_word_with_a_leading_space(self):
        r = next(synth.sft_records(["hello"], "train", seed=2, max_turns=3, min_turns=1, policy="frequent",
                                   guess_style="word"))
        target = r["target"]
        self.assertTrue(r["completion"].endswith(f"<guess> {target}</guess>"), r["completion"])
        self.assertIn(f"| {target} fits</think>", r["completion"])
        parsed = parse_completion(r["completion"], strict=True)
        self.assertTrue(parsed.valid)
        self.assertEqual(parsed.guess, target)
