"""Figures people look at: training curves from metrics.jsonl, guess histograms from evaluate JSON.

matplotlib with the Agg backend (no screen needed); every function writes one PNG and returns it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402

from wordle_mlx import jsonl  # noqa: E402
from wordle_mlx.train.rewards import COMPONENTS  # noqa: E402


class PlotError(ValueError):
    """A file that cannot be plotted (one line)."""


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def read_metrics(path: str | Path, warn=None) -> list[dict]:
    """The lines of a metrics.jsonl. A last line cut short (a run killed while writing it; `--resume` drops
    it too) is skipped, and `warn` (default: print to stderr) is told; a bad line before it is an error."""
    p = Path(path)
    if not p.is_file():
        raise PlotError(f"metrics file not found: {p}")
    last = len(p.read_text().rstrip().splitlines())
    rows = []
    try:
        for _, row in jsonl.iter_lines(p):
            rows.append(row)
    except jsonl.BadLine as err:
        if err.line != last:
            raise PlotError(f"{p} {err}") from None
        (warn or (lambda msg: print(msg, file=sys.stderr)))(
            f"warning: {p} line {err.line} is cut short (the run stopped while writing it); plotting the lines before it")
    if not rows or "step" not in rows[0]:
        raise PlotError(f"{p}: expected JSONL lines with a 'step' key (a train_rl or train_sft metrics.jsonl)")
    return rows


def rolling(values: Sequence[float], window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    out = np.empty_like(v)
    for i in range(len(v)):
        out[i] = v[max(0, i - window + 1) : i + 1].mean()
    return out


X_AXES = ("step", "minutes")


def _x(metrics: list[dict], x: str) -> tuple[list[float], str]:
    """The x values and label: steps, or training minutes (`elapsed_s` of each line)."""
    if x not in X_AXES:
        raise PlotError(f"x axis: expected one of {', '.join(X_AXES)}, got {x!r}")
    if x == "minutes":
        if "elapsed_s" not in metrics[0]:
            raise PlotError("metrics have no elapsed_s: cannot plot against minutes")
        return [m["elapsed_s"] / 60 for m in metrics], "training minutes"
    return [m["step"] for m in metrics], "step"


def _style_x(ax, x: str) -> None:
    if x == "step":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers


def training_figure(metrics: list[dict], window: int = 10, title: str | None = None, x: str = "step"):
    """2x2 panel: cumulative wins + rolling win rate, reward components, groups and guesses, loss."""
    if "cumulative_wins" not in metrics[0]:
        raise PlotError("metrics have no cumulative_wins: expected a train_rl metrics.jsonl")
    xs, xlabel = _x(metrics, x)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0][0]
    wins = [m["cumulative_wins"] for m in metrics]
    ax.plot(xs, wins, color="tab:green", label="cumulative wins")
    ax.set_ylim(0, max(1, max(wins)) * 1.05)  # from 0, also when nothing is won yet
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("cumulative wins")
    twin = ax.twinx()
    twin.plot(xs, 100 * rolling([m["win_rate"] for m in metrics], window), color="tab:blue", alpha=0.7,
              label=f"win rate (rolling {window})")
    twin.set_ylabel("win rate %")
    twin.set_ylim(-2, 102)  # a 0% line stays visible above the axis
    ax.set_title("games won")
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)
    ax = axes[0][1]
    ax.plot(xs, rolling([m["reward_mean"] for m in metrics], window), color="black", lw=2, label="total (weighted)")
    ax.set_ylabel("total reward")
    parts = ax.twinx()  # the components are logged before their weights: their own scale, on the right
    for k in COMPONENTS:
        key = f"reward_{k}"
        if key in metrics[0]:  # every logged component, also one that stays at 0
            parts.plot(xs, rolling([m[key] for m in metrics], window), lw=1, label=k)
    parts.axhline(0, color="gray", lw=0.5)
    parts.set_ylabel("component (unweighted)")
    ax.set_title(f"reward (rolling {window})")
    ax.legend(loc="upper left", fontsize=7)
    parts.legend(fontsize=7, ncol=2, loc="lower right", title="components, unweighted (right axis)", title_fontsize=7)
    ax = axes[1][0]
    ax.plot(xs, [100 * m["skipped_group_fraction"] for m in metrics], color="tab:red", label="zero-variance groups")
    if "valid_guess_rate" in metrics[0]:
        ax.plot(xs, [100 * m["valid_guess_rate"] for m in metrics], color="tab:purple", label="valid guesses")
    if "consistent_rate" in metrics[0]:
        ax.plot(xs, [100 * m["consistent_rate"] for m in metrics], color="tab:green", label="fitting guesses")
        ax.plot(xs, [100 * m["consistent_group_fraction"] for m in metrics], color="tab:olive", ls="--",
                label="groups with a fitting sample")
        ax.plot(xs, [100 * m["repeat_rate"] for m in metrics], color="tab:gray", label="repeated guesses")
    ax.set_ylim(-2, 102)
    ax.set_ylabel("%")
    ax.set_title("groups and guesses")
    ax.legend(fontsize=8)
    ax = axes[1][1]
    ax.plot(xs, [m["loss"] for m in metrics], label="loss")
    ax.plot(xs, [m["grad_norm"] for m in metrics], label="grad norm", alpha=0.7)
    ax.set_title("optimisation")
    ax.legend(fontsize=8)
    for ax in [*axes[0], *axes[1]]:
        ax.set_xlabel(xlabel)
        _style_x(ax, x)
    if len(xs) == 1:
        _single_point(fig, xs[0], x)
    fig.suptitle(title or "GRPO training")
    return fig


def _single_point(fig, x0: float, x: str) -> None:
    """A one-step run: markers (a line of one point draws nothing) and an x range around it."""
    for ax in fig.axes:
        for line in ax.get_lines():
            if len(line.get_xdata()) == 1:
                line.set_marker("o")
        ax.set_xlim(x0 - 1, x0 + 1) if x == "step" else ax.set_xlim(0, max(1.0, 2 * x0))


def plot_training(metrics: list[dict], out: str | Path, window: int = 10, title: str | None = None,
                  x: str = "step") -> Path:
    """`training_figure` written as a PNG."""
    return _save(training_figure(metrics, window, title, x), out)


def plot_sft(metrics: list[dict], out: str | Path, window: int = 10, title: str | None = None, x: str = "step") -> Path:
    """Training loss (raw and rolling) and held-out loss of an SFT run."""
    if "train_loss" not in metrics[0]:
        raise PlotError("metrics have no train_loss: expected a train_sft metrics.jsonl")
    steps, xlabel = _x(metrics, x)
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(steps, [m["train_loss"] for m in metrics], color="tab:blue", alpha=0.3, label="train loss (batch)")
    ax.plot(steps, rolling([m["train_loss"] for m in metrics], window), color="tab:blue", label=f"train (rolling {window})")
    held = [(xv, m["valid_loss"]) for xv, m in zip(steps, metrics) if "valid_loss" in m]
    if held:
        ax.plot(*zip(*held), "o-", color="tab:orange", label="held-out loss")
    ax.set_xlabel(xlabel)
    _style_x(ax, x)
    if len(steps) == 1:
        _single_point(fig, steps[0], x)
    ax.set_ylabel("completion cross-entropy (nats/token)")
    ax.set_yscale("log")
    ax.set_title(title or "SFT")
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_histograms(reports: list[dict], out: str | Path, title: str | None = None) -> Path:
    """Grouped bars: share of games solved in 1..6 guesses or failed, one colour per report."""
    keys = ["1", "2", "3", "4", "5", "6", "fail"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / max(len(reports), 1)
    x = np.arange(len(keys))
    for i, r in enumerate(reports):
        if "histogram" not in r:
            raise PlotError("an evaluate report has no histogram (expected scripts.evaluate --json output)")
        counts = np.array([r["histogram"].get(k, 0) for k in keys], dtype=float)
        label = r.get("label") or r.get("policy", {}).get("name", f"report {i}")
        ax.bar(x + i * width - 0.4 + width / 2, 100 * counts / max(r["n_games"], 1), width,
               label=f"{label} ({100 * r['win_rate']:.0f}% wins)")
    ax.set_xticks(x, [f"{k}" if k != "fail" else "failed" for k in keys])
    ax.set_xlabel("guesses to solve")
    ax.set_ylabel("% of games")
    ax.set_title(title or "guess histogram")
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_study(reports: list[dict], out: str | Path, title: str | None = None) -> Path:
    """Win rate and consistent-guess rate of model variants against their training minutes
    (`training_minutes` in each report, see evaluate.training_minutes); one labelled point each."""
    points = [r for r in reports if r.get("training_minutes") is not None]
    if not points:
        raise PlotError("no report has training minutes (evaluate a model with --adapter from a logged run)")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, key, name in ((axes[0], "consistent_rate", "consistent guesses (%)"), (axes[1], "win_rate", "win rate (%)")):
        for r in points:
            value = 100 * (r.get(key) or 0.0)
            ax.scatter(r["training_minutes"], value, s=40)
            label = str(r.get("label", "?")).removeprefix("SFT ")
            ax.annotate(label if len(label) <= 32 else label[:30] + "..", (r["training_minutes"], value), fontsize=7,
                        xytext=(4, 3 + 7 * (points.index(r) % 3)), textcoords="offset points")
        ax.set_xlabel("training wall-clock minutes (this 2-core CPU)")
        ax.set_ylabel(name)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "Strategy study: what each variant bought per training minute")
    return _save(fig, out)


def _kept_point(report: dict) -> tuple[str, float]:
    """(run name, the run's training minutes at that step) of a report on `<run>/kept/step_NNNN` adapters."""
    adapter = Path(str(report.get("adapter") or ""))
    if adapter.parent.name != "kept":
        raise PlotError(f"report {report.get('label', '?')!r}: its adapter {adapter} is not a kept step "
                        "(<run>/kept/step_NNNN, training.keep_adapters_every)")
    run, step = adapter.parent.parent, int(adapter.name.split("_")[-1])
    try:
        line = next(m for m in read_metrics(run / "metrics.jsonl") if m["step"] == step)
    except StopIteration:
        raise PlotError(f"{run / 'metrics.jsonl'} has no step {step}") from None
    return run.name, line["elapsed_s"] / 60


def _percent_bars(hits: Sequence[int], totals: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(percentages (N,), their 95% Wilson error bars (2, N)) for errorbar()."""
    from wordle_mlx.play.evaluate import wilson_interval

    pct = np.array([100 * h / n for h, n in zip(hits, totals)])
    bounds = 100 * np.array([wilson_interval(h, n) for h, n in zip(hits, totals)]).T  # (2, N) low, high
    return pct, np.maximum([pct - bounds[0], bounds[1] - pct], 0)  # >= 0: float rounding at 0% or 100%


def _worth_more_counts(start: dict, points: list[tuple[float, dict]]) -> tuple[list[float], list[int], list[int]]:
    """(minutes, worth-more games, parted games without ties) of each checkpoint with games against `start`."""
    from wordle_mlx.play.evaluate import first_divergence

    xs, more, parted = [], [], []
    for minutes, r in points:
        d = first_divergence(start, r) if "games" in r else {"b_higher": 0, "b_lower": 0}
        if d["b_higher"] + d["b_lower"]:
            xs.append(minutes)
            more.append(d["b_higher"])
            parted.append(d["b_higher"] + d["b_lower"])
    return xs, more, parted


def plot_curve(reports: list[dict], out: str | Path, starts: Sequence[dict] = (), title: str | None = None) -> Path:
    """Learning curves for reading, not picking: wins (95% Wilson intervals) and consistent guesses of a
    run's kept checkpoints against the run's training minutes, one line per run and play mode (free or
    the mask); `starts`: the start's reports, drawn at 0 minutes on every line of their play mode. Where
    a start report and the checkpoint's have their games, a third panel pairs them at each game's first
    different attempt (`evaluate.first_divergence`): the share of those games where the checkpoint's
    attempt is worth more for winning than the start's (ties left out; 50% = no better)."""
    series: dict[tuple[str, str], list[tuple[float, dict]]] = {}
    for r in reports:
        run, minutes = _kept_point(r)
        series.setdefault((run, r.get("mask", "none")), []).append((minutes, r))
    if not series:
        raise PlotError("no reports to plot")
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    for (run, mask), points in sorted(series.items()):
        label = f"{run}, {'free' if mask == 'none' else mask}"
        paired = [s for s in starts if s.get("mask", "none") == mask and "games" in s]
        if paired:
            xs, more, parted = _worth_more_counts(paired[0], sorted(points, key=lambda p: p[0]))
            if xs:
                share, bars = _percent_bars(more, parted)
                axes[2].errorbar(xs, share, yerr=bars, marker="o", capsize=3, label=label)
        points = sorted([(0.0, s) for s in starts if s.get("mask", "none") == mask] + points, key=lambda p: p[0])
        xs = [m for m, _ in points]
        wins, bars = _percent_bars([r["wins"] for _, r in points], [r["n_games"] for _, r in points])
        axes[0].errorbar(xs, wins, yerr=bars, marker="o", capsize=3, label=label)
        axes[1].plot(xs, [100 * (r.get("consistent_rate") or 0.0) for _, r in points], marker="o", label=label)
    axes[2].axhline(50, color="grey", linestyle="--", linewidth=1)
    for ax, name in ((axes[0], "wins (% of the eval words, 95% interval)"), (axes[1], "consistent guesses (%)"),
                     (axes[2], "first different attempt worth more\nthan the start's (% of games, 95% interval)")):
        ax.set_xlabel("training minutes after the start (this machine)")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(title or "Kept checkpoints of a run (for reading, not for picking)")
    return _save(fig, out)
