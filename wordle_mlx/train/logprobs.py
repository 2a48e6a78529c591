"""Teacher-forced log-probs with each token through the model once, and logits only where they count.

The loss of both trainers needs log p(token | everything before it) at completion positions only.
The straightforward way (kept as `grpo.token_logprobs`, the reference path) runs every row's whole
prompt + completion and builds full-vocabulary logits at every position. Here instead:

* **shared prefix once**: the rows of a `TokenBatch` start with the same tokens (a GRPO group: one
  game state's prompt, N completions; an SFT batch: the chat template and system prompt). The
  prefix goes through the model once, as one row, with gradients (LoRA changes its keys and
  values); its per-layer keys/values are broadcast to the B rows, and the rest of each row attends
  to them (`GroupedPrefixCache`: no in-place writes, so the gradient flows back into the prefix pass).
* **many groups per forward** (`by_group`): a GRPO chunk may hold K groups (K game states, their
  completions). Three levels then run one after the other through the same caches: the prefix
  all K prompts share (system prompt and chat template: one row), the K groups' own prompt parts
  but their last tokens (K rows, right-padded, one batched pass), then the rows (each group's
  completions, right-padded). Each level's keys/values are gathered to the rows that continue it;
  every row's RoPE positions are exactly those of its full sequence (per-row offsets), and the
  mask lets a row see its own group's real keys only (sliding windows by absolute position).
* **completion-only logits**: the model's body gives hidden states; only the T scored positions
  are gathered (flat, no padding) before the output projection, so logits are (T, vocab), not
  (B, L, vocab).
* **partial depth**: nothing extra is needed for LoRA on the top k layers only. MLX differentiates
  only through arrays that depend on trainable parameters, so the frozen layers below the first
  adapted one run forwards only (`scripts.benchmark sft` measures it).

Positions and RoPE offsets are exactly those of the full sequence, so the log-probs equal the
reference path's up to float rounding (tests compare loss and every LoRA gradient).

Under a legal-move mask a batch carries, per masked scored position, the token ids the mask
allowed; the logits elsewhere are -inf before the softmax (the distribution the samples came from).

Simplifications: rows are right-padded after the prefix (padding is never scored, and causal
attention keeps it from affecting real tokens; a group part's padding is masked for the rows that
follow it); models must follow mlx-lm's layout
(`model.model` returns normed hidden states, then `lm_head` or tied embeddings), otherwise the
full logits are computed and sliced (`split_model` returns None for the body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import mlx.core as mx
import numpy as np
from mlx_lm.models.base import create_causal_mask


class GroupedPrefixCache:
    """One layer's keys/values through levels of rows, each level's rows continuing rows of the one before.

    Before a level runs, `begin` says which earlier row each new row continues (`parents`), the
    absolute position of each row's first new token (`starts`, the RoPE offset: per row) and how many
    of its new tokens are real (the rest is right padding, masked for later levels). Keys/values of
    earlier levels are gathered to the new rows and the new ones appended by concatenation (no
    in-place writes, so gradients reach every level). With one earlier row, uniform starts and no
    padding (one shared prefix, then the rows) the keys are broadcast, the offset is a number and the
    mask the plain causal one.
    """

    def __init__(self):
        self.keys: mx.array | None = None  # (R, kv_heads, S, head_dim)
        self.values: mx.array | None = None
        self.key_pos = np.zeros((1, 0), dtype=np.int64)  # (R, S) absolute position of every key so far
        self.key_valid = np.zeros((1, 0), dtype=bool)  # (R, S) False for padding
        self.offset: int | mx.array = 0  # RoPE offset of the level being run: int, or (R,) int32
        self._parents: np.ndarray | None = None
        self._starts = np.zeros(1, dtype=np.int64)
        self._lengths: np.ndarray | None = None
        self._masks: dict = {}

    def begin(self, parents: np.ndarray | None, starts: np.ndarray, lengths: np.ndarray | None = None):
        """Next level: (R,) earlier row continued by each new row (None: one for one or broadcast from one),
        (R,) position of each row's first new token, (R,) real new tokens per row (None: all)."""
        self._parents = None if parents is None else np.asarray(parents, dtype=np.int64)
        self._starts = np.asarray(starts, dtype=np.int64)
        self._lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
        uniform = bool(np.all(self._starts == self._starts[0]))
        self.offset = int(self._starts[0]) if uniform else mx.array(self._starts.astype(np.int32))
        self._masks = {}

    def _old(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, S) positions and validity of the earlier keys as the new rows see them."""
        if self._parents is not None:
            return self.key_pos[self._parents], self.key_valid[self._parents]
        return (np.broadcast_to(self.key_pos, (rows, self.key_pos.shape[1])),
                np.broadcast_to(self.key_valid, (rows, self.key_valid.shape[1])))

    def _simple(self, rows: int) -> bool:
        """True when the level is a plain continuation of one shared prefix: scalar offset, nothing masked."""
        old_pos, old_valid = self._old(rows)
        return (isinstance(self.offset, int) and bool(old_valid.all())
                and (old_pos.shape[1] == 0 or bool(np.all(old_pos == np.arange(old_pos.shape[1]))))
                and old_pos.shape[1] == self.offset)

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        rows, n = keys.shape[0], keys.shape[2]
        if self.keys is None:
            new_k, new_v = keys, values
        else:
            if self._parents is not None:
                index = mx.array(self._parents.astype(np.int32))
                old_k, old_v = mx.take(self.keys, index, axis=0), mx.take(self.values, index, axis=0)
            else:
                old_k = mx.broadcast_to(self.keys, (rows, *self.keys.shape[1:]))
                old_v = mx.broadcast_to(self.values, (rows, *self.values.shape[1:]))
            new_k, new_v = mx.concatenate([old_k, keys], axis=2), mx.concatenate([old_v, values], axis=2)
        old_pos, old_valid = self._old(rows)
        pos = self._starts[:, None] + np.arange(n)[None, :]  # (R, n)
        pos = np.broadcast_to(pos, (rows, n))
        valid = np.ones((rows, n), dtype=bool) if self._lengths is None else np.arange(n)[None, :] < self._lengths[:, None]
        self.key_pos = np.concatenate([old_pos, pos], axis=1)
        self.key_valid = np.concatenate([old_valid, valid], axis=1)
        self.keys, self.values = new_k, new_v
        self._parents = None  # the next call (if any) in this level appends to these rows
        return self.keys, self.values

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None):
        rows = len(self._starts) if self._parents is None else len(self._parents)
        rows = max(rows, 1)
        if self._simple(rows):
            offset = int(self.offset)
            if offset == 0 and window_size is None and not return_array:
                return "causal" if n > 1 else None
            return create_causal_mask(n, offset, window_size=window_size)
        key = (n, window_size)
        if key not in self._masks:
            old_pos, old_valid = self._old(rows)
            q = np.broadcast_to(self._starts[:, None] + np.arange(n)[None, :], (rows, n))  # (R, n)
            seen = old_valid[:, None, :] & (old_pos[:, None, :] <= q[:, :, None])  # (R, n, S_old)
            own = np.tril(np.ones((n, n), dtype=bool))  # causal on the new tokens (padding comes last)
            if window_size is not None:
                seen &= (q[:, :, None] - old_pos[:, None, :]) < window_size
                own &= (np.arange(n)[:, None] - np.arange(n)[None, :]) < window_size
            mask = np.concatenate([seen, np.broadcast_to(own, (rows, n, n))], axis=2)  # (R, n, S_old + n)
            self._masks[key] = mx.array(mask[:, None, :, :])
        return self._masks[key]


def split_model(model) -> tuple[Callable | None, Callable | None]:
    """(body, head) of an mlx-lm causal LM: body(tokens, cache) -> normed hidden states, head -> logits.

    (None, None) when the model does not have that layout (then callers use the full forward).
    """
    body = getattr(model, "model", None)
    if body is None or not hasattr(body, "embed_tokens"):
        return None, None
    tied = getattr(model, "tie_word_embeddings", None)
    if tied is None:
        tied = getattr(getattr(model, "args", None), "tie_word_embeddings", not hasattr(model, "lm_head"))
    if not tied and hasattr(model, "lm_head"):
        return body, model.lm_head
    return body, body.embed_tokens.as_linear


@dataclass
class TokenBatch:
    """Rows that share `prefix` (and, by group, a group part), the rest right-padded, and the T positions
    whose next token is scored."""

    prefix: mx.array | None  # (1, P) int32 tokens all rows start with, or None
    inputs: mx.array  # (B, L) int32 the rest of each row but its last token (model inputs), right-padded
    positions: mx.array  # (T,) int32 flat index b * L + t into inputs of each scored position
    targets: mx.array  # (T,) int32 the token predicted at each scored position
    rows: mx.array  # (T,) int32 the row of each scored position
    advantages: mx.array  # (B,) float32
    real_tokens: int  # prompt + completion tokens of all rows (what a row-by-row pass would process)
    groups: mx.array | None = None  # (K, G) int32 each group's prompt after `prefix` but its last token, right-padded
    group_lengths: np.ndarray | None = None  # (K,) real tokens of each `groups` row
    row_group: np.ndarray | None = None  # (B,) the group each row continues
    allowed: list | None = None  # [(scored position t, allowed ids)] under a legal-move mask; None = free

    @property
    def num_targets(self) -> int:
        return int(self.targets.shape[0])

    @property
    def prefix_len(self) -> int:
        return 0 if self.prefix is None else int(self.prefix.shape[1])

    @property
    def num_groups(self) -> int:
        return 1 if self.group_lengths is None else len(self.group_lengths)

    @property
    def processed_tokens(self) -> int:
        """Tokens that go through the model: the prefix once, the group parts and the rows, padding included."""
        return self.prefix_len + (0 if self.groups is None else int(self.groups.size)) + int(self.inputs.size)

    def row_starts(self) -> np.ndarray:
        """(B,) position in its full sequence of each row's first input token."""
        if self.group_lengths is None:
            return np.full(self.inputs.shape[0], self.prefix_len, dtype=np.int64)
        return self.prefix_len + self.group_lengths[self.row_group]


def common_prefix_len(seqs: Sequence) -> int:
    """Longest shared prefix of the rows that still leaves every row's first scored position to the rest."""
    limit = min(len(s.prompt) for s in seqs) - 1  # the last prompt token's hidden state predicts the first target
    first = seqs[0].prompt
    n = 0
    while n < limit and all(s.prompt[n] == first[n] for s in seqs):
        n += 1
    return max(n, 0)


def make_token_batch(seqs: Sequence, pad_id: int = 0, share_prefix: bool = True, by_group: bool = False) -> TokenBatch:
    """A TokenBatch from `TrainSequence`-like rows (prompt, completion, advantage).

    With `share_prefix` the rows' longest common prompt prefix (capped so that each row keeps its
    last prompt token) is run once; for a GRPO group that is the whole prompt but its last token.
    With `by_group` (GRPO chunks of several groups) rows with the same prompt form a group: the
    prefix all prompts share runs once, each group's prompt part but its last token once (a row of
    `groups`), and each row holds its last prompt token and completion.
    """
    distinct: dict[tuple, int] = {}
    for s in seqs:
        distinct.setdefault(tuple(s.prompt), len(distinct))
    if not (share_prefix and by_group and len(distinct) > 1):
        p = common_prefix_len(seqs) if share_prefix else 0
        starts = [p] * len(seqs)
        groups = group_lengths = row_group = None
    else:
        prompts = list(distinct)
        p = common_prefix_len([_Prompt(q) for q in prompts])
        group_lengths = np.array([len(q) - 1 - p for q in prompts], dtype=np.int64)
        row_group = np.array([distinct[tuple(s.prompt)] for s in seqs], dtype=np.int64)
        starts = [p + int(group_lengths[g]) for g in row_group]
        width = int(group_lengths.max())
        groups = None
        if width > 0:
            part = np.full((len(prompts), width), pad_id, dtype=np.int32)
            for k, q in enumerate(prompts):
                part[k, : group_lengths[k]] = q[p : len(q) - 1]
            groups = mx.array(part)
    fulls = [list(s.prompt) + list(s.completion) for s in seqs]
    length = max(len(f) - 1 - st for f, st in zip(fulls, starts))
    inputs = np.full((len(seqs), length), pad_id, dtype=np.int32)
    positions, targets, rows, allowed = [], [], [], []
    for b, (s, full, st) in enumerate(zip(seqs, fulls, starts)):
        inputs[b, : len(full) - 1 - st] = full[st:-1]
        masks = getattr(s, "allowed", None)
        for j in range(len(s.prompt), len(full)):  # target index in the full row, predicted at j - 1
            if masks is not None and masks[j - len(s.prompt)] is not None:
                allowed.append((len(targets), np.asarray(masks[j - len(s.prompt)], dtype=np.int64)))
            positions.append(b * length + (j - 1 - st))
            targets.append(int(full[j]))
            rows.append(b)
    prefix = mx.array([[int(t) for t in seqs[0].prompt[:p]]], dtype=mx.int32) if p > 0 else None
    return TokenBatch(prefix, mx.array(inputs), mx.array(positions, dtype=mx.int32), mx.array(targets, dtype=mx.int32),
                      mx.array(rows, dtype=mx.int32), mx.array([float(s.advantage) for s in seqs], dtype=mx.float32),
                      sum(len(f) for f in fulls), groups, group_lengths, row_group, allowed or None)


@dataclass
class _Prompt:
    prompt: Sequence[int]


def _full_rows(batch: TokenBatch) -> tuple[mx.array, np.ndarray]:
    """(B, L_full) each row's whole sequence but its last token, right-padded, and (B,) row starts."""
    rows, length = batch.inputs.shape
    starts = batch.row_starts()
    full = np.zeros((rows, int(starts.max()) + length), dtype=np.int32)
    prefix = np.array(batch.prefix)[0] if batch.prefix is not None else np.zeros(0, dtype=np.int32)
    groups = None if batch.groups is None else np.array(batch.groups)
    inputs = np.array(batch.inputs)
    for b in range(rows):
        head = prefix if groups is None else np.concatenate([prefix, groups[batch.row_group[b], : batch.group_lengths[batch.row_group[b]]]])
        head = head.astype(np.int32)
        full[b, : starts[b]] = head
        full[b, starts[b] : starts[b] + length] = inputs[b]
    return mx.array(full), starts


def batch_logprobs(model, batch: TokenBatch, temperature: float = 1.0) -> mx.array:
    """(T,) log p(target | row so far) at the batch's scored positions, from logits / temperature."""
    body, head = split_model(model)
    rows, length = batch.inputs.shape
    if body is None:  # unknown layout: full forward over each whole row, then slice
        tokens, starts = _full_rows(batch)
        logits = model(tokens)
        row_of, col = np.divmod(np.array(batch.positions), length)
        flat = mx.array((row_of * tokens.shape[1] + starts[row_of] + col).astype(np.int32))
        hidden_logits = logits.reshape(rows * tokens.shape[1], -1)[flat]
    else:
        cache = None
        if batch.prefix is not None or batch.groups is not None:
            cache = [GroupedPrefixCache() for _ in range(len(body.layers))]
            if batch.prefix is not None:
                _begin(cache, None, np.zeros(1, dtype=np.int64))
                body(batch.prefix, cache=cache)  # the prefix all rows share; its outputs are never used
            if batch.groups is not None:
                k = batch.num_groups
                _begin(cache, np.zeros(k, dtype=np.int64) if batch.prefix is not None else None,
                       np.full(k, batch.prefix_len, dtype=np.int64), batch.group_lengths)
                body(batch.groups, cache=cache)  # (K, G) each group's own prompt part
            _begin(cache, batch.row_group if batch.groups is not None else None, batch.row_starts())
        hidden = body(batch.inputs, cache=cache)  # (B, L, D)
        picked = hidden.reshape(rows * length, hidden.shape[-1])[batch.positions]  # (T, D)
        hidden_logits = head(picked)  # (T, V)
    logits = hidden_logits.astype(mx.float32) / temperature
    if batch.allowed:
        logits = logits + allowed_bias(batch.allowed, logits.shape)
    chosen = mx.take_along_axis(logits, batch.targets[:, None], axis=-1).squeeze(-1)
    return chosen - mx.logsumexp(logits, axis=-1)


def allowed_bias(allowed: list, shape: tuple[int, int]) -> mx.array:
    """(T, V) 0 where a legal-move mask allowed a token (and at unmasked positions), -inf elsewhere."""
    bias = np.zeros(shape, dtype=np.float32)
    for t, ids in allowed:
        bias[t] = -np.inf
        bias[t, ids[ids < shape[1]]] = 0.0
    return mx.array(bias)


def _begin(cache: list[GroupedPrefixCache], parents, starts, lengths=None) -> None:
    for c in cache:
        c.begin(parents, starts, lengths)
