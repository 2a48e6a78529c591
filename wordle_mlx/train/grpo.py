"""GRPO pieces: group advantages, teacher-forced token log-probs, the clipped policy loss, one update.

Algorithm (per step, over every group sampled while playing the step's games):
* advantage of completion i in its group: (r_i - mean(r)) / (std(r) + eps), or r_i - mean(r) with
  `scale_rewards=False`. A group whose rewards are all equal has zero advantage everywhere and
  contributes nothing: it is counted (and, with beta = 0, left out of the forward/backward).
* log-probs are recomputed teacher-forced on the exact prompt + completion token ids (never from
  re-tokenised text), from logits divided by the sampling temperature; only completion positions
  count, and the stop token is one of them. The default (shared-prompt) path packs whole groups
  into chunks of up to `loss_batch_size` rows; in each chunk the prefix all its prompts share
  (system prompt, chat template) runs once, each group's own prompt part once, with gradients,
  and logits are computed only at completion positions (wordle_mlx.train.logprobs). With
  `pack_groups=False` a chunk holds one group's completions (the earlier layout). The reference
  path (`shared_prompt=False`) runs every row's whole prompt + completion with full logits and a
  mask. All give the same loss and gradients (tests), the shared paths with far less work.
* under a legal-move mask (`sampling.mask`) the samples came from the masked distribution, so the
  loss scores that one: at each completion token the logits outside the ids the mask allowed there
  (`TrainSequence.allowed`) are -inf before the softmax (shared-prompt path only).
* token-level clipped objective (DAPO-style normalisation over all completion tokens of the step):
    ratio = exp(logp - logp_old),  loss_t = -min(ratio * A, clip(ratio, 1 - eps, 1 + eps_high) * A)
            + beta * (exp(ref - logp) - (ref - logp) - 1)        (k3 KL to the reference policy)
  With one iteration per batch logp_old is logp itself (stop-gradient), so ratio = 1 and the
  gradient is the plain policy gradient; with more iterations logp_old is computed once before
  the first update.
* chunks of `loss_batch_size` sequences accumulate gradients (the chunk losses are sums divided by
  the step's total completion tokens, so accumulation is exact), then global-norm clipping and AdamW.

Data parallel (wordle_mlx.train.distributed): each rank passes its share of the sequences; losses are
normalised by the global token count and gradients averaged, so n ranks compute one process's update.

The reference policy is the same model with other LoRA weights swapped in for the reference pass
(`reference_adapters`: the run's starting adapters, e.g. the SFT policy GRPO starts from, so the KL
anchors to the SFT start and not to a base model that cannot play), or with LoRA switched off
(`lora.adapters_disabled`) when there are none (fresh adapters start equal to the base model).

Simplifications: no value model, no per-token entropy bonus; no separate reference copy of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_map

from wordle_mlx.model import lora
from wordle_mlx.train import logprobs
from wordle_mlx.train.distributed import World


def group_advantages(rewards: Sequence[float], scale: bool = True, eps: float = 1e-4) -> tuple[np.ndarray, bool]:
    """(advantages (N,), zero_variance) for one group's rewards."""
    r = np.asarray(rewards, dtype=np.float64)
    centred = r - r.mean()
    zero = bool(np.all(np.abs(centred) < 1e-9))
    if zero:
        return np.zeros_like(r), True
    return (centred / (r.std() + eps) if scale else centred), False


@dataclass
class TrainSequence:
    """One sampled completion as the loss sees it."""

    prompt: list[int]
    completion: list[int]
    advantage: float
    allowed: list | None = None  # per completion token: the ids a legal-move mask allowed there, or None (free)


def make_batch(seqs: Sequence[TrainSequence], pad_id: int = 0) -> tuple[mx.array, mx.array, mx.array]:
    """tokens (B, L) int32 right-padded, mask (B, L-1) float32 over completion targets, advantages (B,)."""
    length = max(len(s.prompt) + len(s.completion) for s in seqs)
    tokens = np.full((len(seqs), length), pad_id, dtype=np.int32)
    mask = np.zeros((len(seqs), length - 1), dtype=np.float32)
    for b, s in enumerate(seqs):
        full = s.prompt + s.completion
        tokens[b, : len(full)] = full
        mask[b, len(s.prompt) - 1 : len(full) - 1] = 1.0  # target positions of completion tokens
    return mx.array(tokens), mx.array(mask), mx.array([s.advantage for s in seqs], dtype=mx.float32)


def token_logprobs(model, tokens: mx.array, temperature: float = 1.0) -> mx.array:
    """(B, L-1) log p(tokens[:, t+1] | tokens[:, :t+1]) from logits / temperature."""
    logits = model(tokens[:, :-1]).astype(mx.float32) / temperature  # (B, L-1, V)
    targets = tokens[:, 1:]
    picked = mx.take_along_axis(logits, targets[..., None], axis=-1).squeeze(-1)
    return picked - mx.logsumexp(logits, axis=-1)


def clipped_objective(logp: mx.array, old: mx.array, ref: mx.array | None, adv: mx.array, weight: mx.array,
                      epsilon: float, epsilon_high: float, beta: float,
                      total_tokens: float) -> tuple[mx.array, tuple[mx.array, mx.array, mx.array]]:
    """The token-level clipped loss (+ k3 KL) on log-probs of any shape; `weight` 1 for scored tokens, 0 else."""
    ratio = mx.exp(logp - old)
    clipped = mx.clip(ratio, 1.0 - epsilon, 1.0 + epsilon_high)
    per_token = -mx.minimum(ratio * adv, clipped * adv)
    kl = mx.zeros_like(logp)
    if ref is not None:
        delta = ref - logp
        kl = mx.exp(delta) - delta - 1.0
        per_token = per_token + beta * kl
    loss = (per_token * weight).sum() / total_tokens
    is_clipped = ((ratio < 1.0 - epsilon) & (adv < 0)) | ((ratio > 1.0 + epsilon_high) & (adv > 0))
    return loss, (mx.stop_gradient((kl * weight).sum()), (is_clipped * weight).sum(), weight.sum())


def policy_loss(model, tokens: mx.array, mask: mx.array, advantages: mx.array, old_logprobs: mx.array | None,
                ref_logprobs: mx.array | None, temperature: float, epsilon: float, epsilon_high: float,
                beta: float, total_tokens: float) -> tuple[mx.array, tuple[mx.array, mx.array, mx.array]]:
    """Reference path: sum of per-token clipped losses / total_tokens over padded (B, L) rows;
    also (kl sum, clipped-token count, token count)."""
    logp = token_logprobs(model, tokens, temperature)  # (B, L-1)
    old = mx.stop_gradient(logp) if old_logprobs is None else old_logprobs
    return clipped_objective(logp, old, ref_logprobs, advantages[:, None], mask, epsilon, epsilon_high, beta,
                             total_tokens)


def shared_prompt_loss(model, batch: logprobs.TokenBatch, old_logprobs: mx.array | None,
                       ref_logprobs: mx.array | None, temperature: float, epsilon: float, epsilon_high: float,
                       beta: float, total_tokens: float) -> tuple[mx.array, tuple[mx.array, mx.array, mx.array]]:
    """The same loss on a TokenBatch (prompt once, completion positions only): log-probs are (T,)."""
    logp = logprobs.batch_logprobs(model, batch, temperature)  # (T,)
    old = mx.stop_gradient(logp) if old_logprobs is None else old_logprobs
    return clipped_objective(logp, old, ref_logprobs, batch.advantages[batch.rows], mx.ones_like(logp), epsilon,
                             epsilon_high, beta, total_tokens)


@dataclass
class UpdateSettings:
    temperature: float = 1.0
    epsilon: float = 0.2
    epsilon_high: float = 0.28
    beta: float = 0.0
    num_iterations: int = 1
    loss_batch_size: int = 4
    max_grad_norm: float = 1.0
    shared_prompt: bool = True  # False: the reference path (every row's whole prompt, full logits)
    pack_groups: bool = True  # shared path: several groups per chunk (False: one group's completions per chunk)
    reference_adapters: dict | None = None  # KL reference LoRA weights by name; None = adapters off


@dataclass
class UpdateStats:
    loss: float = 0.0
    kl: float = 0.0
    clip_fraction: float = 0.0
    grad_norm: float = 0.0
    tokens: int = 0
    sequences: int = 0
    chunks: int = 0
    groups_per_chunk: float = 0.0  # mean groups (distinct prompts) per chunk
    forward_passes: int = 0  # model forward calls per iteration (a chunk's levels count one each)
    processed_tokens: int = 0  # tokens that went through the model (prefixes once, padding included)
    logprob_s: float = 0.0
    backward_s: float = 0.0
    optimizer_s: float = 0.0


def _chunks(seqs: Sequence[TrainSequence], size: int) -> list[list[TrainSequence]]:
    ordered = sorted(seqs, key=lambda s: len(s.prompt) + len(s.completion))  # similar lengths pad less
    return [list(ordered[i : i + size]) for i in range(0, len(ordered), size)]


def group_chunks(seqs: Sequence[TrainSequence], size: int) -> list[list[TrainSequence]]:
    """Chunks of at most `size` sequences that share one prompt (a group), shortest completions together."""
    groups: dict[tuple, list[TrainSequence]] = {}
    for s in seqs:
        groups.setdefault(tuple(s.prompt), []).append(s)
    out = []
    for members in groups.values():
        members = sorted(members, key=lambda s: len(s.completion))
        out += [members[i : i + size] for i in range(0, len(members), size)]
    return out


def packed_chunks(seqs: Sequence[TrainSequence], size: int) -> list[list[TrainSequence]]:
    """Chunks of at most `size` rows holding whole groups where they fit (a group larger than `size`
    is cut into pieces of `size`); groups in order of prompt length, so a chunk's prompt parts pad little."""
    pieces = sorted(group_chunks(seqs, size), key=lambda piece: len(piece[0].prompt))
    out: list[list[TrainSequence]] = []
    for piece in pieces:
        if out and len(out[-1]) + len(piece) <= size:
            out[-1] += piece
        else:
            out.append(list(piece))
    return out


class _ReferencePath:
    """Every row's whole prompt + completion, logits at every position (the original update)."""

    loss = staticmethod(policy_loss)

    @staticmethod
    def split(seqs, size):
        return _chunks(seqs, size)

    @staticmethod
    def make(chunk_seqs, pad_id):
        return make_batch(chunk_seqs, pad_id)

    @staticmethod
    def targets(chunk) -> float:
        return float(chunk[1].sum())

    @staticmethod
    def processed(chunk) -> int:
        return int(chunk[0].size)

    @staticmethod
    def passes(chunk) -> int:
        return 1

    @staticmethod
    def logprobs(model, chunk, temperature):
        return token_logprobs(model, chunk[0], temperature)

    @staticmethod
    def args(chunk) -> tuple:
        return chunk


class _SharedPromptPath:
    """Each group's prompt once per chunk, log-probs at completion positions only (wordle_mlx.train.logprobs)."""

    loss = staticmethod(shared_prompt_loss)
    pack = True

    @classmethod
    def split(cls, seqs, size):
        return packed_chunks(seqs, size) if cls.pack else group_chunks(seqs, size)

    @classmethod
    def make(cls, chunk_seqs, pad_id):
        return logprobs.make_token_batch(chunk_seqs, pad_id, share_prefix=True, by_group=cls.pack)

    @staticmethod
    def targets(chunk) -> float:
        return float(chunk.num_targets)

    @staticmethod
    def processed(chunk) -> int:
        return chunk.processed_tokens

    @staticmethod
    def passes(chunk) -> int:
        return (chunk.prefix is not None) + (chunk.groups is not None) + 1

    @staticmethod
    def logprobs(model, chunk, temperature):
        return logprobs.batch_logprobs(model, chunk, temperature)

    @staticmethod
    def args(chunk) -> tuple:
        return (chunk,)


class _OneGroupPath(_SharedPromptPath):
    """The shared-prompt path with one group's completions per chunk."""

    pack = False


def update(model, optimizer: optim.Optimizer, seqs: Sequence[TrainSequence], settings: UpdateSettings,
           pad_id: int = 0, world: World | None = None) -> UpdateStats:
    """One GRPO update (num_iterations optimizer steps) over the step's sequences.

    `settings.shared_prompt` (default) runs each group's prompt once per chunk of at most
    `loss_batch_size` of its completions and scores completion positions only; False runs the
    reference path (whole rows, full logits). Both compute the same loss and gradients.

    With a `world` of n > 1 processes (wordle_mlx.train.distributed) `seqs` are this rank's share: the
    loss is normalised by the completion tokens of all ranks times 1/n and the gradients are
    averaged across ranks, which equals the gradient over the union of all ranks' sequences.
    Every rank must call this once per step, even with no sequences of its own.
    """
    import time

    world = world or World()
    path, chunked, chunks = _chunks_of(seqs, settings, pad_id)
    stats = UpdateStats()
    local_tokens = float(sum(path.targets(c) for c in chunks))
    global_tokens = world.all_sum([local_tokens])[0]
    stats.tokens, stats.sequences, stats.chunks = int(local_tokens), sum(map(len, chunked)), len(chunks)
    stats.processed_tokens = sum(path.processed(c) for c in chunks)
    stats.forward_passes = sum(path.passes(c) for c in chunks)
    stats.groups_per_chunk = sum(len({tuple(s.prompt) for s in c}) for c in chunked) / max(len(chunked), 1)
    if global_tokens == 0:
        return stats  # every rank sees the same global count: all skip together
    normalizer = global_tokens / world.size

    start = time.perf_counter()
    refs = _reference_logprobs(model, path, chunks, settings)
    olds: list[mx.array | None] = [None] * len(chunks)
    if settings.num_iterations > 1 and chunks:
        olds = [mx.stop_gradient(path.logprobs(model, c, settings.temperature)) for c in chunks]
        mx.eval(olds)
    stats.logprob_s = time.perf_counter() - start

    for _ in range(settings.num_iterations):
        start = time.perf_counter()
        grads, loss_sum, kl_sum, clipped, counted = _gradient(model, path, chunks, olds, refs, settings, normalizer)
        if grads is None:  # no sequences on this rank: a zero contribution to the average
            grads = tree_map(mx.zeros_like, model.trainable_parameters())
        grads = world.average_gradients(grads)
        mx.eval(grads)
        stats.backward_s += time.perf_counter() - start
        start = time.perf_counter()
        grads, grad_norm = optim.clip_grad_norm(grads, settings.max_grad_norm)
        optimizer.update(model, grads)
        mx.eval(model.trainable_parameters(), optimizer.state, grad_norm)
        stats.optimizer_s += time.perf_counter() - start
        stats.loss, stats.grad_norm = loss_sum, float(grad_norm)
        stats.kl = kl_sum / max(counted, 1.0)
        stats.clip_fraction = clipped / max(counted, 1.0)
    return stats


def policy_gradient(model, seqs: Sequence[TrainSequence], settings: UpdateSettings, pad_id: int = 0,
                    normalizer: float | None = None) -> tuple[dict | None, int]:
    """(gradient, completion tokens): the gradient the update's first iteration takes over `seqs`,
    before clipping and the optimizer; the loss is the sum over their completion tokens divided by
    `normalizer` (default: that token count, as one update over them alone). (None, 0) when no
    sequence has a token to score (every advantage zero, with beta = 0)."""
    path, _, chunks = _chunks_of(seqs, settings, pad_id)
    tokens = int(sum(path.targets(c) for c in chunks))
    if tokens == 0:
        return None, 0
    refs = _reference_logprobs(model, path, chunks, settings)
    grads = _gradient(model, path, chunks, [None] * len(chunks), refs, settings, normalizer or float(tokens))[0]
    return grads, tokens


def _chunks_of(seqs: Sequence[TrainSequence], settings: UpdateSettings, pad_id: int) -> tuple[type, list, list]:
    """(loss path, chunks of sequences, their model inputs); with beta = 0 the sequences of zero
    advantage are left out (they would add exactly zero gradient)."""
    if not settings.shared_prompt and any(s.allowed for s in seqs):
        raise ValueError("a legal-move mask (sampling.mask) needs the shared-prompt update (training.shared_prompt)")
    path = (_SharedPromptPath if settings.pack_groups else _OneGroupPath) if settings.shared_prompt else _ReferencePath
    if settings.beta == 0:
        seqs = [s for s in seqs if s.advantage != 0.0]
    chunked = path.split(seqs, settings.loss_batch_size) if seqs else []
    return path, chunked, [path.make(c, pad_id) for c in chunked]


def _reference_logprobs(model, path, chunks: list, settings: UpdateSettings) -> list[mx.array | None]:
    """Per chunk, the KL reference's log-probs (beta > 0), else None."""
    if settings.beta == 0 or not chunks:
        return [None] * len(chunks)
    ref_weights = settings.reference_adapters
    with lora.adapters_swapped(model, ref_weights) if ref_weights is not None else lora.adapters_disabled(model):
        refs = [mx.stop_gradient(path.logprobs(model, c, settings.temperature)) for c in chunks]
        mx.eval(refs)
    return refs


def _gradient(model, path, chunks: list, olds: list, refs: list, settings: UpdateSettings,
              normalizer: float) -> tuple[dict | None, float, float, float, float]:
    """Summed gradient of the chunks' losses (each its token sum / normalizer), evaluated chunk by chunk;
    also the loss, the KL sum, clipped and scored token counts."""
    loss_and_grad = nn.value_and_grad(model, path.loss)
    grads, loss_sum, kl_sum, clipped, counted = None, 0.0, 0.0, 0.0, 0.0
    for chunk, ref, old in zip(chunks, refs, olds):
        (loss, (kl, n_clip, n_tok)), g = loss_and_grad(
            model, *path.args(chunk), old, ref, settings.temperature, settings.epsilon, settings.epsilon_high,
            settings.beta, normalizer)
        grads = g if grads is None else tree_map(mx.add, grads, g)
        mx.eval(grads, loss, kl, n_clip, n_tok)
        loss_sum += float(loss)
        kl_sum += float(kl)
        clipped += float(n_clip)
        counted += float(n_tok)
    return grads, loss_sum, kl_sum, clipped, counted


def make_optimizer(learning_rate: float, steps: int, warmup_steps: int, weight_decay: float) -> optim.Optimizer:
    """AdamW with linear warmup then cosine decay to 10% of the peak rate."""
    warmup_steps = min(warmup_steps, max(steps - 1, 0))
    cosine = optim.cosine_decay(learning_rate, max(steps - warmup_steps, 1), learning_rate * 0.1)
    if warmup_steps > 0:
        schedule = optim.join_schedules([optim.linear_schedule(learning_rate * 0.01, learning_rate, warmup_steps), cosine],
                                        [warmup_steps])
    else:
        schedule = cosine
    return optim.AdamW(learning_rate=schedule, weight_decay=weight_decay)

