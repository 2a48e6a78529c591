"""Write docs/config.md: every config key with its type, default and description, from the pydantic models.

    python -m scripts.config_reference            # rewrites docs/config.md
    python -m scripts.config_reference --check    # exit 1 if docs/config.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from wordle_mlx.config import config_reference
from scripts import make_parser, run

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "config.md"


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where to write (default docs/config.md)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when the file differs")
    args = parser.parse_args(argv)
    text = config_reference()
    out = Path(args.out)
    if args.check:
        if not out.is_file() or out.read_text() != text:
            print(f"{out} is out of date: run python -m scripts.config_reference", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    same = out.is_file() and out.read_text() == text
    out.write_text(text)
    print(f"wrote {out} ({len(text.splitlines())} lines, {'unchanged' if same else 'updated'})")
    return 0


if __name__ == "__main__":
    run(main)
