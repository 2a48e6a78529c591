"""The leaderboard: one row per shipped player or solver, every figure read from its evaluate reports.

`docs/leaderboard.json` lists the rows (who, model, training hardware and minutes, the command that made
it, the commit, and the report of its free play and, if any, of its masked play); `table(rows)` renders
them as the Markdown table that README.md and docs/results.md carry between LEADERBOARD markers
(`python -m scripts.leaderboard --write`; a test keeps both equal to the reports). A row is added with
its report, never with typed-in figures. Wins carry 95% Wilson intervals.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from wordle_mlx.play.evaluate import wilson_interval

START = "<!-- LEADERBOARD:START: made from docs/leaderboard.json by scripts/leaderboard.py --write -->"
END = "<!-- LEADERBOARD:END -->"
ROW_KEYS = ("player", "model", "training", "command", "commit", "free", "masked")


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


def table(rows: list[dict], root: str | Path = ".", page_dir: str = ".") -> str:
    """The Markdown leaderboard; figures from each row's reports (paths relative to `root`), linked from
    a page in `page_dir` (relative to `root`)."""
    root = Path(root)
    link = lambda path: os.path.relpath(root / path, root / page_dir)  # noqa: E731
    head = ("| player | model | training | free: wins (95% CI) | valid | consistent | repeated | guesses "
            "| masked: wins (95% CI) | consistent | repeated | made by | commit |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        free = _report(root, row["free"]) if row["free"] else {}
        masked = _report(root, row["masked"]) if row["masked"] else None
        mask = masked.get("mask", "?") if masked else None
        guesses = "-" if free.get("mean_guesses") is None else f"{free['mean_guesses']:.2f}"
        cells = [row["player"], row["model"], row["training"],
                 f"[{_wins(free)}]({link(row['free'])})" if free else "-",
                 _pct(free.get("valid_guess_rate")), _pct(free.get("consistent_rate")), _pct(free.get("repeat_rate")),
                 guesses,
                 f"[{_wins(masked)}]({link(row['masked'])}) `{mask}`" if masked else "-",
                 _pct(masked.get("consistent_rate")) if masked else "-",
                 _pct(masked.get("repeat_rate")) if masked else "-",
                 row["command"], row["commit"] or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, content: str, source: str = "file") -> str:
    """`text` with what lies between the START and END markers replaced by `content`."""
    if START not in text or END not in text:
        raise LeaderboardError(f"{source}: no leaderboard markers ({START} ... {END})")
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{content}{END}{after}"
