"""Run configuration: pydantic models grouped by concern, loaded from JSON or YAML.

Unknown keys, wrong types and out-of-range values are rejected with one line naming the key
(`ConfigError`). Dotted overrides (`sampling.num_generations=8`) are applied before validation;
their values are parsed as JSON when possible (numbers, booleans, lists), else kept as strings.
The resolved config is what `save_config` writes into a run directory.

No MLX here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_TARGETS = ["q", "k", "v", "o", "gate", "up", "down"]


Rows = Annotated[int, Field(ge=1)] | Literal["auto"]  # a batch size, or "auto": sized by memory (model.memory)


class ConfigError(ValueError):
    """A config file or override that cannot be used (one line)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    name: str = Field(DEFAULT_MODEL, description="built-in name, .gguf file, mlx-lm directory or HF id")
    adapter_path: str | None = Field(None, description="start from these LoRA adapters (e.g. an SFT run)")
    dequantize: Literal["auto", "none", "float32", "bfloat16", "float16"] = Field(
        "auto", description="quantized built-in/GGUF weights: a float copy (auto: float32 on the CPU, where "
        "quantized matmuls are slow) or kept quantized (none)")


class LoraConfig(_Section):
    rank: int = Field(16, ge=1, le=1024, description="LoRA rank")
    alpha: float = Field(32.0, gt=0, description="scale = alpha / rank unless scale is set")
    scale: float | None = Field(None, gt=0, description="LoRA output scale; None = alpha / rank")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the LoRA input")
    num_layers: int = Field(-1, ge=-1, description="last N blocks get adapters; -1 = all")
    targets: list[str] = Field(default_factory=lambda: list(DEFAULT_TARGETS), min_length=1,
                               description="projections that get adapters: q k v o (attention), gate up down (MLP)")


class SamplingConfig(_Section):
    num_generations: int = Field(8, ge=2, description="completions per game turn (the GRPO group)")
    temperature: float = Field(0.7, gt=0.0, description="GRPO sampling temperature (log-probs in the loss use it too)")
    temperature_after_invalid: float | None = Field(
        None, gt=0.0, description="GRPO: sampling temperature once an invalid answer cost the game a turn "
        "(training.play_on_invalid), where a greedy-like group repeats it; None = temperature")
    hot_after_invalid_answers: int = Field(
        1, ge=1, description="GRPO: invalid answers a game must have spent before temperature_after_invalid "
        "applies (2: the first turn after an invalid answer still samples at temperature)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling; 1 = off")
    max_new_tokens: int = Field(16, ge=1, description="longest answer (the recipe's answers are a <guess> only)")
    max_prompt_tokens: int = Field(320, ge=16, description="a longer prompt stops the run with one error line")
    prompt_format: Literal["plain", "symbols", "rows", "compact"] = Field(
        "compact", description="how the game state is written (compact: one line per guess)")
    think: bool = Field(False, description="answers start with a <think> block (False: the sft.think_style none layout)")
    mask: Literal["none", "allowed", "allowed_new"] = Field(
        "none", description="legal-move mask on the <guess> span while sampling (and in the loss): allowed words "
        "only, or allowed words not yet played in the game (letter by letter for guess_style letters); evaluate "
        "and play use the adapter's by default")
    masked_games: float = Field(
        1.0, ge=0.0, le=1.0, description="GRPO: share of each step's games sampled under `mask` (the first "
        "round(share x games)); the others sample free, so one run learns both play modes")
    guess_style: Literal["upper", "word", "letters"] = Field(
        "upper", description="CRANE, ' crane' (one whole-word token) or ' C R A N E' (one token per letter)")

    @field_validator("masked_games")
    @classmethod
    def _needs_a_mask(cls, share: float, info) -> float:
        if share < 1.0 and info.data.get("mask", "none") == "none":
            raise ValueError("a share of masked games needs sampling.mask (allowed or allowed_new)")
        return share


class TrainingConfig(_Section):
    steps: int = Field(24, ge=1, description="GRPO steps (each plays games_per_step whole games)")
    games_per_step: int = Field(8, ge=1, description="whole games played per GRPO step")
    learning_rate: float = Field(4e-5, gt=0.0, description="AdamW peak rate (linear warmup, cosine to 10%)")
    warmup_steps: int = Field(2, ge=0)
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW weight decay")
    max_grad_norm: float = Field(1.0, gt=0.0, description="global gradient-norm clip")
    epsilon: float = Field(0.2, gt=0.0, lt=1.0, description="PPO clip below: ratio >= 1 - epsilon")
    epsilon_high: float = Field(0.28, gt=0.0, description="PPO clip above: ratio <= 1 + epsilon_high")
    beta: float = Field(0.0, ge=0.0, description="KL penalty (k3) to the reference policy (kl_reference)")
    kl_reference: Literal["start", "base"] = Field(
        "start", description="KL reference: the adapters the run starts from (model.adapter_path, e.g. the SFT "
        "policy; fresh adapters equal the base model) or the base model with adapters off")
    num_iterations: int = Field(1, ge=1, description="optimizer updates per batch of rollouts")
    loss_batch_size: Rows = Field("auto", description="sequences per forward/backward chunk of the loss (whole "
                                  "groups packed while they fit; the result does not depend on it); auto: 8 on "
                                  "the CPU, on a GPU the most that fit in memory")
    shared_prompt: bool = Field(True, description="GRPO update: each group's prompt once per chunk, log-probs at "
                                "completion positions only; false = the per-sequence reference path")
    memory_limit_gb: float | None = Field(None, gt=0.0, description="MLX memory limit (cache limit: a quarter of "
                                          "it); None = MLX's defaults")
    scale_rewards: bool = Field(True, description="divide group advantages by the group's reward std")
    dynamic_sampling: bool = Field(False, description="resample a zero-variance group once")
    play_on_invalid: bool = Field(False, description="a group without a valid new guess does not end its game: "
                                  "as in evaluation, the group's commonest answer costs the turn (a word is played, "
                                  "anything else is listed as not a word in the next prompts)")
    advance_on: Literal["best", "commonest"] = Field(
        "commonest", description="the answer each game goes on with: the group's best valid new guess, or its "
        "commonest answer (what greedy decoding most likely writes: training sees evaluation's states, invalid "
        "answers and repeats included, which cost the turn as with play_on_invalid)")
    guide: Literal["none", "frequent", "candidate-entropy", "entropy", "optimal"] = Field(
        "frequent", description="add this solver's answer to every group as one more completion (off-policy "
        "guidance): it is scored like the samples, counts in the group's advantages and is trained with its "
        "advantage; games still go on with the model's own answers")
    start_states: str | None = Field(None, description="RL start states JSONL from data_synth; None = make them on the fly")
    start_turns_max: int = Field(4, ge=0, le=5, description="earlier turns of sensible play in on-the-fly start states")
    checkpoint_every: int = Field(4, ge=1, description="steps between crash-safe checkpoints (also on Ctrl-C)")
    keep_adapters_every: int = Field(0, ge=0, description="also keep the adapters of every N-th step, standalone "
                                     "(float16, as export_adapters writes them), in <run>/kept/step_NNNN: "
                                     "neighbouring checkpoints of one run, to measure their spread; 0 = off")
    eval_every: int = Field(0, ge=0, description="steps between evaluations on a fixed eval subset; 0 = off")
    eval_games: int = Field(20, ge=1, description="games per eval_every evaluation")
    final_eval_games: int = Field(0, ge=0, description="at the end, greedy games on this many eval words (fixed, "
                                  "seed 0): wins, valid, consistent printed and saved as final_eval.json; 0 = off")
    final_eval_start: bool = Field(True, description="with final_eval_games: the run's start (model.adapter_path, or "
                                   "the base model) plays the same words too, for one before/after line")
    seed: int = Field(0, description="seeds games, sampling and SFT data")


class RewardWeights(_Section):
    """Weight of each reward component in the total (all >= 0)."""

    format: float = Field(0.5, ge=0.0, description="the answer has the expected tags")
    feedback: float = Field(0.5, ge=0.0, description="the guess is an allowed five-letter word")
    consistency: float = Field(1.0, ge=0.0, description="the guess fits all feedback so far")
    information: float = Field(0.5, ge=0.0, description="expected information of the guess (entropy table)")
    win: float = Field(1.0, ge=0.0, description="the guess is the secret (plus early_win_bonus per unused guess)")
    repeat: float = Field(1.0, ge=0.0, description="penalty for a word already played")
    think_length: float = Field(0.0, ge=0.0, description="penalty for think text past think_target_chars")
    value: float = Field(0.0, ge=0.0, description="the guess's value for winning: the frequent solver's mean score "
                         "playing on after it, over the candidates (wordle_mlx.wordle.value)")


FORMAT_HEAVY = RewardWeights(format=1.0, feedback=0.2, consistency=0.2, information=0.1, win=0.5, repeat=1.0)
STRATEGY_HEAVY = RewardWeights()


class RewardsConfig(_Section):
    weights: RewardWeights = Field(default_factory=lambda: STRATEGY_HEAVY.model_copy(),
                                   description="strategy-heavy weights (used after the curriculum switch)")
    curriculum: bool = Field(False, description="start with format_weights until format compliance passes the threshold")
    format_weights: RewardWeights = Field(default_factory=lambda: FORMAT_HEAVY.model_copy(),
                                          description="format-heavy weights used before the curriculum switch")
    switch_threshold: float = Field(0.9, gt=0.0, le=1.0, description="rolling format compliance that switches weights")
    window: int = Field(64, ge=1, description="completions in the rolling compliance window")
    early_win_bonus: float = Field(0.1, ge=0.0, description="extra win reward per unused guess")
    strict_format: bool = Field(True, description="format reward 1.0 needs exactly <think>..</think><guess>..</guess>")
    think_target_chars: int = Field(300, ge=1, description="think longer than this costs (if think_length > 0)")
    ordering: bool = Field(True, description="valid guesses in tiers: fits the feedback > does not fit > repeated "
                           "(any weights); false = the plain weighted sum")
    fit_margin: float = Field(3.0, ge=1.0, description="with ordering: a fitting word sits this many tier gaps above "
                              "a valid word that does not fit (1 = evenly spaced tiers; larger pushes harder toward "
                              "fitting words while a misfit still beats a made-up word)")
    repeat_as_invalid: bool = Field(True, description="a repeated word scores exactly like a word that is not "
                                    "allowed: both only waste a turn, so copying a tried word earns nothing over "
                                    "a made-up one")
    inconsistent_as_invalid: bool = Field(False, description="a valid word that does not fit the feedback (repeats "
                                          "included) scores exactly like a word that is not allowed: only guesses "
                                          "that could still win earn anything over a wasted turn")
    rejected_again_lowest: bool = Field(True, description="with training.play_on_invalid: an answer already "
                                        "rejected in this game (listed under `not words`) scores below every other "
                                        "completion, so writing it again is the worst thing a sample can do")


class LoggingConfig(_Section):
    logs_dir: str = Field("logs", description="where run directories go")
    run_name: str | None = Field(None, description="run directory name under logs_dir (default: a timestamp)")
    samples_per_step: int = Field(8, ge=0, description="full completions written to samples.jsonl per step")
    progress: bool = Field(True, description="rich progress bars on a terminal (plain lines otherwise)")
    report_to: Literal["none", "wandb", "trackio", "tensorboard"] = Field(
        "none", description="also send each metrics.jsonl line to this tracker (an optional extra: pip install "
        "-e \".[wandb]\"; wandb offline unless WANDB_MODE/WANDB_API_KEY say otherwise, tensorboard files in "
        "<run>/tensorboard); metrics.jsonl stays the source of truth")


class SFTConfig(_Section):
    train_file: str | None = Field(None, description="data_synth --mode sft JSONL; None = make num_examples now")
    valid_file: str | None = Field(None, description="held-out SFT JSONL; None = make num_valid now (another seed)")
    num_examples: int = Field(24000, ge=1, description="training examples made at the start (train split only)")
    num_valid: int = Field(64, ge=1, description="held-out examples (another seed) for the held-out loss")
    policy: Literal["entropy", "optimal", "frequent", "candidate-entropy"] = Field(
        "frequent", description="target solver; frequent / candidate-entropy only play words that still fit")
    think_style: Literal["scratchpad", "count", "none"] = Field(
        "none", description="think text before the guess: none (the recipe), a scratchpad of candidates, a count")
    think_max_chars: int = Field(200, ge=10, description="think text is cut to this length")
    max_turns: int = Field(5, ge=0, le=5, description="earlier turns in generated examples: min_turns..max_turns")
    min_turns: int = Field(0, ge=0, le=5, description="more late-game states: raise this")
    rejected_rate: float = Field(0.2, ge=0.0, le=1.0, description="share of states listing 1-2 earlier invalid answers")
    repeat_rate: float = Field(0.2, ge=0.0, le=1.0, description="share of states (with a turn) that replay one "
                               "earlier guess, as a stuck greedy model does")
    mistake_style: Literal["random", "near"] = Field(
        "random", description="the listed invalid answers: random (unrelated strings) or near (the target with one "
        "letter changed, not a word: what a model that fits the feedback but misspells writes)")
    consistent_target_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="share of examples whose target is a uniformly random answer that still "
        "fits (policy consistent) instead of the policy's word: spells more of the answer list")
    max_copies: int | None = Field(None, ge=1, description="keep an example (prompt and answer) at most this many "
                                   "times; the opening (no earlier turn, one answer) is ~13% of made examples. "
                                   "None = keep all (the recipe's data)")
    data_chunks: int = Field(1, ge=1, le=1024, description="make the examples in this many independently seeded "
                             "chunks, one process per CPU core (the same data for the same value on any machine); "
                             "1 = one process, the recipe's data")
    iters: int = Field(1500, ge=1, description="optimizer steps")
    batch_size: Rows = Field("auto", description="examples per optimizer step; auto: 16 on the CPU (the recipe), "
                             "on a GPU the most that fit in memory")
    learning_rate: float = Field(3e-4, gt=0.0, description="AdamW peak rate (linear warmup, cosine to 10%)")
    warmup_steps: int = Field(20, ge=0)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0, description="global gradient-norm clip")
    eval_every: int = Field(100, ge=1, description="steps between held-out losses")
    checkpoint_every: int = Field(50, ge=1, description="steps between crash-safe checkpoints (also on Ctrl-C)")
    keep_adapters_every: int = Field(0, ge=0, description="also keep the adapters of every N-th step, standalone "
                                     "(float16), in <run>/kept/step_NNNN; 0 = off")
    max_seq_tokens: int = Field(512, ge=16, description="longer examples are an error, not silently cut")
    shared_prefix: bool = Field(True, description="run each batch's common prompt prefix (chat template, system "
                                "prompt) once; logits are always computed at completion positions only")


class Config(_Section):
    model: ModelConfig = Field(default_factory=ModelConfig)
    lora: LoraConfig = Field(default_factory=LoraConfig)
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    rewards: RewardsConfig = Field(default_factory=RewardsConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as err:
        raise ConfigError(f"{path}: not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: {err}".splitlines()[0]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_override(data: dict, override: str) -> None:
    """Apply `a.b.c=value` to a nested dict in place."""
    if "=" not in override:
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. sampling.num_generations=8")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part} is not a section")
        node = child
    node[parts[-1]] = _parse_value(value.strip())


def _format_error(source: str, err: ValidationError) -> str:
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"])
    msg = e["msg"]
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    got = e.get("input")
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    shown = "" if e["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    return f"{source}: {key}: {msg}{shown}{more}"


def config_from_dict(data: dict, source: str = "config", overrides: Sequence[str] = ()) -> Config:
    """Validate; the one error line names the `--set` override that set the bad key, else `source`."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        key = ".".join(str(p) for p in err.errors()[0]["loc"])
        for override in reversed(overrides):  # the last override of a key is the one that counts
            set_key = override.split("=", 1)[0].strip()
            if set_key == key or set_key.startswith(key + ".") or key.startswith(set_key + "."):
                source = f"--set {override}"
                break
        raise ConfigError(_format_error(source, err)) from None


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Read a JSON/YAML config (or defaults when path is None), apply overrides, validate."""
    data = _read(Path(path)) if path is not None else {}
    for override in overrides:
        apply_override(data, override)
    return config_from_dict(data, str(path) if path is not None else "config", overrides)


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config.model_dump(), indent=2) + "\n")
    return path


def _type_name(annotation) -> str:
    """A short type for the reference: int, float, bool, str, a | b, one of ..."""
    import typing

    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(json.dumps(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " \\| ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin is Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin is list:
        return f"list[{_type_name(typing.get_args(annotation)[0])}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def config_reference() -> str:
    """docs/config.md: every key of every section, with type, default and description (markdown)."""
    lines = ["# Config reference", "",
             "Every key a run config (JSON or YAML) may set, by section, with its type and default; generated from",
             "the pydantic models in `wordle_mlx/config.py` by `python -m scripts.config_reference` (a test keeps it",
             "in sync). A config names only what differs from these defaults, which are the recipe (the shipped",
             "player's settings): `{\"model\": {\"adapter_path\": \"adapters/recipe_sft_long\"}}` is the recipe's GRPO run.",
             "Override any key from the command line with `--set section.key=value`.", ""]

    def section(name: str, model: type[BaseModel], prefix: str, instance: BaseModel) -> None:
        lines.extend([f"## `{prefix}{name}`", ""])
        if model.__doc__ and not model.__doc__.startswith("Usage docs"):
            lines.extend([model.__doc__.strip(), ""])
        lines.extend(["| key | type | default | description |", "|---|---|---|---|"])
        nested = []
        for key, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((key, annotation))
                lines.append(f"| `{key}` | section | see `{prefix}{name}.{key}` | {field.description or ''} |")
                continue
            default = getattr(instance, key)
            if isinstance(default, BaseModel):
                default = default.model_dump()
            description = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{key}` | {_type_name(annotation)} | `{json.dumps(default)}` | {description} |")
        lines.append("")
        for key, sub in nested:
            section(key, sub, f"{prefix}{name}.", getattr(instance, key))

    defaults = Config()
    for name, field in Config.model_fields.items():
        section(name, field.annotation, "", getattr(defaults, name))
    return "\n".join(lines)
