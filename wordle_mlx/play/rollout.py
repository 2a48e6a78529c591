"""Batched group sampling: every game's prompt is prefilled once and its KV cache forked N times.

One GRPO turn samples N completions for each of G games. Each game's prompt (all tokens but
the last) goes through the model once into a fresh KV cache; that cache is forked into N rows
(the forks share the prefilled keys/values until mlx-lm merges them into one batch cache), and
all G x N rows are decoded together by a single `mlx_lm.generate.BatchGenerator`, whose batch
is as wide as the work (no re-prefill per sample, no waiting for a narrow batch to drain).

The completion keeps the stop token when generation ended on one (it counts in the loss) and the
text is decoded without it. Sampling uses mlx-lm's sampler (temperature, top-p) and MLX's global
RNG: call `mx.random.seed` before sampling for reproducible rollouts.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field
from typing import Callable, Sequence

import mlx.core as mx
from mlx_lm.generate import BatchGenerator
from mlx_lm.models.cache import KVCache, RotatingKVCache, make_prompt_cache
from mlx_lm.sample_utils import make_sampler


@dataclass
class Completion:
    """One sampled completion: token ids (with the stop token if any), text, why it ended."""

    tokens: list[int]
    text: str
    finish_reason: str
    logprobs: list[float] = field(default_factory=list)  # per token, untempered, as seen while sampling


@dataclass
class RolloutStats:
    prefill_s: float = 0.0
    decode_s: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    rows: int = 0

    @property
    def generation_tps(self) -> float:
        return self.generated_tokens / self.decode_s if self.decode_s > 0 else 0.0


def prefill(model, prompt: Sequence[int]) -> list:
    """KV cache holding all prompt tokens but the last (which starts decoding)."""
    cache = make_prompt_cache(model)
    if len(prompt) > 1:
        model(mx.array([list(prompt[:-1])]), cache=cache)
        mx.eval([c.state for c in cache])
    return cache


def fork(cache: list) -> list:
    """A copy of a single-row KV cache that later updates cannot alias (plain layers, and the
    rotating sliding-window layers of Gemma-style models)."""
    forked = []
    for layer in cache:
        if isinstance(layer, RotatingKVCache):
            new = RotatingKVCache(max_size=layer.max_size, keep=layer.keep)
            if layer.keys is not None:  # slices are new arrays: in-place writes to one copy never reach another
                size = layer.keys.shape[2]
                new.keys, new.values = layer.keys[..., :size, :], layer.values[..., :size, :]
                new.offset, new._idx = layer.offset, layer._idx
        elif isinstance(layer, KVCache):
            new = KVCache()
            if layer.keys is not None:
                new.keys = layer.keys[..., : layer.offset, :]
                new.values = layer.values[..., : layer.offset, :]
                new.offset = layer.offset
        else:
            raise TypeError(f"cannot fork a {type(layer).__name__}: only KVCache and RotatingKVCache layers are supported")
        forked.append(new)
    return forked


def stop_tokens(tokenizer) -> list[list[int]]:
    return [[t] for t in sorted(tokenizer.eos_token_ids)]


def sample_groups(model, tokenizer, prompts: Sequence[Sequence[int]], n: int, temperature: float | Sequence[float],
                  max_tokens: int, top_p: float = 1.0, stats: RolloutStats | None = None,
                  logits_processors: list | None = None,
                  on_progress: Callable[[float], None] | None = None,
                  prompt_processors: Sequence[list | None] | None = None) -> list[list[Completion]]:
    """N completions for each prompt, all rows decoded in one batch. Returns [prompt][sample].

    `temperature` 0 means greedy; a sequence gives each prompt its own (one sampler per distinct
    value, still one batch). `logits_processors` (mlx-lm's `(tokens, logits) -> logits`) apply
    to every row, `prompt_processors` (one list or None per prompt) to that prompt's rows (a
    legal-move mask per game); the recorded log-probs are then those of the processed logits. `on_progress(f)`
    is told the fraction done (0..1: prefills are the first 30%, decode steps out of `max_tokens`
    the rest) after every prefill and decode step, so a progress bar can move within one batch.
    """
    stats = stats if stats is not None else RolloutStats()
    if not prompts:
        return []
    rows = len(prompts) * n
    temps = [float(temperature)] * len(prompts) if isinstance(temperature, (int, float)) else list(temperature)
    if len(temps) != len(prompts):
        raise ValueError(f"sample_groups: {len(temps)} temperatures for {len(prompts)} prompts")
    if prompt_processors is not None and len(prompt_processors) != len(prompts):
        raise ValueError(f"sample_groups: {len(prompt_processors)} processor lists for {len(prompts)} prompts")
    samplers = {t: make_sampler(temp=t, top_p=top_p if 0 < top_p < 1 else 0.0) for t in dict.fromkeys(temps)}
    generator = BatchGenerator(model, max_tokens=max_tokens, stop_tokens=stop_tokens(tokenizer),
                               sampler=samplers[temps[0]], completion_batch_size=rows, prefill_batch_size=rows)
    owner: dict[int, tuple[int, int]] = {}
    try:
        start = time.perf_counter()
        for g, prompt in enumerate(prompts):
            cache = prefill(model, prompt)
            uids = generator.insert([[prompt[-1]]] * n, caches=[fork(cache) for _ in range(n)],
                                    all_tokens=[list(prompt[:-1]) for _ in range(n)],
                                    samplers=None if len(samplers) == 1 else [samplers[temps[g]]] * n,
                                    logits_processors=_row_processors(logits_processors, prompt_processors, g, n))
            owner.update({uid: (g, i) for i, uid in enumerate(uids)})
            stats.prompt_tokens += len(prompt)
            if on_progress is not None:
                on_progress(0.3 * (g + 1) / len(prompts))
        stats.prefill_s += time.perf_counter() - start

        start = time.perf_counter()
        tokens: dict[int, list[int]] = {uid: [] for uid in owner}
        picked: dict[int, list[float]] = {uid: [] for uid in owner}
        finish: dict[int, str] = {}
        decode_steps = 0
        while len(finish) < rows:
            for r in generator.next_generated():
                tokens[r.uid].append(r.token)
                # a Python float: a slice of r.logprobs would keep the step's (rows, vocab) buffer alive
                picked[r.uid].append(r.logprobs[r.token].item())
                if r.finish_reason is not None:
                    finish[r.uid] = r.finish_reason
            decode_steps += 1
            if on_progress is not None:
                on_progress(1.0 if len(finish) == rows else 0.3 + 0.7 * min(decode_steps / max(max_tokens, 1), 1.0))
        stats.decode_s += time.perf_counter() - start
    finally:
        generator.close()
    stops = {t for (t,) in stop_tokens(tokenizer)}
    out: list[list[Completion]] = [[None] * n for _ in prompts]  # type: ignore[list-item]
    for uid, (g, i) in owner.items():
        toks = tokens[uid]
        text_tokens = toks[:-1] if (finish[uid] == "stop" and toks and toks[-1] in stops) else toks
        out[g][i] = Completion(toks, tokenizer.decode(text_tokens), finish[uid], picked[uid])
        stats.generated_tokens += len(toks)
    stats.rows += rows
    return out


def _row_processors(shared: list | None, per_prompt: Sequence[list | None] | None, g: int, n: int) -> list | None:
    """The logits processors of prompt g's n rows: the shared ones, then that prompt's own."""
    mine = list(shared or []) + list((per_prompt[g] or []) if per_prompt is not None else [])
    return [list(mine) for _ in range(n)] if mine else None


def chat_prompt(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat prompt ending with the assistant turn's opening."""
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True))


def turn_end_token(tokenizer) -> int:
    """The stop token the chat template writes after an assistant message (SmolLM2: <|im_end|>,
    Gemma: <end_of_turn>): what an SFT target ends with. Falls back to the lowest stop token."""
    try:
        return _TURN_END[tokenizer]
    except (KeyError, TypeError):
        pass
    marker = "xq7 marker"
    ids = list(tokenizer.apply_chat_template([{"role": "user", "content": "a"},
                                              {"role": "assistant", "content": marker}]))
    stops = set(tokenizer.eos_token_ids)
    tail = [t for t in ids[len(chat_prompt(tokenizer, [{"role": "user", "content": "a"}])):] if t in stops]
    end = tail[0] if tail else sorted(stops)[0]
    try:
        _TURN_END[tokenizer] = end
    except TypeError:  # not weakly referenceable: no cache
        pass
    return end


_TURN_END: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # a template render per SFT example is slow
