"""The leaderboard: one row per shipped player or solver, every figure read from its evaluate reports.

`docs/leaderboard.json` lists the rows (who, model, how it was made: `method` SFT, GRPO or solver,
training hardware and minutes, the command, the commit, the report of its free play and, if any, of its
masked play; a GRPO row names its start's reports too, `start: {free, masked}`). `table(rows)` renders
them as the Markdown table that docs/results.md carries between LEADERBOARD markers, `table(rows,
compact=True)` the shorter one README.md carries (`python -m scripts.leaderboard --write`; a test keeps
both equal to the reports). A row is added with its report, never with typed-in figures. Wins carry 95%
Wilson intervals; a GRPO row, the paired tests over its start on the same words (wins: exact McNemar;
consistency: the paired permutation test).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from wordle_mlx.play.evaluate import paired_consistency, paired_difference, wilson_interval

START = "<!-- LEADERBOARD:START: made from docs/leaderboard.json by scripts/leaderboard.py --write -->"
END = "<!-- LEADERBOARD:END -->"
ROW_KEYS = ("player", "model", "method", "training", "command", "commit", "free", "masked")
METHODS = ("SFT", "GRPO", "solver")


class LeaderboardError(ValueError):
    pass


def load_rows(path: str | Path) -> list[dict]:
    """The rows of a leaderboard file: a JSON list of objects with ROW_KEYS (`free` or `masked` may be null:
    not measured)."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise LeaderboardError(f"cannot read {path}: {err}") from None
    if not isinstance(rows, list):
        raise LeaderboardError(f"{path}: expected a JSON list of rows")
    for i, row in enumerate(rows):
        missing = [k for k in ROW_KEYS if not isinstance(row, dict) or k not in row]
        if missing:
            raise LeaderboardError(f"{path}: row {i + 1} lacks {', '.join(missing)}")
        if row["method"] not in METHODS:
            raise LeaderboardError(f"{path}: row {i + 1}: method {row['method']!r} is not one of {', '.join(METHODS)}")
        if row["method"] == "GRPO" and not isinstance(row.get("start"), dict):
            raise LeaderboardError(f"{path}: row {i + 1}: a GRPO row names its start's reports (start: {{free, masked}})")
    return rows


def _report(root: Path, path: str) -> dict:
    try:
        return json.loads((root / path).read_text())
    except (OSError, ValueError) as err:
        raise LeaderboardError(f"report {path}: {err}") from None


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _wins(report: dict) -> str:
    wins, n = report["wins"], report["n_games"]
    lo, hi = wilson_interval(wins, n)
    return f"{wins}/{n} = {100 * wins / n:.1f}% ({100 * lo:.1f}-{100 * hi:.1f})"


def over_start(root: Path, row: dict, kind: str) -> str:
    """A GRPO row's paired tests over its start in one play mode: wins (McNemar) and consistency (permutation)."""
    start = (row.get("start") or {}).get(kind)
    if row["method"] != "GRPO" or not start or not row[kind]:
        return "-"
    a, b = _report(root, start), _report(root, row[kind])
    wins, fit = paired_difference(a, b), paired_consistency(a, b)
    return (f"wins {a['wins']} -> {b['wins']} (p {wins['p_value']:.2g}), consistent {100 * fit['rate_a']:.1f} -> "
            f"{100 * fit['rate_b']:.1f}% (p {fit['p_value']:.2g})")


def table(rows: list[dict], root: str | Path = ".", page_dir: str = ".", compact: bool = False) -> str:
    """The Markdown leaderboard; figures from each row's reports (paths relative to `root`), linked from
    a page in `page_dir` (relative to `root`). `compact`: wins and consistency only, for the README."""
    root = Path(root)
    link = lambda path: os.path.relpath(root / path, root / page_dir)  # noqa: E731
    if compact:
        head = ("| player | model | method | training | free: wins (95% CI) | consistent | masked: wins (95% CI) "
                "| consistent | GRPO over its start, masked |")
    else:
        head = ("| player | model | method | training | free: wins (95% CI) | valid | consistent | repeated | guesses "
                "| masked: wins (95% CI) | consistent | repeated | GRPO over its start: free | masked | made by "
                "| commit |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        free = _report(root, row["free"]) if row["free"] else {}
        masked = _report(root, row["masked"]) if row["masked"] else None
        mask = masked.get("mask", "?") if masked else None
        guesses = "-" if free.get("mean_guesses") is None else f"{free['mean_guesses']:.2f}"
        free_wins = f"[{_wins(free)}]({link(row['free'])})" if free else "-"
        masked_wins = f"[{_wins(masked)}]({link(row['masked'])}) `{mask}`" if masked else "-"
        masked_fit = _pct(masked.get("consistent_rate")) if masked else "-"
        if compact:
            cells = [row["player"], row["model"], row["method"], row["training"], free_wins,
                     _pct(free.get("consistent_rate")), masked_wins, masked_fit, over_start(root, row, "masked")]
        else:
            cells = [row["player"], row["model"], row["method"], row["training"], free_wins,
                     _pct(free.get("valid_guess_rate")), _pct(free.get("consistent_rate")), _pct(free.get("repeat_rate")),
                     guesses, masked_wins, masked_fit, _pct(masked.get("repeat_rate")) if masked else "-",
                     over_start(root, row, "free"), over_start(root, row, "masked"), row["command"], row["commit"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, content: str, source: str = "file") -> str:
    """`text` with what lies between the START and END markers replaced by `content`."""
    if START not in text or END not in text:
        raise LeaderboardError(f"{source}: no leaderboard markers ({START} ... {END})")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{content}{END}{after}"
