"""Reading JSONL files (data_synth records, metrics) with line numbers for one-line error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


class BadLine(ValueError):
    """A line that is not JSON; `line` is its 1-based number."""

    def __init__(self, line: int):
        super().__init__(f"line {line}: not JSON")
        self.line = line


def iter_lines(path: str | Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) for every non-blank line; BadLine on one that is not JSON."""
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except ValueError:
            raise BadLine(n) from None
