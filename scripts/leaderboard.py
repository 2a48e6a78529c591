"""Print the leaderboard (docs/leaderboard.json's rows, figures from their reports) or write it into
README.md and docs/results.md between their LEADERBOARD markers.

    python -m scripts.leaderboard            # print the Markdown table
    python -m scripts.leaderboard --write    # update README.md and docs/results.md

A new row goes into docs/leaderboard.json with its reports (scripts.evaluate --json, all 315 eval words).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scripts import make_parser, run

PAGES = ("README.md", "docs/results.md")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--rows", type=Path, default=Path("docs/leaderboard.json"), help="default: %(default)s")
    parser.add_argument("--write", action="store_true", help=f"update {' and '.join(PAGES)}")
    args = parser.parse_args(argv)
    from wordle_mlx.play import leaderboard

    try:
        rows = leaderboard.load_rows(args.rows)
        if not args.write:
            print(leaderboard.table(rows), end="")
            return 0
        for page in map(Path, PAGES):
            text = page.read_text()
            made = leaderboard.table(rows, ".", str(page.parent), compact=page.name == "README.md")
            new = leaderboard.replace_between_markers(text, made, str(page))
            page.write_text(new)
            print(f"{page}: {'updated' if new != text else 'unchanged'} ({len(rows)} rows)")
    except (leaderboard.LeaderboardError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    run(main)
