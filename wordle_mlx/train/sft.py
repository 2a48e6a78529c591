"""SFT warm-up: LoRA fine-tuning on solver-made traces, loss on the assistant completion only.

Data: data_synth SFT records (`messages` = system + user, `completion` = `<think>..</think>` +
`<guess>..</guess>`), from files or generated at the start of the run (train split only; the
held-out set uses another seed) and saved into the run directory; `sft.max_copies` drops made
examples repeated more often than that (the opening move is one in eight). Each example is tokenised as
the chat prompt (with the assistant opening) followed by the completion and the end-of-turn token;
only completion tokens (the end token included) are in the loss, so the model learns to answer,
not to repeat prompts.

Making examples runs a solver per state (~20 ms each on one core); with `sft.data_chunks` > 1 they are
made in that many chunks (chunk i: n/chunks secrets, seed + CHUNK_SEED_STRIDE * (i + 1)) by a pool of
spawned processes, one per core, so the data depend on the chunk count and not on the machine.

Batches are made by length (sorted, then cut into `batch_size` groups; their order is shuffled
each epoch with the run seed) to waste little padding. Loss = mean token cross-entropy over the
batch's completion tokens. AdamW with warmup and cosine decay, global-norm clipping. Every
`eval_every` steps the held-out loss; checkpoints every `checkpoint_every` steps and on Ctrl-C;
`resume` continues from the checkpoint (the batch order is a function of seed and epoch).

Data parallel under `mlx.launch` (wordle_mlx.train.distributed): step k of n ranks uses the batches at
positions k*n .. k*n + n - 1 of the epoch order, one per rank; each rank's loss is its completion
tokens' NLL sum over (all ranks' tokens / n) and gradients are averaged, i.e. the mean over the
union; rank 0 alone writes metrics, checkpoints and adapters.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from wordle_mlx import jsonl
from wordle_mlx.model import lora, memory
from wordle_mlx.play import rollout
from wordle_mlx.train import checkpoint, grpo, logprobs, runs, synth, trackers
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.config import Config
from wordle_mlx.train.distributed import World, init_world, reduce_metrics


PLAIN_EVERY = 10  # steps between progress lines when the output is not a terminal (as mlx-lm's trainer)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SFTError(RuntimeError):
    """An SFT run that cannot start (one line)."""


def read_records(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise SFTError(f"SFT data file not found: {p} (make one with python -m scripts.data_synth --mode sft)")
    records = []
    n = 0
    try:
        for n, r in jsonl.iter_lines(p):
            r["messages"], r["completion"]  # noqa: B018
            records.append(r)
    except (ValueError, KeyError, TypeError) as err:
        line = err.line if isinstance(err, jsonl.BadLine) else n
        raise SFTError(f"{p} line {line}: expected a data_synth SFT record with messages and completion") from None
    if not records:
        raise SFTError(f"{p} has no records")
    wordlists.check_training_secrets([r["secret"] for r in records if "secret" in r])
    return records


CHUNK_SEED_STRIDE = 100_003  # chunk i of generated SFT data uses seed + stride * (i + 1)


def make_records(config: Config, n: int, seed: int, chunks: int = 1, workers: int | None = None) -> list[dict]:
    """`n` SFT examples from the train split: in one process, or in `chunks` seeded chunks over `workers`
    processes (default: one per CPU core, at most one per chunk)."""
    chunks = min(chunks, n)
    if chunks == 1:
        return _chunk_records(config, n, seed)
    jobs = [(config, n // chunks + (i < n % chunks), seed + CHUNK_SEED_STRIDE * (i + 1)) for i in range(chunks)]
    workers = min(chunks, os.cpu_count() or 1) if workers is None else workers
    if workers <= 1:
        parts = [_chunk_records(*job) for job in jobs]
    else:
        import multiprocessing

        saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
        os.environ.update({k: "1" for k in saved})  # one core per worker (inherited at spawn)
        try:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                parts = pool.starmap(_chunk_records, jobs)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k)
                else:
                    os.environ[k] = v
    return [r for part in parts for r in part]


def _chunk_records(config: Config, n: int, seed: int) -> list[dict]:
    c = config.sft
    if c.think_style == "none" and config.sampling.think:
        raise SFTError("sft.think_style none: also set sampling.think=false (the answer layout evaluation expects)")
    style = c.think_style if config.sampling.think else "none"
    secrets = synth.secrets_for("train", n, seed)
    return list(synth.sft_records(secrets, "train", seed, config.sampling.prompt_format, c.max_turns, c.policy,
                                  style, c.think_max_chars, min_turns=c.min_turns,
                                  rejected_rate=c.rejected_rate, guess_style=config.sampling.guess_style,
                                  repeat_rate=c.repeat_rate, mistake_style=c.mistake_style,
                                  consistent_target_rate=c.consistent_target_rate))


def tokenize(tokenizer, record: dict, max_tokens: int) -> grpo.TrainSequence:
    prompt = rollout.chat_prompt(tokenizer, record["messages"])
    completion = list(tokenizer.encode(record["completion"], add_special_tokens=False))
    end = rollout.turn_end_token(tokenizer)
    seq = grpo.TrainSequence(prompt, completion + [end], 1.0)
    if len(seq.prompt) + len(seq.completion) > max_tokens:
        raise SFTError(f"an example has {len(seq.prompt) + len(seq.completion)} tokens, more than "
                       f"sft.max_seq_tokens={max_tokens}")
    return seq


def length_batches(seqs: list[grpo.TrainSequence], batch_size: int) -> list[list[grpo.TrainSequence]]:
    ordered = sorted(seqs, key=lambda s: len(s.prompt) + len(s.completion))
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def completion_loss(model, tokens: mx.array, mask: mx.array, normalizer: float | None = None) -> mx.array:
    """Reference path: NLL of the completion tokens of padded whole rows (full logits) / normalizer
    (default: their count = mean)."""
    logp = grpo.token_logprobs(model, tokens, 1.0)
    return -(logp * mask).sum() / (mask.sum() if normalizer is None else normalizer)


def token_batch_loss(model, batch: logprobs.TokenBatch, normalizer: float | None = None) -> mx.array:
    """The same loss with the batch's shared prefix run once and logits at completion positions only."""
    logp = logprobs.batch_logprobs(model, batch, 1.0)  # (T,)
    return -logp.sum() / (batch.num_targets if normalizer is None else normalizer)


def batch_loss(model, batches: list, pad_id: int, share_prefix: bool = True) -> float:
    total, count = 0.0, 0.0
    for batch in batches:
        tb = logprobs.make_token_batch(batch, pad_id, share_prefix)
        total += float(token_batch_loss(model, tb, 1.0))
        count += tb.num_targets
    return total / max(count, 1.0)


def prepare_run(config: Config, resume: str | Path | None, world: World | None = None) -> tuple[Config, Path]:
    return runs.prepare_run(config, resume, "sft-", SFTError, world)


def _data(config: Config, run_dir: Path) -> tuple[list[dict], list[dict]]:
    c = config.sft
    train_path, valid_path = run_dir / "sft_train.jsonl", run_dir / "sft_valid.jsonl"
    if c.train_file:
        train = read_records(c.train_file)
    elif train_path.exists():
        train = read_records(train_path)
    else:
        train = make_records(config, c.num_examples, config.training.seed, c.data_chunks)
        if c.max_copies is not None:
            train = synth.cap_copies(train, c.max_copies)
        train_path.write_text("".join(json.dumps(r) + "\n" for r in train))
    if c.valid_file:
        valid = read_records(c.valid_file)
    elif valid_path.exists():
        valid = read_records(valid_path)
    else:
        valid = make_records(config, c.num_valid, config.training.seed + 7919)
        valid_path.write_text("".join(json.dumps(r) + "\n" for r in valid))
    return train, valid


def train(config: Config, resume: str | Path | None = None, console=None) -> Path:
    """Run (or resume) SFT; returns the run directory (adapters in run_dir/adapters).
    Raises runs.Interrupted after saving a checkpoint on Ctrl-C."""
    from rich.console import Console

    console = console or Console(soft_wrap=True)  # to a file: no wrapping at 80 columns
    world = init_world()
    main = world.is_main
    config, run_dir = prepare_run(config, resume, world)
    try:
        return _train(config, run_dir, resume, world, console)
    except runs.Interrupted:
        raise
    except BaseException:
        if resume is None and main:
            runs.discard_if_empty(run_dir)  # a run that never started leaves no directory behind
        raise


def _train(config: Config, run_dir: Path, resume, world: World, console) -> Path:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from wordle_mlx.train.train_rl import _report_trim, load_policy_model

    main = world.is_main
    c = config.sft
    try:
        trackers.require(config.logging.report_to)
    except trackers.TrackerError as err:
        raise SFTError(str(err)) from None
    model, tokenizer = load_policy_model(config)  # first: a model that cannot load fails in a second, not after the data
    records, problem = None, None
    if main:  # rank 0 makes (or reads) the data files; the others read them afterwards
        try:
            with console.status("preparing SFT data ..."):
                records = _data(config, run_dir)
        except (SFTError, ValueError) as err:
            problem = err
    if not world.agree(problem is None):
        raise SFTError(str(problem) if problem else "rank 0 could not prepare the SFT data (see its error)")
    train_records, valid_records = records if main else _data(config, run_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    train_seqs = [tokenize(tokenizer, r, c.max_seq_tokens) for r in train_records]
    def sized_by_memory() -> int:
        arch, free = memory.loaded_model_sizes(model, config.training.memory_limit_gb)
        return memory.auto_sft_batch_size(arch, max(len(s.prompt) + len(s.completion) for s in train_seqs),
                                          max(len(s.completion) for s in train_seqs), free)

    batch_size = memory.resolve_rows(c.batch_size, memory.CPU_SFT_BATCH, sized_by_memory)
    valid_batches = length_batches([tokenize(tokenizer, r, c.max_seq_tokens) for r in valid_records], batch_size)
    batches = length_batches(train_seqs, batch_size)
    optimizer = grpo.make_optimizer(c.learning_rate, c.iters, c.warmup_steps, c.weight_decay)
    state = {"step": 0, "elapsed_s": 0.0}
    if resume is not None:
        if not checkpoint.exists(run_dir):
            raise SFTError(f"--resume: {run_dir} has no complete checkpoint")
        state = checkpoint.load(run_dir, model, optimizer,
                                (lambda msg: console.print(f"[yellow]{msg}[/]")) if main else None)
        if main:
            _report_trim(console, runs.trim_logs(run_dir, state["step"], ("metrics.jsonl",)), state["step"])
    loss_and_grad = nn.value_and_grad(model, token_batch_loss)
    memory.set_limits(config.training.memory_limit_gb)
    tokens_per_example = np.mean([len(s.prompt) + len(s.completion) for s in train_seqs])
    auto = f" (auto on {memory.backend()})" if c.batch_size == "auto" else ""
    if main:
        console.print(f"[bold]SFT[/] {run_dir}  {len(train_seqs)} examples (~{tokens_per_example:.0f} tokens), "
                      f"{len(batches)} batches of {batch_size}{auto}, {c.iters} steps x {world.size} process(es), "
                      f"held-out {len(valid_records)}")
    metrics_file = run_dir / "metrics.jsonl"
    columns = [TextColumn("[bold]sft"), MofNCompleteColumn(), BarColumn(bar_width=16), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn()]
    plain_lines = not console.is_terminal  # a file, nohup, CI: a plain line every PLAIN_EVERY steps, no bar
    try:
        tracker = trackers.open_tracker(config.logging.report_to, run_dir, config.model_dump()) if main else None
    except trackers.TrackerError as err:
        raise SFTError(str(err)) from None
    try:
        with Progress(*columns, console=console, disable=plain_lines or not (config.logging.progress and main)) as bar:
            task = bar.add_task("sft", total=c.iters, completed=state["step"], info="")
            for step in range(state["step"] + 1, c.iters + 1):
                epoch, index = divmod((step - 1) * world.size + world.rank, len(batches))
                order = list(range(len(batches)))
                random.Random(f"{config.training.seed}-sft-epoch-{epoch}").shuffle(order)
                start = time.perf_counter()
                mx.reset_peak_memory()
                batch = logprobs.make_token_batch(batches[order[index]], pad_id, c.shared_prefix)
                normalizer = world.all_sum([float(batch.num_targets)])[0] / world.size if world.size > 1 else None
                loss, grads = loss_and_grad(model, batch, normalizer)
                grads = world.average_gradients(grads)
                grads, grad_norm = optim.clip_grad_norm(grads, c.max_grad_norm)
                optimizer.update(model, grads)
                mx.eval(model.trainable_parameters(), optimizer.state, loss, grad_norm)
                seconds = time.perf_counter() - start
                state["step"] = step
                state["elapsed_s"] += seconds
                lr = optimizer.learning_rate
                metrics = {"step": step, "epoch": epoch, "train_loss": float(loss), "grad_norm": float(grad_norm),
                           "lr": float(lr.item() if hasattr(lr, "item") else lr), "examples": len(batches[order[index]]),
                           "tokens": batch.real_tokens,
                           "completion_tokens": batch.num_targets,
                           "processed_tokens": batch.processed_tokens,
                           "tokens_per_s": batch.real_tokens / seconds, "examples_per_s": len(batches[order[index]]) / seconds,
                           **memory.usage_gb(), "elapsed_s": state["elapsed_s"]}
                metrics = reduce_metrics(metrics, world)
                if world.size > 1:
                    metrics["epoch"], metrics["elapsed_s"] = epoch, state["elapsed_s"]
                if (step % c.eval_every == 0 or step == c.iters) and main:
                    metrics["valid_loss"] = batch_loss(model, valid_batches, pad_id, c.shared_prefix)
                if main:
                    with metrics_file.open("a") as fh:
                        fh.write(json.dumps(metrics) + "\n")
                    if tracker is not None:
                        tracker.log(metrics, step)
                keep = c.keep_adapters_every and step % c.keep_adapters_every == 0
                if (step % c.checkpoint_every == 0 or step == c.iters or keep) and main:
                    checkpoint.save(run_dir, model, optimizer, state)
                    if keep:
                        runs.keep_adapters(run_dir, config, step, state["elapsed_s"])
                info = f"loss {metrics['train_loss']:.3f}"
                if "valid_loss" in metrics:
                    info += f"  valid {metrics['valid_loss']:.3f}"
                bar.update(task, completed=step, info=info)
                if main and plain_lines and (step % PLAIN_EVERY == 0 or step == c.iters):
                    eta = state["elapsed_s"] / step * (c.iters - step)
                    console.print(f"step {step}/{c.iters}  {info}  {metrics['tokens_per_s']:.0f} tok/s  "
                                  f"elapsed {_clock(state['elapsed_s'])}  ETA {_clock(eta)}")
    except KeyboardInterrupt:
        if main:
            checkpoint.save(run_dir, model, optimizer, state)
        raise runs.Interrupted(run_dir, state["step"], f"{runs.python_command()} -m scripts.train_sft --resume {run_dir}") from None
    finally:
        if tracker is not None:
            tracker.finish()
    if main:
        lora.save_adapters(model, run_dir / "adapters")
        console.print(f"done: adapters in {run_dir / 'adapters'} (use as model.adapter_path)")
    return run_dir
