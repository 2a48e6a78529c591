"""Trie-guided decoding: inside `<guess>…</guess>` the model can only spell allowed words.

An mlx-lm logits processor (`(tokens, logits) -> logits`, the signature `BatchGenerator` calls per
row). It is stateless: from the row's last tokens it decodes the text, and if that text has an
open `<guess>` tag with no closing tag yet, the letters written since the tag are the prefix P.
Then only tokens that keep the span on a path of the word trie survive (all others get -inf):

* a token of letters s (all uppercase, or all lowercase; the first one may start with a space,
  as in the ` crane` guess style) with P + s a prefix of an allowed word in the case used so far, or
* once P is a whole allowed word, a token that continues the closing tag `</guess>`;
* inside the closing tag, only tokens that continue it.

Outside the span nothing changes, so the model still decides when to open the tag (a completion
that never opens it stays invalid). The trie is a set of word prefixes; the allowed token ids per
prefix are computed on first use and cached. Simplifications: a token that spans the opening tag
and the first letters is not handled (the tag is its own token run in the SmolLM2 vocabulary).

Numbers made with it are reported separately from unconstrained decoding: it is a decoding aid,
not something the model learned.
"""

from __future__ import annotations

from functools import lru_cache

import mlx.core as mx
import numpy as np

from wordle_mlx.wordle import words as wordlists

OPEN, CLOSE = "<guess>", "</guess>"
LOOKBACK_TOKENS = 32  # enough for the tag and a 5-letter word even at one byte per token


class AllowedWordsProcessor:
    """Logits processor restricting the `<guess>` span to allowed 5-letter words (uppercase)."""

    def __init__(self, tokenizer, allowed: tuple[str, ...] | None = None):
        self.tokenizer = tokenizer
        words = [w.upper() for w in (allowed or wordlists.allowed())]
        self.words = frozenset(words)
        self.prefixes = frozenset(w[:i] for w in words for i in range(1, len(w) + 1))
        vocab_size = max(tokenizer.vocab_size, len(tokenizer.get_vocab()))
        self.vocab_size = vocab_size
        pieces = {}
        for i in range(vocab_size):
            try:
                pieces[i] = tokenizer.decode([i])
            except Exception:  # noqa: BLE001  (ids the tokenizer cannot decode are never allowed)
                continue
        def letters(p: str) -> bool:
            body = p[1:] if p.startswith(" ") else p
            return bool(body) and body.isascii() and body.isalpha() and (body.isupper() or body.islower())

        self.letter_tokens = [(i, p) for i, p in pieces.items() if letters(p)]
        self.close_tokens = [(i, p) for i, p in pieces.items() if p and p in CLOSE]  # pieces of the closing tag
        self._allowed = lru_cache(maxsize=4096)(self._allowed_ids)

    def span_prefix(self, text: str) -> str | None:
        """Text written inside an open `<guess>` tag, or None when outside one."""
        start = text.rfind(OPEN)
        if start < 0:
            return None
        inside = text[start + len(OPEN):]
        if CLOSE in inside:
            return None
        return inside

    def _allowed_ids(self, inside: str) -> np.ndarray | None:
        lt = inside.find("<")
        if lt >= 0:  # in the closing tag: continue it
            word, tag = inside[:lt].strip(), inside[lt:]
            if word.upper() not in self.words or not CLOSE.startswith(tag):
                return None  # off the trie already (cannot happen under this processor): leave it
            rest = CLOSE[len(tag):]
            return np.array([i for i, p in self.close_tokens if rest.startswith(p)], dtype=np.int64)
        word = inside[1:] if inside.startswith(" ") else inside
        if word and (word.upper() not in self.prefixes or not (word.isupper() or word.islower())):
            return None
        ids = []
        for i, p in self.letter_tokens:
            if p.startswith(" ") and inside:
                continue  # a space only right after the tag
            body = p.lstrip(" ")
            if word and (body.isupper() != word.isupper()):
                continue  # keep one case
            if (word + body).upper() in self.prefixes:
                ids.append(i)
        if word.upper() in self.words:
            ids += [i for i, p in self.close_tokens if CLOSE.startswith(p)]
        return np.array(ids, dtype=np.int64)

    def allowed_ids(self, inside: str) -> np.ndarray | None:
        """Token ids allowed after `inside` (the text since `<guess>`); None = no constraint."""
        return self._allowed(inside)

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        """tokens: (T,) or (1, T) context ids; logits: (1, V)."""
        tail = np.array(tokens).reshape(-1)[-LOOKBACK_TOKENS:].tolist()
        inside = self.span_prefix(self.tokenizer.decode(tail))
        if inside is None:
            return logits
        ids = self.allowed_ids(inside)
        if ids is None or len(ids) == 0:
            return logits
        mask = np.full((logits.shape[-1],), -np.inf, dtype=np.float32)
        mask[ids[ids < logits.shape[-1]]] = 0.0
        return logits + mx.array(mask)
