"""Teacher-forced log-probs with each token through the model once, and logits only where they count.

The loss of both trainers needs log p(token | everything before it) at completion positions only.
The straightforward way (kept as `grpo.token_logprobs`, the reference path) runs every row's whole
prompt + completion and builds full-vocabulary logits at every position. Here instead:

* **shared prefix once**: the rows of a `TokenBatch` start with the same tokens (a GRPO group: one
  game state's prompt, N completions; an SFT batch: the chat template and system prompt). The
  prefix goes through the model once, as one row, with gradients (LoRA changes its keys and
  values); its per-layer keys/values are broadcast to the B rows, and the rest of each row attends
  to them (`PrefixCache`: no in-place writes, so the gradient flows back into the prefix pass).
* **completion-only logits**: the model's body gives hidden states; only the T scored positions
  are gathered (flat, no padding) before the output projection, so logits are (T, vocab), not
  (B, L, vocab).
* **partial depth**: nothing extra is needed for LoRA on the top k layers only. MLX differentiates
  only through arrays that depend on trainable parameters, so the frozen layers below the first
  adapted one run forwards only (`scripts.benchmark sft` measures it).

Positions and RoPE offsets are exactly those of the full sequence, so the log-probs equal the
reference path's up to float rounding (tests compare loss and every LoRA gradient).

Simplifications: rows are right-padded after the prefix (padding is never scored, and causal
attention keeps it from affecting real tokens); models must follow mlx-lm's layout
(`model.model` returns normed hidden states, then `lm_head` or tied embeddings), otherwise the
full logits are computed and sliced (`split_model` returns None for the body).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import mlx.core as mx
import numpy as np
from mlx_lm.models.base import create_causal_mask


class PrefixCache:
    """One layer's keys/values for B rows that continue one shared prefix (differentiable).

    The first call (the prefix, batch 1) stores its keys/values; later calls broadcast them to
    the new rows' batch and append the new keys/values by concatenation.
    """

    def __init__(self):
        self.keys: mx.array | None = None  # (1 or B, kv_heads, S, head_dim)
        self.values: mx.array | None = None
        self.offset = 0

    def update_and_fetch(self, keys: mx.array, values: mx.array) -> tuple[mx.array, mx.array]:
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            rows = keys.shape[0]
            old_k = mx.broadcast_to(self.keys, (rows, *self.keys.shape[1:]))
            old_v = mx.broadcast_to(self.values, (rows, *self.values.shape[1:]))
            self.keys = mx.concatenate([old_k, keys], axis=2)
            self.values = mx.concatenate([old_v, values], axis=2)
        self.offset += keys.shape[2]
        return self.keys, self.values

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None):
        if self.offset == 0 and window_size is None and not return_array:
            return "causal" if n > 1 else None
        return create_causal_mask(n, self.offset, window_size=window_size)


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
    """Rows that share `prefix`, the rest right-padded, and the T positions whose next token is scored."""

    prefix: mx.array | None  # (1, P) int32 tokens all rows start with, or None
    inputs: mx.array  # (B, L) int32 the rest of each row but its last token (model inputs), right-padded
    positions: mx.array  # (T,) int32 flat index b * L + t into inputs of each scored position
    targets: mx.array  # (T,) int32 the token predicted at each scored position
    rows: mx.array  # (T,) int32 the row of each scored position
    advantages: mx.array  # (B,) float32
    real_tokens: int  # prompt + completion tokens of all rows (what a row-by-row pass would process)

    @property
    def num_targets(self) -> int:
        return int(self.targets.shape[0])

    @property
    def prefix_len(self) -> int:
        return 0 if self.prefix is None else int(self.prefix.shape[1])


def common_prefix_len(seqs: Sequence) -> int:
    """Longest shared prefix of the rows that still leaves every row's first scored position to the rest."""
    limit = min(len(s.prompt) for s in seqs) - 1  # the last prompt token's hidden state predicts the first target
    first = seqs[0].prompt
    n = 0
    while n < limit and all(s.prompt[n] == first[n] for s in seqs):
        n += 1
    return max(n, 0)


def make_token_batch(seqs: Sequence, pad_id: int = 0, share_prefix: bool = True) -> TokenBatch:
    """A TokenBatch from `TrainSequence`-like rows (prompt, completion, advantage).

    With `share_prefix` the rows' longest common prompt prefix (capped so that each row keeps its
    last prompt token) is run once; for a GRPO group that is the whole prompt but its last token.
    """
    p = common_prefix_len(seqs) if share_prefix else 0
    fulls = [list(s.prompt) + list(s.completion) for s in seqs]
    length = max(len(f) for f in fulls) - 1 - p
    inputs = np.full((len(seqs), length), pad_id, dtype=np.int32)
    positions, targets, rows = [], [], []
    for b, (s, full) in enumerate(zip(seqs, fulls)):
        inputs[b, : len(full) - 1 - p] = full[p:-1]
        for j in range(len(s.prompt), len(full)):  # target index in the full row, predicted at j - 1
            positions.append(b * length + (j - 1 - p))
            targets.append(int(full[j]))
            rows.append(b)
    prefix = mx.array([[int(t) for t in seqs[0].prompt[:p]]], dtype=mx.int32) if p > 0 else None
    return TokenBatch(prefix, mx.array(inputs), mx.array(positions, dtype=mx.int32), mx.array(targets, dtype=mx.int32),
                      mx.array(rows, dtype=mx.int32), mx.array([float(s.advantage) for s in seqs], dtype=mx.float32),
                      sum(len(f) for f in fulls))


def batch_logprobs(model, batch: TokenBatch, temperature: float = 1.0) -> mx.array:
    """(T,) log p(target | row so far) at the batch's scored positions, from logits / temperature."""
    body, head = split_model(model)
    rows, length = batch.inputs.shape
    if body is None:  # unknown layout: full forward over prefix + rest, then slice
        tokens = batch.inputs
        if batch.prefix is not None:
            tokens = mx.concatenate([mx.broadcast_to(batch.prefix, (rows, batch.prefix_len)), tokens], axis=1)
        logits = model(tokens)[:, batch.prefix_len:, :]
        hidden_logits = logits.reshape(rows * length, -1)[batch.positions]
    else:
        cache = None
        if batch.prefix is not None:
            cache = [PrefixCache() for _ in range(len(body.layers))]
            body(batch.prefix, cache=cache)  # fills the caches; its own outputs are never used
        hidden = body(batch.inputs, cache=cache)  # (B, L, D)
        picked = hidden.reshape(rows * length, hidden.shape[-1])[batch.positions]  # (T, D)
        hidden_logits = head(picked)  # (T, V)
    logits = hidden_logits.astype(mx.float32) / temperature
    chosen = mx.take_along_axis(logits, batch.targets[:, None], axis=-1).squeeze(-1)
    return chosen - mx.logsumexp(logits, axis=-1)
