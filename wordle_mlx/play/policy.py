"""A language model as a Wordle policy: prompt -> greedy (or sampled) completion -> guess.

`load_policy(model, adapter)` loads a model (with its LoRA adapters) as a policy that answers the way the
adapters were trained (prompt format, think layout, legal-move mask), unless told otherwise.
`ModelPolicy.guess_batch(histories)` renders every game's prompt, samples one completion per
game in one batched generation (wordle_mlx.play.rollout) and returns the parsed guess, or the raw text
inside the guess tag (or "" when there is none) so the game engine reports it as invalid and the
turn is spent, the same rule the solvers are measured under. Earlier invalid answers are listed in
the next prompt ("Not valid words (not accepted): ..."); without that, a greedy model facing an
unchanged prompt repeats the same invalid word until the game is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from wordle_mlx.play import prompts, rollout
from wordle_mlx.wordle.game import Turn
from wordle_mlx.wordle.solvers import Policy


class ModelPolicy(Policy):
    name = "model"

    def __init__(self, model, tokenizer, fmt: str = "plain", temperature: float = 0.0, max_tokens: int = 96,
                 label: str = "model", think: bool = True, logits_processors: list | None = None,
                 mask: str = "none", guess_style: str = "upper"):
        self.model, self.tokenizer = model, tokenizer
        self.fmt, self.temperature, self.max_tokens, self.label = fmt, temperature, max_tokens, label
        self.think = think
        self.logits_processors = logits_processors
        self.mask = mask  # legal-move mask per game (wordle_mlx.play.guided): none, allowed, allowed_new
        self.guess_style = guess_style  # how the model writes a guess; `letters` is masked letter by letter
        self.last_completions: list[str] = []
        self.last_parsed: list[prompts.Parsed] = []
        self.on_progress = None  # set by the evaluator: told the fraction of the current batch that is done

    sees_rejected = True  # the evaluator passes earlier invalid answers, shown in the prompt

    def guess_batch(self, histories: Sequence[Sequence[Turn]], rejected: Sequence[Sequence[str]] | None = None) -> list[str]:
        rejected = rejected or [()] * len(histories)
        prompt_ids = [rollout.chat_prompt(self.tokenizer, prompts.build_messages(h, self.fmt, rejected=r))
                      for h, r in zip(histories, rejected)]
        per_game = None
        if self.mask != "none":
            from wordle_mlx.play import guided

            per_game = [[guided.mask_processor(self.tokenizer, self.mask, [t.guess for t in h], self.guess_style)]
                        for h in histories]
        groups = rollout.sample_groups(self.model, self.tokenizer, prompt_ids, 1, self.temperature, self.max_tokens,
                                       logits_processors=self.logits_processors, on_progress=self.on_progress,
                                       prompt_processors=per_game)
        self.last_completions = [g[0].text for g in groups]
        self.last_parsed = [prompts.parse_completion(text, strict=True, think=self.think) for text in self.last_completions]
        return [parsed.attempt for parsed in self.last_parsed]

    def describe(self) -> dict:
        return {"name": self.label, "format": self.fmt, "temperature": self.temperature, "think": self.think,
                "guided": bool(self.logits_processors) or self.mask != "none", "mask": self.mask,
                **({"guess_style": self.guess_style} if self.guess_style != "upper" else {})}


def run_answer_settings(adapter_path: str | Path | None) -> dict:
    """The prompt format, think layout, legal-move mask and guess style an adapter was trained with: from its adapter_config.json
    (`wordle_mlx.sampling`, written by `lora.export_adapters`), else from its run's saved config
    (`<run>/config.json` beside `<run>/adapters`); {} when there is neither."""
    if adapter_path is None:
        return {}
    for path, keys in ((Path(adapter_path) / "adapter_config.json", ("wordle_mlx", "sampling")),
                       (Path(adapter_path).parent / "config.json", ("sampling",))):
        try:
            sampling = json.loads(path.read_text())
            for k in keys:
                sampling = sampling.get(k, {})
        except (OSError, ValueError, AttributeError):
            continue
        found = {k: sampling[k] for k in ("prompt_format", "think", "mask", "guess_style") if k in sampling}
        if found:
            return found
    return {}


def load_policy(model_name: str, adapter_path: str | Path | None = None, *, fmt: str | None = None,
                think: bool | None = None, mask: str | None = None, temperature: float = 0.0, max_tokens: int = 96,
                label: str = "model") -> ModelPolicy:
    """`model_name` (with `adapter_path`'s adapters) as a policy. Prompt format, think layout and mask default to the
    adapters' (`run_answer_settings`), else plain, think on, no mask. Raises models.ModelLoadError."""
    from wordle_mlx.model import models

    trained = run_answer_settings(adapter_path)
    model, tokenizer = models.load_model(model_name, adapter_path=adapter_path)
    return ModelPolicy(model, tokenizer, fmt or trained.get("prompt_format", "plain"), temperature, max_tokens,
                       label=label, think=trained.get("think", True) if think is None else think,
                       mask=mask or trained.get("mask", "none"), guess_style=trained.get("guess_style", "upper"))
