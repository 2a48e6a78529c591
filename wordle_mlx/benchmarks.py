"""Benchmarks (not tests): MLX pattern table vs a straightforward numpy implementation.

The numpy baseline vectorises the same two-pass rule the usual way: greens as a (c, A, 5)
comparison, unmatched copies as a (c, A, 5, 5) comparison summed over the answer's positions,
earlier non-green copies with a strict lower-triangular (5, 5) mask, in chunks of guesses.
Timings are best-of-`repeats` wall clock in one process, so the ratio is what matters on a
shared, noisy machine.
"""

from __future__ import annotations

import time

import numpy as np

import mlx.core as mx

from wordle_mlx.wordle import patterns
from wordle_mlx.config import RewardsConfig
from wordle_mlx.wordle import words as wordlists

_POWERS = np.array([1, 3, 9, 27, 81], dtype=np.uint8)
_EARLIER = np.tri(5, k=-1, dtype=bool)  # [i, j] = j < i


def pattern_codes_numpy(guesses: np.ndarray, answers: np.ndarray, chunk: int = 512) -> np.ndarray:
    """(G, 5) x (A, 5) uint8 letters -> (G, A) uint8 pattern codes, numpy only."""
    out = np.empty((len(guesses), len(answers)), dtype=np.uint8)
    a = answers[None, :, :]  # (1, A, 5)
    for start in range(0, len(guesses), chunk):
        g = guesses[start : start + chunk, None, :]  # (c, 1, 5)
        green = g == a  # (c, A, 5)
        avail = ((g[..., :, None] == a[..., None, :]) & ~green[..., None, :]).sum(-1, dtype=np.uint8)  # (c, A, 5)
        used = ((g[..., :, None] == g[..., None, :]) & _EARLIER & ~green[..., None, :]).sum(-1, dtype=np.uint8)
        yellow = ~green & (avail > used)
        digits = green.astype(np.uint8) * 2 + yellow
        out[start : start + chunk] = (digits * _POWERS).sum(-1, dtype=np.uint8)
    return out


def _best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _devices() -> list[str]:
    return ["cpu", "gpu"] if mx.is_available(mx.gpu) else ["cpu"]


def benchmark_patterns(repeats: int = 2, chunks: tuple[int, ...] = (512, 4096), budget_s: float = 20.0) -> dict:
    """The full 12,972 x 2,315 table and its opener entropies, every variant, on this machine.

    Codes: device (cpu; gpu when there is one) x kernel (eager / mx.compile) x guess chunk, each
    after one warm-up call of its own (mx.compile traces, a GPU JIT-builds), best of `repeats`.
    Counting (the (12,972, 243) partition counts of the whole table, what opener entropies cost):
    numpy bincount, MLX scatter-add on each device, one-hot sums on a GPU; best of at least 2.
    `mlx_s` / `counting_s` are what the package does here by default (`patterns.wordle_device()`);
    `numpy_s` is the plain numpy table; `identical` checks every variant against it. A variant
    whose second call on a slice (after the warm-up) projects to more than `budget_s` for the
    whole is not run ("projected_s" instead of "seconds"): a slow GPU path cannot stall `all`.
    """
    chunks = tuple(dict.fromkeys((patterns.CHUNK, *chunks)))  # the package's own chunk always
    g = patterns.encode_words(wordlists.allowed())
    a = patterns.encode_words(wordlists.answers())
    numpy_s, numpy_table = _best_time(lambda: pattern_codes_numpy(g, a), repeats)
    identical = True
    codes = []
    for device in _devices():
        for kernel in ("eager", "compiled"):
            for chunk in chunks:
                def run(n=len(g)):
                    return np.array(patterns.pattern_codes(g[:n], a, chunk=chunk, compiled=kernel == "compiled",
                                                           device=device))
                entry = {"device": device, "kernel": kernel, "chunk": chunk}
                entry["warmup_s"], _ = _best_time(lambda: run(chunk), 1)
                probe_s, _ = _best_time(lambda: run(chunk), 1)
                if probe_s * len(g) / chunk > budget_s:
                    entry["projected_s"] = probe_s * len(g) / chunk
                else:
                    entry["seconds"], table = _best_time(run, repeats)
                    identical &= bool(np.array_equal(table, numpy_table))
                codes.append(entry)
    counts_ref = None
    counting = []
    for method, device in [("bincount", "cpu")] + [(m, d) for d in _devices() for m in ("scatter", "onehot")
                                                   if not (m == "onehot" and d == "cpu")]:
        def count(rows=len(numpy_table)):
            with mx.stream(mx.cpu if device == "cpu" else mx.gpu):
                return np.array(patterns.partition_counts(numpy_table[:rows], method=method))
        entry = {"method": method, "device": device}
        count(1024)  # warm-up
        probe_s, _ = _best_time(lambda: count(1024), 1)
        if probe_s * len(numpy_table) / 1024 > budget_s:
            entry["projected_s"] = probe_s * len(numpy_table) / 1024
        else:
            entry["seconds"], counts = _best_time(count, max(2, repeats))  # the first full call page-faults its buffers
            counts_ref = counts if counts_ref is None else counts_ref
            identical &= bool(np.array_equal(counts, counts_ref))
        counting.append(entry)
    device = patterns.wordle_device()
    default_kernel = "compiled" if device == "gpu" else "eager"
    default_method = "bincount" if device == "cpu" else "scatter"
    def took(c: dict) -> float:
        return c.get("seconds", c.get("projected_s"))

    mlx_s = next(took(c) for c in codes if (c["device"], c["kernel"], c["chunk"]) == (device, default_kernel, patterns.CHUNK))
    counting_s = next(took(c) for c in counting if (c["method"], c["device"]) == (default_method, device))
    fastest_codes = min(codes, key=took)
    fastest_counting = min(counting, key=took)
    return {
        "shape": list(numpy_table.shape),
        "device": str(mx.default_device()),
        "wordle_device": device,
        "mlx_kernel": f"{default_kernel} on the {device}, chunks of {patterns.CHUNK}" + (", one CPU stream per core" if device == "cpu" else ""),
        "mlx_s": mlx_s,
        "counting_method": f"{default_method} on the {device}",
        "counting_s": counting_s,
        "numpy_s": numpy_s,
        "codes": codes,
        "counting": counting,
        "fastest_codes": fastest_codes,
        "fastest_counting": fastest_counting,
        "identical": identical,
        "speedup": numpy_s / mlx_s,
    }


def measure_compute(repeats: int = 3, tokens: int = 128) -> dict:
    """In this process: float32 1024x1024 matmul GFLOP/s and one forward pass of the default model."""
    from wordle_mlx.model import blas, models

    a = mx.random.normal((1024, 1024))
    b = mx.random.normal((1024, 1024))
    mx.eval(a @ b)
    matmul_s, _ = _best_time(lambda: mx.eval(a @ b), repeats)
    from mlx_lm import stream_generate

    model, tokenizer = models.load_model(models.DEFAULT_MODEL)
    x = mx.array([[i % 1000 + 100 for i in range(tokens)]])
    mx.eval(model(x))
    forward_s, _ = _best_time(lambda: mx.eval(model(x)), repeats)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Name three animals that live in the sea."}],
                                           add_generation_prompt=True)
    last = None
    for last in stream_generate(model, tokenizer, prompt, max_tokens=48):
        pass
    return {"blas": blas.describe(), "matmul_s": matmul_s, "matmul_gflops": 2 * 1024**3 / matmul_s / 1e9,
            "forward_s": forward_s, "forward_tokens": tokens,
            "prompt_tps": last.prompt_tps, "generation_tps": last.generation_tps, "generated": last.generation_tokens}


def benchmark_blas(repeats: int = 3) -> dict:
    """Run `measure_compute` in two subprocesses, with and without OpenBLAS; return both and ratios."""
    import json
    import os
    import subprocess
    import sys

    results = {}
    for label, value in (("openblas", None), ("bundled", "0")):
        env = dict(os.environ)
        env.pop("WORDLE_MLX_BLAS", None)
        if value is not None:
            env["WORDLE_MLX_BLAS"] = value
        code = ("import json, wordle_mlx; from wordle_mlx.benchmarks import measure_compute; "
                f"print('RESULT' + json.dumps(measure_compute({repeats})))")
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"benchmark subprocess ({label}) failed: {proc.stderr.strip().splitlines()[-1:]}")
        results[label] = json.loads(line[len("RESULT"):])
    results["matmul_speedup"] = results["bundled"]["matmul_s"] / results["openblas"]["matmul_s"]
    results["forward_speedup"] = results["bundled"]["forward_s"] / results["openblas"]["forward_s"]
    results["generation_speedup"] = results["openblas"]["generation_tps"] / results["bundled"]["generation_tps"]
    return results


def benchmark_rewards(groups: int = 16, generations: int = 8, seed: int = 0) -> dict:
    """Time `rewards.score_group` on realistic groups: states from data_synth, completions of solver words."""
    import random

    from wordle_mlx.train import rewards, synth
    from wordle_mlx.play.prompts import format_completion

    rng = random.Random(seed)
    sampler = synth.StateSampler(seed)
    states = [sampler.sample(s) for s in synth.secrets_for("train", groups, seed)]
    allowed = wordlists.allowed()
    batches = [[format_completion("x", rng.choice(allowed)) for _ in range(generations)] for _ in states]
    patterns.load_pattern_table()
    rewards.score_group(batches[0], states[0])  # warm-up
    start = time.perf_counter()
    for state, batch in zip(states, batches):
        rewards.score_group(batch, state)
    seconds = time.perf_counter() - start
    return {"groups": groups, "generations": generations, "seconds": seconds,
            "ms_per_group": 1e3 * seconds / groups, "us_per_completion": 1e6 * seconds / (groups * generations)}


def benchmark_rollout(games: int = 4, generations: int = 8, max_tokens: int = 64, baseline_samples: int = 8,
                      seed: int = 0) -> dict:
    """Trainer rollout (prefill once, fork caches, one wide BatchGenerator) vs one `mlx_lm.generate` per sample.

    Both sample at temperature 1 from the default model on the same prompts (game states made by
    data_synth). The baseline runs `baseline_samples` calls (its rate does not depend on how many).
    """
    from mlx_lm import generate
    from mlx_lm.sample_utils import make_sampler

    from wordle_mlx.model import models
    from wordle_mlx.play import prompts, rollout
    from wordle_mlx.train import synth

    model, tokenizer = models.load_model(models.DEFAULT_MODEL)
    sampler_states = synth.StateSampler(seed)
    states = [sampler_states.sample(s) for s in synth.secrets_for("train", games, seed)]
    prompt_ids = [rollout.chat_prompt(tokenizer, prompts.build_messages(s.turns)) for s in states]
    mx.random.seed(seed)
    rollout.sample_groups(model, tokenizer, prompt_ids[:1], 2, 1.0, 4)  # warm-up
    stats = rollout.RolloutStats()
    start = time.perf_counter()
    rollout.sample_groups(model, tokenizer, prompt_ids, generations, 1.0, max_tokens, stats=stats)
    ours_s = time.perf_counter() - start
    sampler = make_sampler(temp=1.0)
    base_tokens = 0
    start = time.perf_counter()
    for k in range(baseline_samples):
        text = generate(model, tokenizer, prompt_ids[k % games], max_tokens=max_tokens, sampler=sampler)
        base_tokens += len(tokenizer.encode(text)) + 1
    base_s = time.perf_counter() - start
    ours_tps = stats.generated_tokens / ours_s
    base_tps = base_tokens / base_s
    return {"rows": games * generations, "ours_tokens": stats.generated_tokens, "ours_s": ours_s, "ours_tps": ours_tps,
            "prefill_s": stats.prefill_s, "decode_s": stats.decode_s, "baseline_calls": baseline_samples,
            "baseline_tokens": base_tokens, "baseline_s": base_s, "baseline_tps": base_tps, "speedup": ours_tps / base_tps}


def benchmark_train_step(config_path: str = "config/quickstart.json", overrides: tuple[str, ...] = ()) -> dict:
    """Run one real GRPO step with `config_path` in a temporary run directory; return its metrics line.

    A config whose `model.adapter_path` does not exist yet (e.g. the quickstart's, made by the SFT
    quickstart) runs from the base model instead; the returned line says so under `note`.
    """
    import json
    import tempfile
    from pathlib import Path

    from rich.console import Console

    from wordle_mlx.train import train_rl
    from wordle_mlx.config import load_config

    sets = [*overrides, "training.steps=1", "logging.progress=false", "training.eval_every=0",
            "training.final_eval_games=0"]
    note = None
    adapter = load_config(config_path, sets).model.adapter_path
    if adapter and not Path(adapter).exists():
        note = (f"{adapter} does not exist yet (python -m scripts.train_sft makes it); "
                "this step starts from the base model")
        sets.append("model.adapter_path=null")
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(config_path, [f"logging.logs_dir={tmp}", "logging.run_name=bench", *sets])
        run_dir = train_rl.train(config, console=Console(quiet=True))
        metrics = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
    metrics["note"] = note
    return metrics


def benchmark_distributed(config: str, steps: int = 2, games: int = 2, overrides: tuple[str, ...] = ()) -> dict:
    """The same GRPO work (2 x `games` games per step, `steps` steps) in one process and in two
    processes under `mlx.launch --backend ring -n 2` on this machine, each in a fresh subprocess.

    Returns per setting: wall seconds, mean step seconds, steps/s, generated tokens/s (summed over
    ranks) and games/s, read from the runs' metrics.jsonl.
    """
    import json
    import socket
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    launch = Path(sys.executable).parent / "mlx.launch"
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, n in (("1 process", 1), ("2 processes", 2)):
            sets = [f"training.steps={steps}", f"training.games_per_step={games * 2 // n}", f"logging.logs_dir={tmp}",
                    f"logging.run_name=bench-{n}", "logging.progress=false", "training.eval_every=0", *overrides]
            cmd = [sys.executable, "-m", "scripts.train_rl", "--config", config]
            for s in sets:
                cmd += ["--set", s]
            if n > 1:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    port = sock.getsockname()[1]
                cmd = [str(launch), "--backend", "ring", "-n", str(n), "--starting-port", str(port), "--"] + cmd
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                raise RuntimeError(f"{label} run failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
            lines = [json.loads(l) for l in (Path(tmp) / f"bench-{n}" / "metrics.jsonl").read_text().splitlines()]
            step_s = float(np.mean([m["step_s"] for m in lines]))
            out[label] = {"wall_s": wall, "step_s": step_s, "steps_per_s": 1.0 / step_s,
                          "generation_tps": float(np.mean([m["generation_tps"] for m in lines])),
                          "generated_tokens": int(sum(m["generated_tokens"] for m in lines)),
                          "games": int(sum(m["games"] for m in lines)), "games_per_s": games * 2 / step_s,
                          "world_size": n}
    return out


def _lora_default_model(seed: int, num_layers: int = -1):
    """The default model with fresh LoRA adapters (rank 16, alpha 32, all targets; the configs' LoRA)."""
    from wordle_mlx.model import lora, models

    model, tokenizer = models.load_model(models.DEFAULT_MODEL)
    mx.random.seed(seed)
    lora.apply_lora(model, lora.LoraSettings(rank=16, alpha=32, num_layers=num_layers))
    return model, tokenizer


def _measured(fn) -> tuple[float, float, object]:
    """(seconds, peak GiB above what was held before, result) of fn() with a clean buffer cache."""
    mx.synchronize()
    mx.clear_cache()
    mx.reset_peak_memory()
    base = mx.get_active_memory()
    start = time.perf_counter()
    result = fn()
    mx.synchronize()
    return time.perf_counter() - start, (mx.get_peak_memory() - base) / 2**30, result


def benchmark_update(games: int = 4, generations: int = 8, max_tokens: int = 64, prompt_format: str = "compact",
                     loss_batch_size: int | str = 8, seed: int = 0) -> dict:
    """The GRPO update on the same sequences by three paths: the reference (every completion re-runs
    its whole prompt, full-vocabulary logits everywhere), one group per chunk (each group's prompt
    once per chunk, completion positions only) and the default, groups packed into chunks (the
    prefix all prompts share once per chunk, each group's own prompt part once).

    Sequences: `games` game states (data_synth's sampler) in `prompt_format`, `generations`
    completions each sampled at temperature 1 by the default model with fresh LoRA adapters, random
    non-zero advantages (every sequence is trained: the worst case). Every path starts from the same
    adapters with a fresh AdamW (lr 1e-5) after a warm-up on two sequences. `loss_batch_size`
    "auto" sizes the chunks by memory (wordle_mlx.model.memory.auto_loss_batch_size).
    """
    from mlx.utils import tree_flatten, tree_unflatten

    from wordle_mlx.model import memory
    from wordle_mlx.play import prompts, rollout
    from wordle_mlx.train import grpo, synth

    model, tokenizer = _lora_default_model(seed)
    sampler = synth.StateSampler(seed)
    states = [sampler.sample(s) for s in synth.secrets_for("train", games, seed)]
    prompt_ids = [rollout.chat_prompt(tokenizer, prompts.build_messages(s.turns, prompt_format)) for s in states]
    mx.random.seed(seed)
    groups = rollout.sample_groups(model, tokenizer, prompt_ids, generations, 1.0, max_tokens)
    rng = np.random.default_rng(seed)
    seqs = [grpo.TrainSequence(p, c.tokens, float(rng.normal())) for p, g in zip(prompt_ids, groups) for c in g]
    if loss_batch_size == "auto":
        def sized_by_memory() -> int:
            arch, free = memory.loaded_model_sizes(model)
            return memory.auto_loss_batch_size(arch, max(len(p) for p in prompt_ids),
                                               max(len(s.completion) for s in seqs), generations, free)

        loss_batch_size = memory.resolve_rows("auto", memory.CPU_LOSS_BATCH, sized_by_memory)
    saved = tree_flatten(model.trainable_parameters())
    out = {"games": games, "generations": generations, "sequences": len(seqs), "prompt_format": prompt_format,
           "mean_prompt_tokens": float(np.mean([len(p) for p in prompt_ids])),
           "mean_completion_tokens": float(np.mean([len(s.completion) for s in seqs])),
           "loss_batch_size": loss_batch_size, "device": _device_name()}
    finals = {}
    real = sum(len(s.prompt) + len(s.completion) for s in seqs)
    variants = (("old", dict(shared_prompt=False)), ("one_group", dict(pack_groups=False)), ("new", {}))
    for label, kwargs in variants:
        settings = grpo.UpdateSettings(loss_batch_size=loss_batch_size, **kwargs)
        model.update(tree_unflatten(saved))
        grpo.update(model, grpo.make_optimizer(1e-5, 10, 0, 0.0), seqs[:2], settings)  # warm-up
        model.update(tree_unflatten(saved))
        optimizer = grpo.make_optimizer(1e-5, 10, 0, 0.0)
        seconds, peak, stats = _measured(lambda: grpo.update(model, optimizer, seqs, settings))
        finals[label] = {k: np.array(v) for k, v in tree_flatten(model.trainable_parameters())}
        out[label] = {"seconds": seconds, "peak_memory_gb": peak, "loss": stats.loss, "chunks": stats.chunks,
                      "groups_per_chunk": stats.groups_per_chunk, "forward_passes": stats.forward_passes,
                      "trained_tokens": stats.tokens, "processed_tokens": stats.processed_tokens,
                      "training_tps": stats.tokens / seconds, "sequence_tps": real / seconds}
    out["max_adapter_difference"] = max(float(np.abs(finals["old"][k] - finals[v][k]).max())
                                        for v in ("one_group", "new") for k in finals["old"])
    out["speedup"] = out["old"]["seconds"] / out["new"]["seconds"]
    out["speedup_one_group"] = out["old"]["seconds"] / out["one_group"]["seconds"]
    return out


def _device_name() -> str:
    return "gpu" if mx.default_device() == mx.gpu else "cpu"


def benchmark_sft(examples: int = 64, batch_size: int | str = 16, prompt_format: str = "compact", policy: str = "frequent",
                  think_style: str = "none", depth_layers: tuple[int, ...] = (8, 2), seed: int = 0) -> dict:
    """SFT on the same examples in the same order: the reference loss (whole padded rows,
    full-vocabulary logits everywhere), completion-only logits, and completion-only logits with
    each batch's common prefix (chat template + system prompt) run once (the default).

    Then partial depth: one pass over the same batches with LoRA on the top k layers only, as
    forward + backward + AdamW and as forward only; when the backward stops at the first adapted
    layer, the step minus the forward shrinks with k. `batch_size` "auto": sized by memory for this
    device and the longest example (wordle_mlx.model.memory.auto_sft_batch_size).
    """
    from mlx.utils import tree_flatten, tree_unflatten

    import mlx.nn as nn

    from wordle_mlx.train import grpo, logprobs, sft, synth

    model, tokenizer = _lora_default_model(seed)
    secrets = synth.secrets_for("train", examples, seed)
    records = list(synth.sft_records(secrets, "train", seed, prompt_format, 4, policy, think_style, 120,
                                     rejected_rate=0.2))
    seqs = [sft.tokenize(tokenizer, r, 1024) for r in records]
    if batch_size == "auto":
        from wordle_mlx.model import memory

        def sized_by_memory() -> int:
            arch, free = memory.loaded_model_sizes(model)
            return memory.auto_sft_batch_size(arch, max(len(s.prompt) + len(s.completion) for s in seqs),
                                              max(len(s.completion) for s in seqs), free)

        batch_size = memory.resolve_rows("auto", memory.CPU_SFT_BATCH, sized_by_memory)
    batches = sft.length_batches(seqs, batch_size)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    saved = tree_flatten(model.trainable_parameters())
    real = sum(len(s.prompt) + len(s.completion) for s in seqs)
    out = {"examples": len(seqs), "batch_size": batch_size, "steps": len(batches), "prompt_format": prompt_format,
           "device": _device_name(),
           "policy": policy, "think_style": think_style, "tokens": real,
           "mean_prompt_tokens": float(np.mean([len(s.prompt) for s in seqs])),
           "mean_completion_tokens": float(np.mean([len(s.completion) for s in seqs])),
           "shared_prefix_tokens": [logprobs.common_prefix_len(b) for b in batches]}

    variants = {
        "old": (sft.completion_loss, lambda b: grpo.make_batch(b, pad_id)[:2]),
        "completion_only": (sft.token_batch_loss, lambda b: (logprobs.make_token_batch(b, pad_id, False),)),
        "new": (sft.token_batch_loss, lambda b: (logprobs.make_token_batch(b, pad_id, True),)),
    }

    def run(loss_fn, make) -> list[float]:
        optimizer = grpo.make_optimizer(2e-4, len(batches), 0, 0.0)
        step = nn.value_and_grad(model, loss_fn)
        losses = []
        for batch in batches:
            loss, grads = step(model, *make(batch))
            optimizer.update(model, grads)
            mx.eval(model.trainable_parameters(), optimizer.state, loss)
            losses.append(float(loss))
        return losses

    for label, (loss_fn, make) in variants.items():
        model.update(tree_unflatten(saved))
        run(loss_fn, make)  # warm-up pass (not timed), then the same pass from the same start
        model.update(tree_unflatten(saved))
        seconds, peak, losses = _measured(lambda: run(loss_fn, make))
        out[label] = {"seconds": seconds, "peak_memory_gb": peak, "losses": losses, "mean_loss": float(np.mean(losses)),
                      "examples_per_min": 60 * len(seqs) / seconds, "tokens_per_s": real / seconds}
    out["max_loss_difference"] = max(abs(a - b) for a, b in zip(out["old"]["losses"], out["new"]["losses"]))
    out["speedup"] = out["old"]["seconds"] / out["new"]["seconds"]

    depth = {}
    token_batches = [logprobs.make_token_batch(b, pad_id, True) for b in batches]
    layers = len(model.layers)
    for k in (layers, *depth_layers):
        m, _ = _lora_default_model(seed, num_layers=k)
        step = nn.value_and_grad(m, sft.token_batch_loss)
        optimizer = grpo.make_optimizer(2e-4, len(batches), 0, 0.0)

        def train_pass():
            for tb in token_batches:
                loss, grads = step(m, tb)
                optimizer.update(m, grads)
                mx.eval(m.trainable_parameters(), optimizer.state, loss)

        def forward_pass():
            for tb in token_batches:
                mx.eval(sft.token_batch_loss(m, tb))

        train_pass()  # warm-up
        train_s, _, _ = _measured(train_pass)
        forward_s, _, _ = _measured(forward_pass)
        depth[str(k)] = {"train_s": train_s, "forward_s": forward_s, "backward_and_update_s": train_s - forward_s}
    out["depth"] = depth
    return out


def benchmark_group_signal(adapter: str | None, temperatures: tuple[float, ...] = (0.7, 1.0, 1.3),
                           generations: tuple[int, ...] = (8,), states: int = 32, prompt_format: str | None = None,
                           max_tokens: int = 16, seed: int = 0, stuck_from: str | None = None,
                           rewards_config: RewardsConfig | None = None) -> dict:
    """How often a GRPO group can teach consistency: for each temperature and group size, the share
    of groups (train-split states with 0-4 earlier turns, as training makes them) that contain at
    least one valid sample fitting all feedback, the share of zero-variance groups (rewards with
    the ordering), and the valid / fitting / repeated sample rates. `stuck_from`: an evaluation
    report instead; the states are those where its model wrote an answer already rejected
    (`evaluate.stuck_states`, the first `states` of them), prompts listing the rejected answers.
    `rewards_config` (a RewardsConfig; default the default one) scores the groups, with each state's
    rejected answers, so zero-variance groups are counted under the reward a run would use."""
    from wordle_mlx.model import lora, models
    from wordle_mlx.play import prompts, rollout
    from wordle_mlx.train import grpo, rewards, synth
    from wordle_mlx.play.policy import run_answer_settings

    trained = run_answer_settings(adapter) if adapter else {}
    prompt_format = prompt_format or trained.get("prompt_format", "compact")
    think = trained.get("think", True)
    if think:
        max_tokens = max(max_tokens, 64)
    model, tokenizer = models.load_model(models.DEFAULT_MODEL)
    if adapter:
        lora.load_adapters(model, adapter)
    if stuck_from:
        import json
        from pathlib import Path

        from wordle_mlx.play.evaluate import stuck_states
        from wordle_mlx.wordle.game import GameState

        stuck = stuck_states(json.loads(Path(stuck_from).read_text()))[:states]
        game_states = [GameState(secret, tuple(turns)) for secret, turns, _ in stuck]
        rejected = [r for _, _, r in stuck]
    else:
        sampler = synth.StateSampler(seed)
        game_states = [sampler.sample(s) for s in synth.secrets_for("train", states, seed + 1)]
        rejected = [[] for _ in game_states]
    prompt_ids = [rollout.chat_prompt(tokenizer, prompts.build_messages(s.turns, prompt_format, rejected=r))
                  for s, r in zip(game_states, rejected)]
    states = len(game_states)
    out = {"adapter": adapter, "states": states, "prompt_format": prompt_format, "stuck_from": stuck_from,
           "rewards": (rewards_config or RewardsConfig()).model_dump(exclude={"weights", "format_weights"}),
           "runs": []}
    for n in generations:
        for temp in temperatures:
            mx.random.seed(seed)
            start = time.perf_counter()
            groups = rollout.sample_groups(model, tokenizer, prompt_ids, n, temp, max_tokens)
            seconds = time.perf_counter() - start
            scored = [rewards.score_group([c.text for c in g], s, config=rewards_config, think=think, rejected=r)
                      for g, s, r in zip(groups, game_states, rejected)]
            flat = [b for g in scored for b in g]
            out["runs"].append({
                "generations": n, "temperature": temp, "seconds": seconds,
                "groups_with_consistent": float(np.mean([any(b.consistent for b in g) for g in scored])),
                "zero_variance_groups": float(np.mean([grpo.group_advantages([b.total for b in g])[1] for g in scored])),
                "valid_rate": float(np.mean([b.valid for b in flat])),
                "consistent_rate": float(np.mean([b.consistent for b in flat])),
                "repeat_rate": float(np.mean([b.repeated for b in flat])),
                "distinct_guesses_per_group": float(np.mean([len({b.parsed.guess for b in g if b.valid}) for g in scored])),
                "groups_with_valid": float(np.mean([any(b.valid for b in g) for g in scored])),
                "rejected_again_rate": float(np.mean([b.rejected_again for b in flat])),
            })
    return out


ALL = ("patterns", "rewards", "compute", "rollout", "train_step", "update", "sft")


def benchmark_all(only: tuple[str, ...] = ALL, on_start=None) -> dict:
    """Every benchmark in one process, one after the other, for one JSON file (`scripts.benchmark all`).

    Each entry holds its figures and wall-clock seconds, or the error it raised (the others still run).
    `compute` measures in this process (matmul, forward, generation), not the OpenBLAS vs bundled
    pair (`scripts.benchmark matmul`); `train_step` is one GRPO step of config/quickstart.json.
    `on_start(name)` is called before each one (progress). On a GPU, `update` is 16 games x 16 samples
    of 16 tokens with auto-sized chunks, `sft` uses the auto batch and `train_step` plays 16 games x
    16 samples (the sizes a GPU is for); on the CPU their defaults.
    """
    import platform
    import traceback

    import mlx_lm

    gpu = _device_name() == "gpu"
    update = (lambda: benchmark_update(16, 16, 16, loss_batch_size="auto")) if gpu else benchmark_update
    sft = (lambda: benchmark_sft(examples=512, batch_size="auto")) if gpu else benchmark_sft
    step = (lambda: benchmark_train_step(overrides=("training.games_per_step=16", "sampling.num_generations=16"))) \
        if gpu else benchmark_train_step
    runs = {"patterns": lambda: benchmark_patterns(1), "rewards": benchmark_rewards, "compute": measure_compute,
            "rollout": benchmark_rollout, "train_step": step, "update": update, "sft": sft}
    unknown = [n for n in only if n not in runs]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; expected some of {list(runs)}")
    out = {"device": str(mx.default_device()), "platform": f"{platform.system()} {platform.machine()}",
           "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__, "benchmarks": {}}
    start_all = time.perf_counter()
    for name in only:
        if on_start:
            on_start(name)
        start = time.perf_counter()
        try:
            entry = {"figures": runs[name]()}
        except Exception as err:  # one broken benchmark must not lose the others' figures
            entry = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
        entry["seconds"] = time.perf_counter() - start
        out["benchmarks"][name] = entry
    out["seconds"] = time.perf_counter() - start_all
    return out


def summary_line(name: str, entry: dict) -> str:
    """One line per benchmark of `benchmark_all`: its headline figure and time."""
    if "error" in entry:
        return f"{name:10s} FAILED after {entry['seconds']:.1f} s: {entry['error']}"
    f = entry["figures"]
    head = {
        "patterns": lambda: f"table {f['mlx_s']:.2f} s ({f['mlx_kernel']}), counts {f['counting_s']:.2f} s "
                            f"({f['counting_method']}), numpy table {f['numpy_s']:.2f} s, identical {f['identical']}",
        "rewards": lambda: f"{f['ms_per_group']:.1f} ms per group of {f['generations']}",
        "compute": lambda: f"matmul 1024^2 f32 {f['matmul_gflops']:.1f} GFLOP/s, decode {f['generation_tps']:.1f} tok/s",
        "rollout": lambda: f"{f['ours_tps']:.1f} generated tok/s batched vs {f['baseline_tps']:.1f} one by one",
        "train_step": lambda: f"one GRPO step of {f['games']} games {f['step_s']:.1f} s: prefill "
                              f"{f['time_prefill_s']:.1f}, decode {f['time_decode_s']:.1f}, update "
                              f"{f['time_logprob_s'] + f['time_backward_s'] + f['time_optimizer_s']:.1f} s, "
                              f"peak {f['peak_memory_gb']:.2f} GiB",
        "update": lambda: f"{f['new']['training_tps']:.1f} training tok/s packed, {f['one_group']['training_tps']:.1f} "
                          f"one group per chunk, {f['old']['training_tps']:.1f} reference (chunks of "
                          f"{f['loss_batch_size']}: {f['new']['groups_per_chunk']:.1f} groups, "
                          f"{f['new']['forward_passes']} forward passes), peak {f['new']['peak_memory_gb']:.2f} GiB",
        "sft": lambda: f"{f['new']['tokens_per_s']:.1f} tok/s at batch {f['batch_size']}, "
                       f"{f['new']['examples_per_min']:.1f} examples/min, peak {f['new']['peak_memory_gb']:.2f} GiB",
    }[name]
    return f"{name:10s} {head()}  ({entry['seconds']:.1f} s)"
