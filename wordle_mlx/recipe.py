"""The whole recipe in one call: SFT from the base model, GRPO from its adapters, both exported, both
players evaluated on the eval words (free and under the GRPO run's legal-move mask), plots and a summary.

    run(sft_config, grpo_config, out, eval_words=315) -> summary dict

Layout of `out` (ship `adapters/` as e.g. `adapters/recipe_gpu`, with `eval_*.json` as its reports):

    sft/, grpo/              the two training runs (config, data, metrics.jsonl, checkpoint/, adapters/)
    adapters_sft/, adapters/ float16 exports of the SFT and GRPO adapters (`scripts.export_adapters`)
    eval_sft_free.json, eval_free.json, eval_masked.json, eval_sft_masked.json
                             greedy games on the first `eval_words` eval words (seed 0; all 315 by default):
                             each player free and, when GRPO trained under a mask, under that mask
    sft.png, training.png, histogram.png   SFT losses, the GRPO run, guess histograms
    summary.json             minutes per stage, device, commit, the headline figures of every report, GRPO
                             against its SFT start in each play mode (wins: McNemar; consistency: permutation)

The GRPO run starts from the SFT run's adapters (its `model.name`, `model.adapter_path` and `lora` are
the SFT run's). Every stage is skipped when its output exists, and a training run cut short resumes from its
checkpoint, so the same call continues an interrupted recipe. Simplification: the stages run one after
the other in one process (the SFT player is evaluated before GRPO starts); each evaluation loads the exported float16 adapters (what ships).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from wordle_mlx import plots
from wordle_mlx.config import Config
from wordle_mlx.model import lora
from wordle_mlx.play import evaluate
from wordle_mlx.play.policy import load_policy, run_answer_settings
from wordle_mlx.train import checkpoint, sft, train_rl
from wordle_mlx.wordle import words as wordlists


def _in_out(config: Config, out: Path, run_name: str, **model) -> Config:
    """`config` with its run directory `out/run_name` (and the given model keys)."""
    return config.model_copy(update={
        "logging": config.logging.model_copy(update={"logs_dir": str(out), "run_name": run_name}),
        "model": config.model.model_copy(update=model)})


def _train(trainer, config: Config, run_dir: Path, console) -> None:
    """Run `trainer` (sft or train_rl) into run_dir unless its adapters exist; resume a cut-short run."""
    if (run_dir / "adapters" / lora.ADAPTER_WEIGHTS).exists():
        console.print(f"{run_dir}: trained already (adapters/), skipped")
        return
    resume = run_dir if checkpoint.exists(run_dir) else None
    trainer.train(None if resume else config, resume=resume, console=console)


def _export(run_dir: Path, out: Path, base_model: str) -> Path:
    return lora.export_adapters(run_dir / "adapters", out, "float16", run_answer_settings(run_dir / "adapters"),
                                base_model)


def commit() -> str | None:
    """The checkout's commit (short hash, `+dirty` with uncommitted changes to tracked files), or None."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "") if head else None


def hardware() -> str:
    """What trains here, in words: MLX's default device and its name (e.g. `gpu: NVIDIA H200`)."""
    import mlx.core as mx

    device = mx.default_device()
    kind = "gpu" if device.type == mx.DeviceType.gpu else "cpu"
    name = mx.device_info().get("device_name") or mx.device_info().get("architecture") or "?"
    return f"{kind}: {name}"


def _evaluate(adapter: Path, mask: str, n: int, label: str, minutes: float | None, console) -> dict:
    """`scripts.evaluate`'s report of the adapters' greedy games on `n` eval words (seed 0) under `mask`."""
    base = lora.adapter_base_model(adapter)
    policy = load_policy(base, adapter, mask=mask, max_tokens=16, label=label)
    return evaluate.evaluate(policy, wordlists.sample_split("eval", n, seed=0), progress=console.is_terminal,
                             split="eval", seed=0, model=base, adapter=str(adapter), max_tokens=policy.max_tokens,
                             format=policy.fmt, think=policy.think, guided=mask != "none", mask=mask,
                             training_minutes=minutes, hardware=hardware(), commit=commit())


def headline(report: dict) -> dict:
    """The figures a leaderboard row shows."""
    keys = ("wins", "n_games", "win_rate", "valid_guess_rate", "consistent_rate", "repeat_rate", "mean_guesses")
    lo, hi = evaluate.wilson_interval(report["wins"], report["n_games"])
    return {**{k: report.get(k) for k in keys}, "win_interval": [lo, hi], "mask": report.get("mask", "none")}


def run(sft_config: Config, grpo_config: Config, out: str | Path, eval_words: int = 315, console=None) -> dict:
    """SFT, GRPO, exports, evaluations, plots and summary.json into `out` (module docstring); returns the summary."""
    from rich.console import Console

    console = console or Console(soft_wrap=True)
    out = Path(out)
    base = sft_config.model.name
    if grpo_config.model.name != base and grpo_config.model.name != Config().model.name:
        raise train_rl.TrainingError(f"the GRPO config's model.name {grpo_config.model.name!r} is not the SFT "
                                     f"config's {base!r}: the recipe trains one model")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    seconds: dict[str, float] = {}

    masks = ["none"] + ([grpo_config.sampling.mask] if grpo_config.sampling.mask != "none" else [])
    reports: dict[str, dict] = {}

    def evaluate_player(player: str, path: Path, minutes: float) -> None:
        """Each of `masks` once for this player, skipped where its report exists (into `reports`)."""
        t = time.perf_counter()
        for mask in masks:
            name = f"eval{'_sft' if player == 'sft' else ''}_{'free' if mask == 'none' else 'masked'}.json"
            if not (out / name).exists():
                console.print(f"evaluating {path} on {eval_words} eval words, mask {mask} ...")
                report = _evaluate(path, mask, eval_words, f"{out.name} {player}" + ("" if mask == "none" else
                                   f" (mask {mask})"), minutes, console)
                (out / name).write_text(json.dumps(report, indent=1) + "\n")
            reports[name] = json.loads((out / name).read_text())
        seconds["eval"] = seconds.get("eval", 0.0) + time.perf_counter() - t

    t = time.perf_counter()
    _train(sft, _in_out(sft_config, out, "sft"), out / "sft", console)
    sft_adapters = _export(out / "sft", out / "adapters_sft", base)
    seconds["sft"] = time.perf_counter() - t
    sft_lines = plots.read_metrics(out / "sft" / "metrics.jsonl")
    sft_minutes = sft_lines[-1]["elapsed_s"] / 60
    evaluate_player("sft", sft_adapters, sft_minutes)  # before GRPO: a recipe cut short still has these

    t = time.perf_counter()
    grpo = _in_out(grpo_config, out, "grpo", name=base, adapter_path=str(out / "sft" / "adapters"))
    grpo = grpo.model_copy(update={"lora": sft_config.lora,
                                   "training": grpo.training.model_copy(update={"final_eval_games": 0})})
    _train(train_rl, grpo, out / "grpo", console)
    adapters = _export(out / "grpo", out / "adapters", base)
    seconds["grpo"] = time.perf_counter() - t
    grpo_lines = plots.read_metrics(out / "grpo" / "metrics.jsonl")
    grpo_alone = grpo_lines[-1]["elapsed_s"] / 60
    evaluate_player("grpo", adapters, sft_minutes + grpo_alone)  # its training: its SFT start's and its own

    plots.plot_sft(sft_lines, out / "sft.png")
    plots.plot_training(grpo_lines, out / "training.png")
    plots.plot_histograms(list(reports.values()), out / "histogram.png")
    paired = {}  # GRPO against its SFT start in each play mode: wins (McNemar) and consistency (permutation)
    for mode in ("free", "masked"):
        start, player = reports.get(f"eval_sft_{mode}.json"), reports.get(f"eval_{mode}.json")
        if start and player:
            paired[mode] = {"wins": evaluate.paired_difference(start, player),
                            "consistency": evaluate.paired_consistency(start, player)}
    summary = {
        "model": base, "hardware": hardware(), "commit": commit(),
        "sft_minutes": sft_minutes, "grpo_minutes": grpo_alone,
        "wall_minutes_this_call": {k: v / 60 for k, v in {**seconds, "total": time.perf_counter() - started}.items()},
        "sft_seen": {"examples": sum(m.get("examples", 0) for m in sft_lines),  # prompt + completion, no padding
                     "tokens": sum(m.get("tokens", 0) for m in sft_lines)},
        "grpo_games": grpo_lines[-1].get("cumulative_games"),
        "reports": {name: headline(r) for name, r in reports.items()},
        "grpo_vs_sft": paired,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    for name, r in reports.items():
        console.print(f"{name}: won {r['wins']}/{r['n_games']} ({pct(r['win_rate'])}), valid {pct(r['valid_guess_rate'])}, "
                      f"consistent {pct(r['consistent_rate'])}, repeats {pct(r['repeat_rate'])}")
    for mode, d in paired.items():
        wins, fit = d["wins"], d["consistency"]
        fit_p = "n/a" if fit["p_value"] is None else f"{fit['p_value']:.2g}"
        console.print(f"GRPO vs its SFT start, {mode} play: won by GRPO only {wins['only_b']}, by SFT only "
                      f"{wins['only_a']} (exact McNemar p = {wins['p_value']:.2g}); consistent {pct(fit['rate_a'])} -> "
                      f"{pct(fit['rate_b'])} (paired permutation p = {fit_p})")
    console.print(f"summary in {out / 'summary.json'}")
    return summary

