"""The GRPO training loop: whole Wordle games per step, batched group sampling, LoRA updates.

One step:
1. take `games_per_step` start states (secrets from the train split, each with 0..start_turns_max
   earlier turns of sensible play, from a data_synth file or made on the fly; seeded per step);
2. every turn, for all unfinished games at once: render the prompt, sample `num_generations`
   completions per game from prefilled-and-forked KV caches (wordle_mlx.play.rollout), score them
   (wordle_mlx.train.rewards, curriculum weights), compute group advantages (zero-variance groups are
   counted and logged, optionally resampled once), and advance each game with the group's best
   valid guess that is not a repeat; a game with no such guess in its group ends as a loss, or with
   `training.play_on_invalid` goes on as evaluation would: the group's commonest answer costs the turn
   (a repeated word is played, an invalid answer is listed as not a word in the next prompts);
   `training.advance_on: commonest` plays that commonest answer every turn, valid or not, so the
   games follow greedy evaluation's states instead of best-of-N ones; and
   `sampling.temperature_after_invalid` samples those prompts hotter (from the
   `hot_after_invalid_answers`-th invalid answer on), since a group at the usual
   temperature mostly repeats the rejected answer (no signal); the update still scores every
   completion at `sampling.temperature`, so hot samples are exploration, not on-policy;
   `training.guide` adds a solver's answer to every group as one more completion (off-policy
   guidance, as in LUFFY, without its importance shaping): scored like the samples, it sets the
   bar the group is normalised against and is trained with its own advantage, so a group in which
   no sample fits still says which word would have; games go on with the model's answers only;
3. one GRPO update over all groups of the step (wordle_mlx.train.grpo);
4. one JSONL metrics line, a few samples, a checkpoint every `checkpoint_every` steps (and the
   adapters of every `keep_adapters_every`-th step kept in <run>/kept/), an evaluation on a fixed
   eval subset every `eval_every` steps.

Data parallel under `mlx.launch` (wordle_mlx.train.distributed): every rank makes the same
`games_per_step x ranks` start states and plays its own share, gradients are averaged, metrics
summed/averaged across ranks, and rank 0 alone writes metrics, samples and checkpoints.

Runs are resumable: a checkpoint holds the adapters (mlx-lm format), the optimizer state, the
curriculum and counters; every step reseeds its RNGs from (seed, step), so a resumed run repeats
exactly what an uninterrupted one does. Ctrl-C writes a checkpoint of the last finished step.
"""

from __future__ import annotations

import functools
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from wordle_mlx import jsonl
from wordle_mlx.model import lora, memory, models
from wordle_mlx.play import evaluate, guided, rollout
from wordle_mlx.train import checkpoint, grpo, rewards, runs, synth, trackers
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.config import Config
from wordle_mlx.train.distributed import World, init_world, reduce_metrics
from wordle_mlx.wordle.game import MAX_GUESSES, GameState, InvalidGuess, Turn
from wordle_mlx.play.policy import ModelPolicy
from wordle_mlx.play.prompts import build_messages, format_completion

CHECKPOINT = checkpoint.CHECKPOINT


class TrainingError(RuntimeError):
    """A run that cannot start (one line)."""


@dataclass
class RunState:
    step: int = 0
    cumulative_wins: int = 0
    cumulative_games: int = 0
    elapsed_s: float = 0.0
    curriculum_switched: bool = False
    curriculum_recent: list | None = None


def lora_settings(config: Config) -> lora.LoraSettings:
    c = config.lora
    return lora.LoraSettings(rank=c.rank, alpha=c.alpha, scale=c.scale, dropout=c.dropout, num_layers=c.num_layers,
                             targets=tuple(c.targets))


def load_policy_model(config: Config):
    """(model, tokenizer) with trainable LoRA: from model.adapter_path if set, else fresh adapters."""
    check_start_adapters(config)
    model, tokenizer = models.load_model(config.model.name, dequantize=config.model.dequantize)
    model.base_model = config.model.name
    if config.model.adapter_path:
        try:
            lora.load_adapters(model, config.model.adapter_path)
        except ValueError as err:  # mlx-lm: "... contains incompatible tensors" (another base model)
            raise TrainingError(f"model.adapter_path: {config.model.adapter_path} does not fit {config.model.name} "
                                f"({str(err).splitlines()[0][:120]}); were the adapters trained on another base "
                                f"model? set model.name to it") from None
        model.freeze()
        for _, m in lora.lora_modules(model):
            m.unfreeze(keys=["lora_a", "lora_b"], strict=False)
    else:
        mx.random.seed(config.training.seed)  # LoRA A matrices are random: same seed, same run
        lora.apply_lora(model, lora_settings(config))
    if not hasattr(model, "lora_settings"):
        model.lora_settings = lora_settings(config)
    return model, tokenizer


def check_start_adapters(config: Config) -> None:
    """One error line when model.adapter_path is missing, incomplete or made for another base model."""
    path = config.model.adapter_path
    if not path:
        return
    p = Path(path)
    if not (p / lora.ADAPTER_CONFIG).is_file() or not (p / lora.ADAPTER_WEIGHTS).is_file():
        hint = " (run the SFT first: python -m scripts.train_sft --config config/sft_quickstart.json)" \
            if "sft" in str(path) else ""
        raise TrainingError(f"model.adapter_path: {path} is not an adapter directory "
                            f"(needs {lora.ADAPTER_CONFIG} and {lora.ADAPTER_WEIGHTS}){hint}")
    base = lora.adapter_base_model(p)
    if base and base != config.model.name:
        raise TrainingError(f"model.adapter_path: {path} was trained on {base}, not {config.model.name} "
                            f"(set model.name={base}, or start from adapters made for {config.model.name})")


def kl_reference_adapters(model, config: Config) -> dict | None:
    """The KL reference's LoRA weights: the starting adapters (`kl_reference` "start" with an adapter_path and
    beta > 0), else None (adapters off: the base model, which fresh adapters start equal to)."""
    t = config.training
    if t.beta == 0 or t.kl_reference == "base" or not config.model.adapter_path:
        return None
    return dict(tree_flatten(model.trainable_parameters()))


def load_start_states(path: str) -> list[GameState]:
    """RL start states from a data_synth JSONL file (train split only)."""
    p = Path(path)
    if not p.is_file():
        raise TrainingError(f"training.start_states: file not found: {p}")
    states = []
    n = 0
    try:
        for n, record in jsonl.iter_lines(p):
            state = GameState(record["secret"])
            for guess, _ in record["turns"]:
                state = state.play(guess)
            states.append(state)
    except (ValueError, KeyError, TypeError) as err:
        line = err.line if isinstance(err, jsonl.BadLine) else n
        raise TrainingError(f"training.start_states: {p} line {line}: not a data_synth RL record ({err})") from None
    if not states:
        raise TrainingError(f"training.start_states: {p} has no records")
    try:
        wordlists.check_training_secrets([s.secret for s in states])
    except wordlists.EvalLeakError as err:
        raise TrainingError(f"training.start_states: {err}") from None
    return states


class StartStates:
    """Seeded start states per step: from a file, or played on the fly by synth.StateSampler."""

    def __init__(self, config: Config, world: World | None = None):
        self.config = config
        self.world = world or World()
        t = config.training
        self.pool = load_start_states(t.start_states) if t.start_states else None
        self.sampler = None if self.pool else synth.StateSampler(t.seed, max_turns=t.start_turns_max)
        self.train_words = wordlists.split_words("train")

    def all_for_step(self, step: int) -> list[GameState]:
        """The step's start states of all ranks (games_per_step per rank), the same on every rank."""
        rng = random.Random(f"{self.config.training.seed}-states-{step}")
        n = self.config.training.games_per_step * self.world.size
        if self.pool:
            return [self.pool[rng.randrange(len(self.pool))] for _ in range(n)]
        self.sampler.rng = rng
        self.sampler.consistent.rng = rng
        return [self.sampler.sample(rng.choice(self.train_words)) for _ in range(n)]

    def for_step(self, step: int) -> list[GameState]:
        """This rank's start states for the step."""
        return self.world.shard(self.all_for_step(step))


def save_checkpoint(run_dir: Path, model, optimizer, state: RunState, curriculum: rewards.Curriculum) -> Path:
    """Adapters, optimizer state, counters and the curriculum, written atomically."""
    state.curriculum_switched = curriculum.switched
    state.curriculum_recent = [bool(x) for x in curriculum.recent]
    return checkpoint.save(run_dir, model, optimizer, dict(state.__dict__))


def load_checkpoint(run_dir: Path, model, optimizer, curriculum: rewards.Curriculum, console=None) -> RunState:
    if not checkpoint.exists(run_dir):
        raise TrainingError(f"--resume: {run_dir} has no complete checkpoint ({CHECKPOINT}/)")
    notify = (lambda msg: console.print(f"[yellow]{msg}[/]")) if console is not None else None
    state = RunState(**checkpoint.load(run_dir, model, optimizer, notify))
    curriculum.switched = state.curriculum_switched
    curriculum.recent.extend(state.curriculum_recent or [])
    return state


def _best_valid(breakdowns: list[rewards.RewardBreakdown]) -> str | None:
    """The group's best valid guess that is not a repeat (None: the game cannot advance)."""
    valid = [b for b in breakdowns if b.valid and not b.repeated]
    return max(valid, key=lambda b: b.total).parsed.guess if valid else None


def _commonest_answer(breakdowns: list[rewards.RewardBreakdown]) -> str:
    """The answer most of the group wrote (first on ties): what greedy decoding would most likely play."""
    attempts = [b.parsed.attempt.strip().lower() for b in breakdowns]
    return max(attempts, key=attempts.count) if attempts else ""


@functools.cache
def _guide_solver(name: str):
    """One solver per run and name (solvers memoise their decisions)."""
    return synth.target_policy(name)


def _guide_completion(solver, tokenizer, state: GameState, guess_style: str) -> rollout.Completion:
    """The solver's answer for `state` in the trained answer format (no think text), ending with the
    stop token an SFT target ends with."""
    text = format_completion(None, solver.guess(state.turns), guess_style)
    tokens = list(tokenizer.encode(text, add_special_tokens=False)) + [rollout.turn_end_token(tokenizer)]
    return rollout.Completion(tokens, text, "guide")


def masked_ids(mask, prompt: list[int], completion: list[int]) -> list | None:
    """Per completion token, the ids the game's legal-move mask allowed there (None where it did not
    constrain, or where the token is not among them: the guide's answer may be tokenised another way)."""
    if mask is None:
        return None
    out = []
    for j, token in enumerate(completion):
        ids = mask.allowed_after(list(prompt) + list(completion[:j]))
        out.append(ids if ids is not None and token in set(ids.tolist()) else None)
    return out if any(a is not None for a in out) else None


def _temperature(s, rejected: list[str]) -> float:
    """The turn's sampling temperature: `temperature_after_invalid` once `hot_after_invalid_answers`
    invalid answers cost the game turns, else `temperature`."""
    hot = s.temperature_after_invalid is not None and len(rejected) >= s.hot_after_invalid_answers
    return s.temperature_after_invalid if hot else s.temperature


def play_step(model, tokenizer, states: list[GameState], config: Config, curriculum: rewards.Curriculum,
              timings: dict, rollout_stats: rollout.RolloutStats,
              on_progress: Callable[[str, float], None] | None = None) -> dict:
    """Play the step's games to the end; return groups, sequences and counters.
    `on_progress(phase, fraction)`: "rollout turn k/6" and the fraction of that turn's batch decoded."""
    s, rc = config.sampling, config.rewards
    by_best = config.training.advance_on == "best"  # else every game goes on with its group's commonest answer
    games = list(states)
    ended_invalid = [False] * len(games)
    rejected: list[list[str]] = [[] for _ in games]  # invalid answers that cost a turn (play_on_invalid)
    guide = _guide_solver(config.training.guide) if config.training.guide != "none" else None
    guide_advantages: list[float] = []
    out_of_turns = [False] * len(games)
    seqs: list[grpo.TrainSequence] = []
    seq_games: list[int] = []  # the game each sequence came from
    records = []  # (game index, state, completion, breakdown, advantage, rejected answers so far)
    groups = zero_groups = resampled = turns_played = consistent_groups = hot_groups = 0
    max_guesses = max((g.max_guesses for g in games), default=6)
    n_masked = round(s.masked_games * len(games)) if s.mask != "none" else 0  # the first n_masked games sample masked
    while True:
        active = [i for i, g in enumerate(games) if not g.finished and not ended_invalid[i] and not out_of_turns[i]]
        if not active:
            break
        turn = min(len(games[i].turns) for i in active) + 1
        report = None if on_progress is None else (
            lambda f, phase=f"rollout turn {turn}/{max_guesses}": on_progress(phase, f))
        prompt_ids = [rollout.chat_prompt(tokenizer, build_messages(games[i].turns, s.prompt_format, rejected=rejected[i]))
                      for i in active]
        longest = max(len(p) for p in prompt_ids)
        if longest > s.max_prompt_tokens:
            raise TrainingError(f"sampling.max_prompt_tokens: a prompt has {longest} tokens, more than "
                                f"{s.max_prompt_tokens}; raise it or use a shorter sampling.prompt_format")
        temps = [_temperature(s, rejected[i]) for i in active]
        hot_groups += sum(t != s.temperature for t in temps)
        masks = {i: guided.mask_processor(tokenizer, s.mask if i < n_masked else "none",
                                          [t.guess for t in games[i].turns], s.guess_style)
                 for i in active}
        samples = rollout.sample_groups(model, tokenizer, prompt_ids, s.num_generations, temps,
                                        s.max_new_tokens, s.top_p, rollout_stats, on_progress=report,
                                        prompt_processors=[[masks[i]] if masks[i] else None for i in active])
        for i, prompt, group, temp in zip(active, prompt_ids, samples, temps):
            state = games[i]
            extra = None if guide is None else _guide_completion(guide, tokenizer, state, s.guess_style)

            def score(group: list[rollout.Completion]):
                """Rewards of the group (+ the guide's answer, last) and advantages normalised over all of them."""
                start = time.perf_counter()
                texts = [c.text for c in group] + ([] if extra is None else [extra.text])
                scored = rewards.score_group(texts, state, curriculum.weights, rc, s.think, rejected[i])
                advantages, zero = grpo.group_advantages([b.total for b in scored], config.training.scale_rewards)
                timings["reward_s"] += time.perf_counter() - start
                return scored, advantages, zero

            scored, advantages, zero = score(group)
            if zero and config.training.dynamic_sampling:  # with a guide: only if the guide scored like every sample
                resampled += 1
                group = rollout.sample_groups(model, tokenizer, [prompt], s.num_generations, temp,
                                              s.max_new_tokens, s.top_p, rollout_stats,
                                              prompt_processors=[[masks[i]] if masks[i] else None])[0]
                scored, advantages, zero = score(group)
            if extra is not None:  # one more member: the solver's answer, normalised with the group
                seqs.append(grpo.TrainSequence(prompt, extra.tokens, float(advantages[-1]),
                                               masked_ids(masks[i], prompt, extra.tokens)))
                seq_games.append(i)
                guide_advantages.append(float(advantages[-1]))
                scored, advantages = scored[:-1], advantages[:-1]
            groups += 1
            zero_groups += int(zero)
            consistent_groups += int(any(b.consistent for b in scored))
            curriculum.update(scored)
            for c, b, a in zip(group, scored, advantages):
                seqs.append(grpo.TrainSequence(prompt, c.tokens, float(a), masked_ids(masks[i], prompt, c.tokens)))
                seq_games.append(i)
                records.append((i, state, c, b, float(a), list(rejected[i])))
            best = _best_valid(scored) if by_best else None
            if best is not None:
                games[i] = state.play(best)
            elif by_best and not config.training.play_on_invalid:
                ended_invalid[i] = True
            else:
                answer = _commonest_answer(scored)
                try:
                    games[i] = state.play(answer)  # a repeated word: the turn is spent on it
                except InvalidGuess:
                    rejected[i].append(answer.upper())
            out_of_turns[i] = len(games[i].turns) + len(rejected[i]) >= games[i].max_guesses  # some spent on invalid answers
            turns_played += 1
    return {"games": games, "ended_invalid": ended_invalid, "rejected": rejected, "seqs": seqs, "seq_games": seq_games,
            "records": records,
            "groups": groups,
            "zero_groups": zero_groups, "resampled": resampled, "turns_played": turns_played,
            "consistent_groups": consistent_groups, "hot_groups": hot_groups, "guide_advantages": guide_advantages,
            "masked_games": n_masked}


def _step_metrics(step: int, played: dict, states: list[GameState], upd: grpo.UpdateStats, run: RunState,
                  curriculum: rewards.Curriculum, optimizer, rollout_stats: rollout.RolloutStats, timings: dict,
                  step_s: float, memory_gb: dict) -> dict:
    games = played["games"]
    wins = sum(g.won for g in games)
    totals = [r[3].total for r in played["records"]]
    comps = {k: float(np.mean([r[3].components[k] for r in played["records"]])) for k in rewards.COMPONENTS}
    valid = [r[3].valid for r in played["records"]]
    after_invalid = sum(bool(r[5]) for r in played["records"])
    rejected_again = sum(r[3].rejected_again for r in played["records"])
    lr = optimizer.learning_rate
    train_s = upd.logprob_s + upd.backward_s
    metrics = {
        "step": step, "games": len(games), "wins": wins, "win_rate": wins / len(games),
        "masked_games": played["masked_games"], "masked_wins": sum(g.won for g in games[:played["masked_games"]]),
        "cumulative_wins": run.cumulative_wins, "cumulative_games": run.cumulative_games,
        "mean_turns": float(np.mean([len(g.turns) - len(s.turns) for g, s in zip(games, states)])),
        "games_ended_no_valid_guess": int(sum(played["ended_invalid"])),
        "rejected_answers": sum(len(r) for r in played["rejected"]),
        "samples_after_invalid": after_invalid, "samples_rejected_again": rejected_again,
        "reward_mean": float(np.mean(totals)), "reward_std": float(np.std(totals)),
        **{f"reward_{k}": v for k, v in comps.items()},
        "valid_guess_rate": float(np.mean(valid)),
        "consistent_rate": float(np.mean([r[3].consistent for r in played["records"]])),
        "repeat_rate": float(np.mean([r[3].repeated for r in played["records"]])),
        "groups_with_consistent": played["consistent_groups"],
        "consistent_group_fraction": played["consistent_groups"] / max(played["groups"], 1),
        "rejected_again_rate": rejected_again / max(after_invalid, 1),
        "format_compliance": curriculum.compliance,
        "curriculum": "strategy" if curriculum.switched else "format",
        "groups": played["groups"], "zero_variance_groups": played["zero_groups"],
        "skipped_group_fraction": played["zero_groups"] / max(played["groups"], 1),
        "resampled_groups": played["resampled"], "groups_after_invalid_temperature": played["hot_groups"],
        "guide_advantage_mean": float(np.mean(played["guide_advantages"])) if played["guide_advantages"] else 0.0,
        "guide_above_group": sum(a > 0 for a in played["guide_advantages"]),
        "loss": upd.loss, "kl": upd.kl, "clip_fraction": upd.clip_fraction, "grad_norm": upd.grad_norm,
        "lr": float(lr.item() if hasattr(lr, "item") else lr),
        "trained_sequences": upd.sequences, "trained_tokens": upd.tokens, "update_chunks": upd.chunks,
        "processed_tokens": upd.processed_tokens,
        "generated_tokens": rollout_stats.generated_tokens, "generation_tps": rollout_stats.generation_tps,
        "training_tps": upd.tokens / train_s if train_s > 0 else 0.0,
        **memory_gb,
        "time_prefill_s": rollout_stats.prefill_s, "time_decode_s": rollout_stats.decode_s,
        "time_reward_s": timings["reward_s"], "time_logprob_s": upd.logprob_s, "time_backward_s": upd.backward_s,
        "time_optimizer_s": upd.optimizer_s, "step_s": step_s, "elapsed_s": run.elapsed_s,
    }
    return metrics


def _samples(step: int, played: dict, k: int) -> list[dict]:
    out = []
    for i, state, c, b, a, rejected in played["records"][:k]:
        out.append({"step": step, "game": i, "secret": state.secret, "turns": [[t.guess, t.feedback] for t in state.turns],
                    **({"rejected": rejected, "rejected_again": b.rejected_again} if rejected else {}),
                    "completion": c.text, "finish_reason": c.finish_reason, "reward": b.total,
                    "components": b.components, "advantage": a, "valid": b.valid, "reason": b.parsed.reason})
    return out


def greedy_report(model, tokenizer, config: Config, n: int, progress: bool = False, **meta) -> dict:
    """evaluate's report of greedy games on `n` fixed eval words (seed 0) in the run's answer format and mask."""
    secrets = wordlists.sample_split("eval", n, seed=0)
    policy = ModelPolicy(model, tokenizer, config.sampling.prompt_format, 0.0, config.sampling.max_new_tokens,
                         think=config.sampling.think, label=meta.pop("label", "model"), mask=config.sampling.mask,
                         guess_style=config.sampling.guess_style)
    return evaluate.evaluate(policy, secrets, progress=progress, **meta)


def run_eval(model, tokenizer, config: Config) -> dict:
    report = greedy_report(model, tokenizer, config, config.training.eval_games)
    return {"eval_win_rate": report["win_rate"], "eval_mean_guesses": report["mean_guesses"],
            "eval_invalid_guess_rate": report["invalid_guess_rate"]}


class StepProgress:
    """The GRPO bar: moves within a step (rollout turn k/6 as its batch decodes, then the update)."""

    def __init__(self, bar, task, max_guesses: int = MAX_GUESSES):
        self.bar, self.task, self.max_guesses, self.step = bar, task, max_guesses, 0

    def __call__(self, phase: str, fraction: float) -> None:
        k = int(phase.split()[2].split("/")[0]) if phase.startswith("rollout turn") else self.max_guesses + 1
        done = (min(k, self.max_guesses + 1) - 1 + fraction) / (self.max_guesses + 1)
        self.bar.update(self.task, completed=self.step - 1 + done, step=self.step, phase=phase)

    def done(self, line: str | None) -> None:
        self.bar.update(self.task, completed=self.step, step=self.step, phase="")
        if line:
            self.bar.console.print(line)


def progress_columns() -> list:
    """`step 3/24 [bar] rollout turn 2/6 0:01:10 ETA 0:25:00`: under 80 columns."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return [TextColumn("[bold]step[/] {task.fields[step]}/{task.total:.0f}"), BarColumn(bar_width=16),
            TextColumn("{task.fields[phase]:<17}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]


def step_line(metrics: dict, run: RunState) -> str:
    """One line per finished step (under 80 columns): the step's wins of its games, then the run's so far."""
    return (f"step {metrics['step']:>3}  loss {metrics['loss']:+.4f}  reward {metrics['reward_mean']:+.2f}  "
            f"won {metrics['wins']}/{metrics['games']} ({run.cumulative_wins}/{run.cumulative_games} in all)  "
            f"fit {100 * metrics['consistent_group_fraction']:3.0f}%")


def _report_trim(console, dropped: dict[str, int], step: int) -> None:
    lost = {k: v for k, v in dropped.items() if v}
    if lost:
        console.print(f"[yellow]logs cut back to the checkpoint's step {step}[/]: "
                      + ", ".join(f"{k} lost {v} line(s)" for k, v in lost.items()))


def update_settings(config: Config, model, reference: dict | None) -> grpo.UpdateSettings:
    """The update's settings from the config; `auto` loss chunks sized by the loaded model and free memory."""
    t, s = config.training, config.sampling

    def sized_by_memory() -> int:
        arch, free = memory.loaded_model_sizes(model, t.memory_limit_gb)
        return memory.auto_loss_batch_size(arch, s.max_prompt_tokens, s.max_new_tokens, s.num_generations, free)

    chunk_rows = memory.resolve_rows(t.loss_batch_size, memory.CPU_LOSS_BATCH, sized_by_memory)
    return grpo.UpdateSettings(temperature=s.temperature, epsilon=t.epsilon, epsilon_high=t.epsilon_high, beta=t.beta,
                               num_iterations=t.num_iterations, loss_batch_size=chunk_rows,
                               max_grad_norm=t.max_grad_norm, shared_prompt=t.shared_prompt,
                               reference_adapters=reference)


def prepare_run(config: Config, resume: str | Path | None, world: World | None = None) -> tuple[Config, Path]:
    return runs.prepare_run(config, resume, "", TrainingError, world)


def train(config: Config, resume: str | Path | None = None, console=None) -> Path:
    """Run GRPO training (or resume it); returns the run directory."""
    from rich.console import Console
    from rich.progress import Progress

    console = console or Console(soft_wrap=True)  # to a file: no wrapping at 80 columns
    world = init_world()
    config, run_dir = prepare_run(config, resume, world)
    t = config.training
    main = world.is_main
    tracker = None
    try:
        if main:
            try:
                tracker = trackers.open_tracker(config.logging.report_to, run_dir, config.model_dump())
            except trackers.TrackerError as err:
                raise TrainingError(str(err)) from None
        model, tokenizer = load_policy_model(config)
        reference = kl_reference_adapters(model, config)  # before a resumed checkpoint replaces the weights
        optimizer = grpo.make_optimizer(t.learning_rate, t.steps, t.warmup_steps, t.weight_decay)
        curriculum = rewards.Curriculum(config.rewards)
        run = RunState()
        if resume is not None:
            run = load_checkpoint(run_dir, model, optimizer, curriculum, console if main else None)
            if main:
                _report_trim(console, runs.trim_logs(run_dir, run.step), run.step)
        starts = StartStates(config, world)
    except BaseException:
        if tracker is not None:
            tracker.finish()
        if resume is None and main:
            runs.discard_if_empty(run_dir)  # a run that never started leaves no directory behind
        raise
    if resume is not None and run.step >= t.steps:
        if main:
            console.print(finished_line(config, run_dir, run))
        if tracker is not None:
            tracker.finish()
        return run_dir
    trainable, total = lora.count_parameters(model)
    settings = update_settings(config, model, reference)
    chunk_rows = settings.loss_batch_size
    memory.set_limits(t.memory_limit_gb)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if main:
        auto = f" ({t.loss_batch_size} on {memory.backend()})" if t.loss_batch_size == "auto" else ""
        console.print(f"[bold]run[/] {run_dir}  model {config.model.name}  LoRA params {trainable:,} / {total:,}  "
                      f"steps {run.step}->{t.steps}  games/step {t.games_per_step} x {world.size} process(es)  "
                      f"generations {config.sampling.num_generations}  loss chunks of {chunk_rows} rows{auto}")
    metrics_file = run_dir / "metrics.jsonl"
    samples_file = run_dir / "samples.jsonl"
    step = run.step
    show = config.logging.progress and main
    try:
        with Progress(*progress_columns(), console=console, disable=not show) as bar:
            progress = StepProgress(bar, bar.add_task("train", total=t.steps, completed=run.step, step=run.step,
                                                      phase="starting"))
            for step in range(run.step + 1, t.steps + 1):
                progress.step = step
                start = time.perf_counter()
                mx.random.seed(t.seed * 1_000_003 + step + 7_919 * world.rank)
                mx.reset_peak_memory()
                states = starts.for_step(step)
                timings = {"reward_s": 0.0}
                rstats = rollout.RolloutStats()
                played = play_step(model, tokenizer, states, config, curriculum, timings, rstats, progress)
                progress("update", 0.0)
                rollout_peak = mx.get_peak_memory() / 2**30
                mx.clear_cache()  # the rollout's buffers (KV caches, logits) are not the update's shapes
                mx.reset_peak_memory()
                upd = grpo.update(model, optimizer, played["seqs"], settings, pad_id, world)
                used = memory.usage_gb()
                mx.clear_cache()
                used.update(active_memory_gb=mx.get_active_memory() / 2**30, rollout_peak_memory_gb=rollout_peak,
                            update_peak_memory_gb=used["peak_memory_gb"],
                            peak_memory_gb=max(rollout_peak, used["peak_memory_gb"]))
                step_s = time.perf_counter() - start
                run.step = step
                run.elapsed_s += step_s
                metrics = _step_metrics(step, played, states, upd, run, curriculum, optimizer, rstats, timings, step_s,
                                        used)
                metrics = reduce_metrics(metrics, world, ratios={"win_rate": ("wins", "games"),
                                                                 "skipped_group_fraction": ("zero_variance_groups", "groups"),
                                                                 "consistent_group_fraction": ("groups_with_consistent", "groups"),
                                                                 "rejected_again_rate": ("samples_rejected_again",
                                                                                         "samples_after_invalid")})
                run.cumulative_wins += metrics["wins"]
                run.cumulative_games += metrics["games"]
                metrics["cumulative_wins"], metrics["cumulative_games"] = run.cumulative_wins, run.cumulative_games
                if t.eval_every and step % t.eval_every == 0 and main:
                    metrics.update(run_eval(model, tokenizer, config))
                if main:
                    with metrics_file.open("a") as fh:
                        fh.write(json.dumps(metrics) + "\n")
                    if tracker is not None:
                        tracker.log(metrics, step)
                if config.logging.samples_per_step and main:
                    with samples_file.open("a") as fh:
                        for sample in _samples(step, played, config.logging.samples_per_step):
                            fh.write(json.dumps(sample) + "\n")
                keep = t.keep_adapters_every and step % t.keep_adapters_every == 0
                if (step % t.checkpoint_every == 0 or step == t.steps or keep) and main:
                    save_checkpoint(run_dir, model, optimizer, run, curriculum)
                    if keep:
                        runs.keep_adapters(run_dir, config, step, run.elapsed_s)
                progress.done(step_line(metrics, run) if show else None)
    except KeyboardInterrupt:
        if main:
            save_checkpoint(run_dir, model, optimizer, run, curriculum)
        raise runs.Interrupted(run_dir, run.step, f"{runs.python_command()} -m scripts.train_rl --resume {run_dir}") from None
    finally:
        if tracker is not None:
            tracker.finish()
    if main:
        lora.save_adapters(model, run_dir / "adapters")
        console.print(f"done: {run.cumulative_wins}/{run.cumulative_games} games won; adapters in {run_dir / 'adapters'}")
        if t.final_eval_games:
            console.print(final_eval(model, tokenizer, config, run_dir, show))
    return run_dir


def final_eval(model, tokenizer, config: Config, run_dir: Path, progress: bool = True) -> str:
    """Greedy games on `training.final_eval_games` fixed eval words, by the trained adapters and (with
    `final_eval_start`) by the run's start on the same words; writes final_eval.json (and
    final_eval_start.json), returns one line."""
    n = config.training.final_eval_games
    report = greedy_report(model, tokenizer, config, n, progress, label=f"{config.model.name} + {run_dir.name}",
                           split="eval", seed=0)
    (run_dir / "final_eval.json").write_text(json.dumps(report, indent=1) + "\n")
    if not config.training.final_eval_start:
        return final_eval_line(config, run_dir, report)
    if config.model.adapter_path:
        weights = mx.load(str(Path(config.model.adapter_path) / "adapters.safetensors"))
        context = lora.adapters_swapped(model, weights)
    else:
        context = lora.adapters_disabled(model)
    start_name = config.model.adapter_path or "the base model"
    with context:
        start = greedy_report(model, tokenizer, config, n, progress, label=f"{config.model.name} + {start_name}",
                              split="eval", seed=0)
    (run_dir / "final_eval_start.json").write_text(json.dumps(start, indent=1) + "\n")
    return final_eval_line(config, run_dir, report, start)


def final_eval_line(config: Config, run_dir: Path, report: dict, start: dict | None = None) -> str:
    """The final evaluation in one line: the trained adapters' figures, or the start's -> the trained ones."""
    n = report["n_games"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.0f}%"  # noqa: E731  (no valid guess after feedback: None)
    if start is None:
        return (f"eval on {n} eval words (greedy): {report['wins']}/{n} won, {pct(report['valid_guess_rate'])} valid, "
                f"{pct(report['consistent_rate'])} consistent, {pct(report['repeat_rate'])} repeated guesses "
                f"({run_dir / 'final_eval.json'})")
    start_name = config.model.adapter_path or "the base model"
    arrow = lambda key: f"{pct(start[key])} -> {pct(report[key])}"  # noqa: E731
    return (f"{n} eval words (greedy), start ({start_name}) -> trained: won {start['wins']} -> {report['wins']}, "
            f"valid {arrow('valid_guess_rate')}, consistent {arrow('consistent_rate')}, "
            f"repeated {arrow('repeat_rate')} ({run_dir / 'final_eval.json'}, final_eval_start.json)")


def finished_line(config: Config, run_dir: Path, run: RunState) -> str:
    """`--resume` of a run that is done: what it saved, without replaying anything."""
    line = (f"{run_dir} is finished ({run.step}/{config.training.steps} steps, {run.cumulative_wins}/"
            f"{run.cumulative_games} training games won); adapters in {run_dir / 'adapters'}")
    try:
        report = json.loads((run_dir / "final_eval.json").read_text())
    except (OSError, ValueError):
        return line + " (no saved final evaluation; to train longer: --resume with --set training.steps=N)"
    try:
        start = json.loads((run_dir / "final_eval_start.json").read_text())
    except (OSError, ValueError):
        start = None
    return line + "\n" + final_eval_line(config, run_dir, report, start)
