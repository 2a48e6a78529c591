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

Legal moves (`sampling.mask`, `scripts.evaluate --mask`): `allowed` keeps the span on allowed
words; `allowed_new` also removes the words already played in the game (`exclude`), so every guess
is a real word not yet tried, the way move masks work in game-playing RL. A prefix stays open while
some allowed word not excluded continues it. `allowed_after(tokens)` gives the allowed ids after any
token context, so the GRPO loss can score the masked distribution the samples came from.

Spelled guesses (`sampling.guess_style: letters`, ` C R A N E`: `spelled=True`): inside the span
only single-letter tokens with a leading space (` C`) survive, each keeping the letters so far on
the trie, then the closing tag once they spell a whole allowed (and new) word. One token a letter,
so the mask removes exactly the letters that cannot start a legal word from here, and the GRPO loss
scores the masked distribution of each letter.

Numbers made with a mask are reported with the mask's name: it is a decoding aid, not something
the model learned, unless the model was trained under it.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Sequence

import mlx.core as mx
import numpy as np

from wordle_mlx.wordle import words as wordlists

OPEN, CLOSE = "<guess>", "</guess>"
LOOKBACK_TOKENS = 32  # enough for the tag and a 5-letter word even at one byte per token
MASKS = ("none", "allowed", "allowed_new")
_VOCABS: dict[int, tuple] = {}  # id(tokenizer) -> (tokenizer, vocab_size, letter tokens, closing-tag tokens,
#                                  {id: piece} of letter tokens, ids of the pieces that start the closing tag)


def _vocab(tokenizer) -> tuple[int, list, list]:
    """(vocab size, [(id, piece)] of letter tokens, [(id, piece)] of closing-tag pieces), once per tokenizer."""
    cached = _VOCABS.get(id(tokenizer))
    if cached is not None and cached[0] is tokenizer:
        return cached[1:4]
    vocab_size = max(tokenizer.vocab_size, len(tokenizer.get_vocab()))
    pieces = {}
    for i in range(vocab_size):
        try:
            pieces[i] = tokenizer.decode([i])
        except Exception:  # noqa: BLE001  (ids the tokenizer cannot decode are never allowed)
            continue

    def letters(p: str) -> bool:
        body = p[1:] if p.startswith(" ") else p
        return bool(body) and body.isascii() and body.isalpha() and (body.isupper() or body.islower())

    letter_tokens = [(i, p) for i, p in pieces.items() if letters(p)]
    close_tokens = [(i, p) for i, p in pieces.items() if p and p in CLOSE]  # pieces of the closing tag
    _VOCABS[id(tokenizer)] = (tokenizer, vocab_size, letter_tokens, close_tokens, dict(letter_tokens),
                              frozenset(i for i, p in close_tokens if CLOSE.startswith(p)))
    return vocab_size, letter_tokens, close_tokens


@lru_cache(maxsize=8)
def _word_set(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(w.upper() for w in words)


@lru_cache(maxsize=8)
def _prefix_counts(words: frozenset[str]) -> Counter:
    return Counter(w[:i] for w in words for i in range(1, len(w) + 1))


_UNEXCLUDED: dict[tuple[int, frozenset, bool], "AllowedWordsProcessor"] = {}


def _unexcluded(tokenizer, words: frozenset[str], spelled: bool = False) -> "AllowedWordsProcessor":
    """The mask on `words` without exclusions, one per tokenizer, word list and guess style."""
    found = _UNEXCLUDED.get((id(tokenizer), words, spelled))
    if found is None or found.tokenizer is not tokenizer:
        found = AllowedWordsProcessor(tokenizer, tuple(words), spelled=spelled)
        _UNEXCLUDED[(id(tokenizer), words, spelled)] = found
    return found


def _spelled_word(inside: str) -> str | None:
    """The letters of a spelled span (` C R A` -> `CRA`), or None when `inside` is not one."""
    if len(inside) % 2 or any(inside[i] != " " or not inside[i + 1].isalpha() for i in range(0, len(inside), 2)):
        return None
    return inside[1::2]


def _pieces(tokenizer) -> tuple[dict[int, str], frozenset[int]]:
    """({id: piece} of letter tokens, ids of the pieces that start the closing tag), once per tokenizer."""
    _vocab(tokenizer)
    return _VOCABS[id(tokenizer)][4:]


class AllowedWordsProcessor:
    """Logits processor restricting the `<guess>` span to allowed 5-letter words (uppercase)."""

    def __init__(self, tokenizer, allowed: tuple[str, ...] | None = None, exclude: Sequence[str] = (),
                 spelled: bool = False):
        self.tokenizer = tokenizer
        self.spelled = spelled  # the `letters` guess style: ` C R A N E`, one token a letter
        self.words = _word_set(tuple(allowed or wordlists.allowed()))
        self.exclude = frozenset(w.upper() for w in exclude) & self.words
        self._counts = _prefix_counts(self.words)  # prefix -> allowed words it starts (shared)
        self._gone = Counter(w[:i] for w in self.exclude for i in range(1, len(w) + 1))  # ... of them excluded
        self.vocab_size, self.letter_tokens, self.close_tokens = _vocab(tokenizer)
        # the mask without exclusions is shared by every game of this tokenizer and word list (allowed_new
        # only filters its ids), so its per-prefix work is done once per run, not once per game and turn
        self._base = _unexcluded(tokenizer, self.words, spelled) if self.exclude else None
        self._allowed = lru_cache(maxsize=4096)(self._allowed_ids)

    def is_open(self, prefix: str) -> bool:
        """Some allowed word not excluded starts with `prefix` (uppercase)."""
        return self._counts.get(prefix, 0) > self._gone.get(prefix, 0)

    def excluding(self, played: Sequence[str]) -> "AllowedWordsProcessor":
        """The same mask with `played` words removed too (`allowed_new`); shares the vocabulary work."""
        return AllowedWordsProcessor(self.tokenizer, tuple(self.words), played, self.spelled)

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
        if self._base is not None:
            return self._excluded_ids(inside, self._base.allowed_ids(inside))
        if self.spelled:
            return self._spelled_ids(inside)
        lt = inside.find("<")
        if lt >= 0:  # in the closing tag: continue it
            return self._closing_ids(inside[:lt].strip(), inside[lt:])
        word = inside[1:] if inside.startswith(" ") else inside
        if word and (not self.is_open(word.upper()) or not (word.isupper() or word.islower())):
            return None
        ids = []
        for i, p in self.letter_tokens:
            if p.startswith(" ") and inside:
                continue  # a space only right after the tag
            body = p.lstrip(" ")
            if word and (body.isupper() != word.isupper()):
                continue  # keep one case
            if self.is_open((word + body).upper()):
                ids.append(i)
        if word.upper() in self.words:
            ids += [i for i, p in self.close_tokens if CLOSE.startswith(p)]
        return np.array(ids, dtype=np.int64)

    def _closing_ids(self, word: str, tag: str) -> np.ndarray | None:
        """Inside the closing tag after `word`: the pieces that continue the tag; None when off the trie
        already (cannot happen under this processor): left alone."""
        if word.upper() not in self.words or not CLOSE.startswith(tag):
            return None
        rest = CLOSE[len(tag):]
        return np.array([i for i, p in self.close_tokens if rest.startswith(p)], dtype=np.int64)

    def _spelled_ids(self, inside: str) -> np.ndarray | None:
        """`_allowed_ids` for spelled guesses: ` X` tokens that keep the letters on the trie, then the tag."""
        lt = inside.find("<")
        word = _spelled_word(inside[:lt] if lt >= 0 else inside)
        if word is None or (word and not (word.isupper() or word.islower())):
            return None
        if lt >= 0:
            return self._closing_ids(word, inside[lt:])
        if word and not self.is_open(word.upper()):
            return None
        ids = [i for i, p in self.letter_tokens if len(p) == 2 and p[0] == " "
               and (not word or p[1].isupper() == word.isupper()) and self.is_open((word + p[1]).upper())]
        if word.upper() in self.words:
            ids += [i for i, p in self.close_tokens if CLOSE.startswith(p)]
        return np.array(ids, dtype=np.int64)

    def _excluded_ids(self, inside: str, ids: np.ndarray | None) -> np.ndarray | None:
        """The unexcluded mask's `ids` after `inside`, less the tokens only excluded words continue."""
        if ids is None:
            return None
        lt = inside.find("<")
        if lt >= 0:
            return None if inside[:lt].replace(" ", "").upper() in self.exclude else ids
        word = _spelled_word(inside) if self.spelled else inside[1:] if inside.startswith(" ") else inside
        if word is None or (word and not self.is_open(word.upper())):
            return None
        pieces, closing = _pieces(self.tokenizer)
        whole = word.upper() in self.words and word.upper() not in self.exclude
        keep = [i for i in ids.tolist() if (i in closing and whole)
                or (i in pieces and self.is_open((word + pieces[i].lstrip(" ")).upper()))]
        return np.array(keep, dtype=np.int64)

    def allowed_ids(self, inside: str) -> np.ndarray | None:
        """Token ids allowed after `inside` (the text since `<guess>`); None = no constraint."""
        return self._allowed(inside)

    def allowed_after(self, tokens: Sequence[int]) -> np.ndarray | None:
        """Token ids allowed after this context (prompt + completion so far); None = no constraint."""
        tail = [int(t) for t in tokens[-LOOKBACK_TOKENS:]]
        inside = self.span_prefix(self.tokenizer.decode(tail))
        if inside is None:
            return None
        ids = self.allowed_ids(inside)
        return None if ids is None or len(ids) == 0 else ids

    def __call__(self, tokens: mx.array, logits: mx.array) -> mx.array:
        """tokens: (T,) or (1, T) context ids; logits: (1, V)."""
        ids = self.allowed_after(np.array(tokens).reshape(-1).tolist())
        if ids is None:
            return logits
        mask = np.full((logits.shape[-1],), -np.inf, dtype=np.float32)
        mask[ids[ids < logits.shape[-1]]] = 0.0
        return logits + mx.array(mask)


def mask_processor(tokenizer, mask: str, played: Sequence[str] = (),
                   guess_style: str = "upper") -> AllowedWordsProcessor | None:
    """The logits processor of a legal-move mask for one game: None for `none`; `allowed`; `allowed_new`
    (the words already `played` removed too); spelled letter by letter for the `letters` guess style."""
    if mask not in MASKS:
        raise ValueError(f"mask: expected one of {', '.join(MASKS)}, got {mask!r}")
    if mask == "none":
        return None
    return AllowedWordsProcessor(tokenizer, exclude=played if mask == "allowed_new" else (),
                                 spelled=guess_style == "letters")
