"""SFT traces from a teacher model behind an OpenAI-compatible endpoint (`data_synth --teacher-endpoint`).

The teacher plays whole games from the first guess on train-split secrets, with the prompts our
model sees (`prompts.build_messages`: same format, same not-accepted list); an invalid answer costs
its turn, as in evaluation. Only turns whose guess is a valid word *and* consistent with all feedback
so far become SFT records (every valid first guess is consistent); the teacher's own `<think>` text
is kept, whitespace-collapsed and trimmed to `think_max_chars` (cut at a word boundary, "..."
added); a turn without think text keeps the guess with an empty-think marker `(no reasoning given)`.
Records have the data_synth SFT layout (`messages`, `completion`, `secret`, `turns`, `target`),
with `policy` = "teacher:<model>".

Resumable: games are played `concurrency` at a time and each game is appended to the output as soon
as it is over (its kept records to OUT, one summary line to OUT.games.jsonl); a rerun reads
OUT.games.jsonl and plays only the games not yet there. Secrets are a seeded function of (seed, n).
The API key is never written anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from wordle_mlx import jsonl
from wordle_mlx.play import evaluate, prompts
from wordle_mlx.play.endpoint import ChatClient, EndpointPolicy
from wordle_mlx.wordle.game import GameState, is_consistent

NO_THINK = "(no reasoning given)"


def trim_think(text: str | None, max_chars: int) -> str:
    """Collapse whitespace and cut at a word boundary to at most `max_chars` characters."""
    text = " ".join((text or "").split())
    if not text:
        return NO_THINK
    if len(text) <= max_chars:
        return text
    cut = text[: max(max_chars - 3, 1)].rsplit(" ", 1)[0] or text[: max_chars - 3]
    return cut + "..."


def records_from_game(game: evaluate.GameRecord, fmt: str, think_max_chars: int, model: str) -> tuple[list[dict], dict]:
    """(SFT records of the kept turns, a summary line) for one finished teacher game."""
    state = GameState(game.secret)
    rejected: list[str] = []
    kept, reasons = [], {"invalid": 0, "inconsistent": 0}
    for attempt in game.attempts:
        messages = prompts.build_messages(state.turns, fmt, rejected=rejected)
        if attempt["invalid"]:
            reasons["invalid"] += 1
            rejected.append(attempt["guess"])
            continue
        guess = attempt["guess"]
        if state.turns and not is_consistent(guess, state.turns):
            reasons["inconsistent"] += 1
        else:
            parsed = prompts.parse_completion(attempt.get("completion") or "")
            think = trim_think(parsed.think, think_max_chars)
            record = {"secret": game.secret, "split": "train", "turns": [[t.guess, t.feedback] for t in state.turns],
                      "messages": messages, "completion": prompts.format_completion(think, guess), "target": guess,
                      "policy": f"teacher:{model}", "think_style": "teacher", "format": fmt}
            if rejected:
                record["rejected"] = list(rejected)
            kept.append(record)
        state = state.play(guess)
    summary = {"secret": game.secret, "won": game.won, "attempts": len(game.attempts), "kept": len(kept), **reasons}
    return kept, summary


def done_games(out: Path) -> dict[int, dict]:
    """Games already finished by an earlier (interrupted) run: {index: summary}."""
    path = Path(str(out) + ".games.jsonl")
    if not path.exists():
        return {}
    return {int(r["game"]): r for _, r in jsonl.iter_lines(path)}


def run_teacher(client: ChatClient, secrets: list[str], out: Path, fmt: str = "plain", think_max_chars: int = 200,
                max_tokens: int = 256, temperature: float = 0.0,
                on_game: Callable[[], None] | None = None) -> dict:
    """Play the games not yet in OUT.games.jsonl and append their kept records; returns totals."""
    out = Path(out)
    games_path = Path(str(out) + ".games.jsonl")
    done = done_games(out)
    todo = [i for i in range(len(secrets)) if i not in done]
    policy = EndpointPolicy(client, fmt, temperature, max_tokens, label=client.model)
    with out.open("a") as records_fh, games_path.open("a") as games_fh:
        def finished(local: int, game: evaluate.GameRecord, batch: list[int]) -> None:
            kept, summary = records_from_game(game, fmt, think_max_chars, client.model)
            for r in kept:
                records_fh.write(json.dumps(r) + "\n")
            games_fh.write(json.dumps({"game": batch[local], **summary}) + "\n")
            records_fh.flush()
            games_fh.flush()
            if on_game:
                on_game()

        for start in range(0, len(todo), client.concurrency):
            batch = todo[start : start + client.concurrency]
            evaluate.play_games(policy, [secrets[i] for i in batch],
                                on_game_end=lambda local, game, batch=batch: finished(local, game, batch))
    summaries = list(done_games(out).values())
    return {"games": len(summaries), "resumed_from": len(done), "kept": sum(s["kept"] for s in summaries),
            "wins": sum(s["won"] for s in summaries), "invalid": sum(s["invalid"] for s in summaries),
            "inconsistent": sum(s["inconsistent"] for s in summaries)}
