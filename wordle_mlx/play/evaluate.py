"""Play Wordle games with any policy and report how it does.

Games run in lock-step: each round, every unfinished game asks the policy (one `guess_batch`
call) for its next guess. An invalid guess (wrong length, non-letters, not an allowed word, or a
hard-mode violation) costs the turn: it counts as one of the 6 guesses and the game goes on, so
model results are comparable with the solvers'.

Report (JSON keys): policy, split, seed, n_games, wins, win_rate, mean_guesses (over wins),
total_guesses (over wins), max_guesses (over wins), histogram ({"1".."6", "fail"}),
attempts, invalid_guesses, invalid_guess_rate, valid_guess_rate, invalid_reasons,
consistent_rate (valid guesses after the first turn that fit all feedback so far),
repeat_rate (attempts repeating an earlier guess of the game), format_compliance (models only:
completions in the exact <think>..</think><guess>..</guess> layout with a valid word), wall_seconds,
games_at_once (only where fewer games than secrets played in one batch),
games (secret, won, guesses, feedback, invalid reason and, for models, the completion per attempt).
For a model the invalid reason is the parser's (no_guess_tag, wrong_length, ...).
The table also breaks the guesses that do not fit down by the constraint they break
(`broken_rule_rates`: green moved, known letter missing, letter in a place ruled out, gray used),
read from the games, so it works on any saved report, and says how many invalid answers repeat one
already rejected in the same game (`rejected_again_rate`: a model that ignores the prompt's list of
rejected answers spends its turns writing the same non-word).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from wordle_mlx.wordle.game import BROKEN_RULES, MAX_GUESSES, GameState, InvalidGuess, Turn, is_consistent, knowledge_from_history


@dataclass
class GameRecord:
    """One game: every attempt in order; `feedback` is None for an invalid attempt."""

    secret: str
    state: GameState
    attempts: list[dict] = field(default_factory=list)  # {"guess", "feedback", "invalid"}

    @property
    def won(self) -> bool:
        return self.state.won

    @property
    def finished(self) -> bool:
        return self.won or len(self.attempts) >= self.state.max_guesses

    def to_json(self) -> dict:
        out = {
            "secret": self.secret,
            "won": self.won,
            "guesses": [a["guess"] for a in self.attempts],
            "feedback": [a["feedback"] for a in self.attempts],
            "invalid": [a["invalid"] for a in self.attempts],
        }
        if any("completion" in a for a in self.attempts):
            out["completions"] = [a.get("completion") for a in self.attempts]
        return out


def play_games(
    policy,
    secrets: Sequence[str],
    max_guesses: int = MAX_GUESSES,
    hard_mode: bool = False,
    on_game_end: Callable[[int, GameRecord], None] | None = None,
    on_progress: Callable[[float, int, int], None] | None = None,
    games_at_once: int | None = None,
) -> list[GameRecord]:
    """Play one game per secret with `policy` (anything with `guess_batch(histories)`);
    `on_game_end(index, record)` is called as soon as each game is over. `games_at_once` bounds the
    games in one round's batch (a model's memory grows with it): the first that many unfinished games
    play each round, and a finished game's place goes to the next secret (None: all at once). `on_progress(turns, done,
    won)` counts turns played (a finished game counts all `max_guesses`, so the total is
    len(secrets) * max_guesses), games finished and won; it is called after every round and, for a
    policy with an `on_progress` attribute (a model), within the round as its batch decodes."""
    if games_at_once is not None and games_at_once < 1:
        raise ValueError(f"games_at_once: expected a positive number of games, got {games_at_once}")
    games = [GameRecord(s, GameState(s, max_guesses=max_guesses, hard_mode=hard_mode)) for s in secrets]
    while True:
        active = [g for g in games if not g.finished][:games_at_once]
        if on_progress is not None:
            turns = sum(max_guesses if g.finished else len(g.attempts) for g in games)
            done, won = sum(g.finished for g in games), sum(g.won for g in games)
            on_progress(turns, done, won)
            if hasattr(policy, "on_progress"):
                policy.on_progress = lambda f, t=turns, n=len(active), d=done, w=won: on_progress(t + f * n, d, w)
        if not active:
            return games
        if getattr(policy, "sees_rejected", False):
            rejected = [[a["guess"] for a in g.attempts if a["invalid"]] for g in active]
            guesses = policy.guess_batch([g.state.turns for g in active], rejected)
        else:
            guesses = policy.guess_batch([g.state.turns for g in active])
        parsed = getattr(policy, "last_parsed", None) or [None] * len(active)
        completions = getattr(policy, "last_completions", None) or [None] * len(active)
        for game, guess, p, text in zip(active, guesses, parsed, completions):
            history = game.state.turns
            try:
                game.state = game.state.play(guess)
                attempt = {"guess": game.state.turns[-1].guess, "feedback": game.state.turns[-1].feedback, "invalid": None,
                           "consistent": is_consistent(game.state.turns[-1].guess, history) if history else None,
                           "repeat": game.state.turns[-1].guess in {t.guess for t in history}}
            except InvalidGuess as err:
                reason = p.guess_problem if (p is not None and p.guess_problem) else err.reason
                attempt = {"guess": str(guess), "feedback": None, "invalid": reason, "consistent": None, "repeat": False}
            if text is not None:
                attempt["completion"] = text
                attempt["format_ok"] = bool(p is not None and p.valid)
            game.attempts.append(attempt)
            if on_game_end is not None and game.finished:
                on_game_end(games.index(game), game)


def summarize(games: Sequence[GameRecord], max_guesses: int = MAX_GUESSES) -> dict:
    """Win rate, mean/total/max guesses over wins, histogram and invalid-guess counts."""
    won_lengths = [len(g.attempts) for g in games if g.won]
    histogram = {str(k): 0 for k in range(1, max_guesses + 1)}
    for n in won_lengths:
        histogram[str(n)] += 1
    histogram["fail"] = len(games) - len(won_lengths)
    reasons = Counter(a["invalid"] for g in games for a in g.attempts if a["invalid"])
    attempts = [a for g in games for a in g.attempts]
    n_attempts = len(attempts)
    later = [a["consistent"] for a in attempts if a.get("consistent") is not None]
    formats = [a["format_ok"] for a in attempts if "format_ok" in a]
    return {
        "n_games": len(games),
        "wins": len(won_lengths),
        "win_rate": len(won_lengths) / len(games) if games else 0.0,
        "mean_guesses": sum(won_lengths) / len(won_lengths) if won_lengths else None,
        "total_guesses": sum(won_lengths),
        "max_guesses": max(won_lengths) if won_lengths else None,
        "histogram": histogram,
        "attempts": n_attempts,
        "invalid_guesses": sum(reasons.values()),
        "invalid_guess_rate": sum(reasons.values()) / n_attempts if n_attempts else 0.0,
        "valid_guess_rate": 1 - sum(reasons.values()) / n_attempts if n_attempts else 0.0,
        "invalid_reasons": dict(sorted(reasons.items())),
        "consistent_rate": sum(later) / len(later) if later else None,
        "repeat_rate": sum(a.get("repeat", False) for a in attempts) / n_attempts if n_attempts else 0.0,
        "format_compliance": sum(formats) / len(formats) if formats else None,
    }


def broken_rule_rates(report: dict) -> dict[str, float] | None:
    """Among valid guesses after the first that do not fit the feedback, the fraction breaking each
    kind of constraint (`Knowledge.broken`: green, missing, place, absent; one guess can break
    several). Read from the report's games, so older reports work too; None without games or
    without an inconsistent guess."""
    counts, inconsistent = Counter(), 0
    for game in report.get("games", []):
        history: list[Turn] = []
        for guess, feedback in zip(game["guesses"], game["feedback"]):
            if feedback is None:  # an invalid attempt: no feedback, not a turn
                continue
            broken = knowledge_from_history(history).broken(guess) if history else ()
            inconsistent += bool(broken)
            counts.update(broken)
            history.append(Turn(guess.lower(), feedback))
    if not inconsistent:
        return None
    return {rule: counts[rule] / inconsistent for rule in BROKEN_RULES}


def rejected_again_rate(report: dict) -> float | None:
    """Of the invalid attempts, the fraction that repeat an answer already rejected in the same game
    (compared in upper case, as the prompt lists them). From the games; None without an invalid one."""
    again = invalid = 0
    for game in report.get("games", []):
        rejected: set[str] = set()
        for guess, reason in zip(game["guesses"], game.get("invalid", [])):
            if reason is None:
                continue
            invalid += 1
            again += str(guess).upper() in rejected
            rejected.add(str(guess).upper())
    return again / invalid if invalid else None


def wins_by_trained_target(report: dict, targets) -> dict[str, tuple[int, int]]:
    """(wins, games) of the report's games whose secret is among `targets` (the words an SFT file
    writes as answers: the model has spelled them in training) and of the others."""
    targets = {str(t).lower() for t in targets}
    out = {"trained": [0, 0], "untrained": [0, 0]}
    for game in report.get("games", []):
        row = out["trained" if game["secret"].lower() in targets else "untrained"]
        row[0] += bool(game["won"])
        row[1] += 1
    return {key: (wins, games) for key, (wins, games) in out.items()}


def stuck_states(report: dict) -> list[tuple[str, list[Turn], list[str]]]:
    """(secret, turns, rejected answers) of every moment in the report's games at which the model
    answered with an answer already rejected in that game: the states where it is stuck."""
    out = []
    for game in report.get("games", []):
        turns: list[Turn] = []
        rejected: list[str] = []
        for guess, feedback in zip(game["guesses"], game["feedback"]):
            if feedback is None:
                if str(guess).upper() in rejected:
                    out.append((game["secret"], list(turns), list(rejected)))
                rejected.append(str(guess).upper())
            else:
                turns.append(Turn(guess.lower(), feedback))
    return out


def progress_columns() -> list:
    """games done/won, a bar over turns (moves within a batch), elapsed and ETA: under 80 columns."""
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return [TextColumn("[bold]games[/] {task.fields[done]}/{task.fields[games]} done, {task.fields[won]} won"),
            BarColumn(bar_width=20), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]


def evaluate(policy, secrets: Sequence[str], progress: bool = True, games_at_once: int | None = None, **meta) -> dict:
    """Play all games (with a rich progress bar; at most `games_at_once` in one batch) and return the JSON-ready report."""
    start = time.perf_counter()
    if progress:
        from rich.progress import Progress

        with Progress(*progress_columns(), transient=True) as bar:
            task = bar.add_task("games", total=len(secrets) * MAX_GUESSES, done=0, won=0, games=len(secrets))
            games = play_games(policy, secrets, games_at_once=games_at_once, on_progress=lambda turns, done, won:
                               bar.update(task, completed=turns, done=done, won=won))
    else:
        games = play_games(policy, secrets, games_at_once=games_at_once)
    report = {"policy": policy.describe(), **meta, **summarize(games)}
    if games_at_once is not None and games_at_once < len(secrets):
        report["games_at_once"] = games_at_once  # batches of other sizes can part a greedy game by float rounding
    report["wall_seconds"] = round(time.perf_counter() - start, 3)
    report["games"] = [g.to_json() for g in games]
    return report


def is_report(data) -> bool:
    """True for what `evaluate` returns (a dict with its policy, game counts and wins)."""
    return isinstance(data, dict) and isinstance(data.get("policy"), dict) and \
        all(isinstance(data.get(k), int) for k in ("n_games", "wins"))


def adapter_label(adapter: str | Path) -> str:
    """A short name for an adapter directory in tables: its own name (adapters/recipe_gemma -> recipe_gemma);
    a run's `adapters/` or `checkpoint/` is named by its run (logs/qwen-grpo/adapters -> qwen-grpo), a kept
    step by its run and step (wip/grpo/kept/step_0010 -> grpo step_0010)."""
    path = Path(adapter).resolve()
    if path.name in ("adapters", "checkpoint"):
        return path.parent.name
    if path.parent.name == "kept":
        return f"{path.parent.parent.name} {path.name}"
    return path.name


def report_table(reports: Sequence[dict]):
    """A rich Table with one column per report (for one or several policies/models)."""
    from rich.table import Table

    table = Table(title="Wordle evaluation")
    table.add_column("metric")
    for r in reports:
        table.add_column(str(r.get("label") or r["policy"].get("name", "?")), justify="right")

    def row(label: str, fmt: Callable[[dict], str]) -> None:
        table.add_row(label, *[fmt(r) for r in reports])

    row("secrets", lambda r: f"{r.get('split') or Path(r.get('words_file') or '-').name} (n={r['n_games']})")
    row("win rate", lambda r: f"{100 * r['win_rate']:.2f}%")
    row("  95% interval (Wilson)", lambda r: "{:.1f}-{:.1f}%".format(*(100 * x for x in wilson_interval(r["wins"], r["n_games"]))))
    row("mean guesses (wins)", lambda r: "-" if r["mean_guesses"] is None else f"{r['mean_guesses']:.4f}")
    row("total guesses (wins)", lambda r: str(r["total_guesses"]))
    row("max guesses (wins)", lambda r: "-" if r["max_guesses"] is None else str(r["max_guesses"]))
    for k in reports[0]["histogram"]:
        row(f"  solved in {k}" if k != "fail" else "  failed", lambda r, k=k: str(r["histogram"].get(k, 0)))
    row("invalid guesses", lambda r: f"{r['invalid_guesses']} ({100 * r['invalid_guess_rate']:.1f}%)")
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    row("  rejected again", lambda r: pct(rejected_again_rate(r)))
    row("consistent guesses", lambda r: pct(r.get("consistent_rate")))
    broken = [broken_rule_rates(r) for r in reports]
    if any(broken):
        for rule, what in (("green", "green moved"), ("missing", "lost letter"),
                           ("place", "wrong place"), ("absent", "gray used")):  # of the guesses that do not fit
            table.add_row(f"  misfit: {what}", *["-" if b is None else pct(b[rule]) for b in broken])
    row("repeated guesses", lambda r: pct(r.get("repeat_rate")))
    row("format compliance", lambda r: pct(r.get("format_compliance")))
    row("wall seconds", lambda r: f"{r['wall_seconds']:.1f}")
    return table


def training_minutes(adapter_path: str | None) -> float | None:
    """Training wall-clock minutes behind an adapter: its run's last `elapsed_s` (a kept step's adapters,
    `<run>/kept/step_NNNN`: the run's `elapsed_s` at that step), plus the run it started from
    (`model.adapter_path` in the run's config, e.g. SFT before GRPO); an exported directory with no run
    beside it counts the minutes `export_adapters` stored in it. None if unknown."""
    if not adapter_path:
        return None
    total, seen = 0.0, set()
    path = Path(adapter_path)
    while path is not None and path not in seen:
        seen.add(path)
        kept = path.parent.name == "kept"  # <run>/kept/step_NNNN: the run's minutes up to that step
        run = path.parent.parent if kept else path.parent
        try:
            lines = (run / "metrics.jsonl").read_text().strip().splitlines()
            if kept:
                step = int(path.name.split("_")[-1])
                lines = [l for l in lines if json.loads(l)["step"] == step]
            total += float(json.loads(lines[-1])["elapsed_s"])
            parent = json.loads((run / "config.json").read_text()).get("model", {}).get("adapter_path")
        except (OSError, ValueError, KeyError, IndexError):
            from wordle_mlx.model import lora

            stored = lora.stored_training_minutes(path)
            if stored is not None:
                return total / 60 + stored
            return None if total == 0 else total / 60
        path = Path(parent) if parent else None
    return total / 60


def wilson_interval(wins: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a win rate (sound at 0 or n wins, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    p = wins / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: how often a fair coin splits `only_a + only_b` games this unevenly.

    Only the games won by exactly one player say anything about which is better; under "no
    difference" each of them is equally likely to fall either way (a binomial with p = 1/2).
    """
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar_split_needed(changed: int, alpha: float = 0.05) -> int | None:
    """The fewest of `changed` games won by one player only that one side must take for McNemar
    p < alpha (the other side gets the rest), or None when no split of so few games gets there.

    It says how large a lift a paired test on these words can certify: with 88 games changing hands
    a 54 / 34 split is the narrowest beyond chance at 0.05 (a lift of 20 wins); 52 / 36 (p = 0.11) is not.
    """
    return next((k for k in range((changed + 1) // 2, changed + 1) if mcnemar_p(changed - k, k) < alpha), None)


def paired_difference(a: dict, b: dict) -> dict:
    """Games (same secrets) won by `a` and lost by `b` and the other way round, and the exact McNemar
    p-value of that split; both reports need `games`."""
    won_a = {g["secret"]: g["won"] for g in a["games"]}
    won_b = {g["secret"]: g["won"] for g in b["games"]}
    common = sorted(set(won_a) & set(won_b))
    only_a = sum(won_a[s] and not won_b[s] for s in common)
    only_b = sum(won_b[s] and not won_a[s] for s in common)
    return {"games": len(common), "only_a": only_a, "only_b": only_b,
            "both": sum(won_a[s] and won_b[s] for s in common), "p_value": mcnemar_p(only_a, only_b)}


def first_divergence(a: dict, b: dict) -> dict:
    """Where the two players' games on the same secret first differ (the same turns before it, a different
    attempt now), whose attempt is worth more for winning (`wordle.value`: the frequent solver's mean score
    playing on after it; an invalid attempt is worth 0): games identical, diverged, B's attempt worth more /
    less / the same, the mean value of each side's attempts, and how often each played the frequent
    solver's word there, and the exact two-sided sign test of worth more against worth less (`p_value`, ties
    left out). Games whose shared turns no answer fits are left out."""
    from wordle_mlx.wordle import solvers, value

    frequent = solvers.make_policy("frequent")
    games_b = {g["secret"]: g for g in b["games"]}
    out = {"identical": 0, "diverged": 0, "b_higher": 0, "b_lower": 0, "equal": 0, "a_frequent": 0, "b_frequent": 0}
    values_a, values_b = [], []
    for ga in a["games"]:
        gb = games_b.get(ga["secret"])
        if gb is None:
            continue
        k = next((i for i, (x, y) in enumerate(zip(ga["guesses"], gb["guesses"])) if x.lower() != y.lower()), None)
        if k is None:
            out["identical"] += 1
            continue
        turns = [Turn(g.lower(), f) for g, f in zip(ga["guesses"][:k], ga["feedback"][:k]) if f]

        def worth(game: dict) -> float | None:
            guess = game["guesses"][k].lower()
            if game["feedback"][k] is None:
                return 0.0
            v = value.guess_value(turns, guess)
            return None if v is None else v.score
        va, vb = worth(ga), worth(gb)
        if va is None or vb is None:
            continue
        out["diverged"] += 1
        values_a.append(va)
        values_b.append(vb)
        out["b_higher" if vb > va else "b_lower" if vb < va else "equal"] += 1
        choice = frequent.guess(turns)
        out["a_frequent"] += ga["guesses"][k].lower() == choice
        out["b_frequent"] += gb["guesses"][k].lower() == choice
    out["mean_a"] = float(np.mean(values_a)) if values_a else None
    out["mean_b"] = float(np.mean(values_b)) if values_b else None
    out["p_value"] = mcnemar_p(out["b_higher"], out["b_lower"])
    return out


def consistent_counts(game: dict) -> tuple[int, int]:
    """(consistent, judged) valid guesses of one report game: those after its first valid guess that fit
    all feedback so far, and all of them (the `consistent_rate` of `summarize`, from the saved game)."""
    history: list[Turn] = []
    consistent = judged = 0
    for guess, feedback in zip(game["guesses"], game["feedback"]):
        if feedback is None:  # an invalid attempt: no feedback, not a turn
            continue
        if history:
            judged += 1
            consistent += is_consistent(guess.lower(), history)
        history.append(Turn(guess.lower(), feedback))
    return consistent, judged


def paired_consistency(a: dict, b: dict, permutations: int = 10_000, seed: int = 0) -> dict:
    """Consistent-guess rates of `a` and `b` over their shared secrets and the two-sided p-value of the
    difference by a paired permutation test: under "no difference" the two players' games of each secret
    are exchangeable, so each secret's pair is swapped at random (`permutations` times, seeded) and the
    difference of the pooled rates recomputed. Games, not guesses, are the unit: a game's guesses are
    not independent of each other."""
    games_a = {g["secret"]: consistent_counts(g) for g in a["games"]}
    games_b = {g["secret"]: consistent_counts(g) for g in b["games"]}
    common = sorted(set(games_a) & set(games_b))
    ca, ja = np.array([games_a[s] for s in common], dtype=np.float64).reshape(-1, 2).T  # (secrets,) each
    cb, jb = np.array([games_b[s] for s in common], dtype=np.float64).reshape(-1, 2).T
    rate = lambda c, j: float(c.sum(-1) / j.sum(-1)) if np.all(j.sum(-1) > 0) else None  # noqa: E731
    rate_a, rate_b = rate(ca, ja), rate(cb, jb)
    if rate_a is None or rate_b is None:
        return {"games": len(common), "rate_a": rate_a, "rate_b": rate_b, "p_value": None}
    swap = np.random.default_rng(seed).random((permutations, len(common))) < 0.5  # (permutations, secrets)
    pa = np.where(swap, cb, ca).sum(1) / np.where(swap, jb, ja).sum(1)
    pb = np.where(swap, ca, cb).sum(1) / np.where(swap, ja, jb).sum(1)
    extreme = np.sum(np.abs(pb - pa) >= abs(rate_b - rate_a) - 1e-12)
    return {"games": len(common), "rate_a": rate_a, "rate_b": rate_b,
            "p_value": float((extreme + 1) / (permutations + 1))}


def markdown_table(reports: Sequence[dict]) -> str:
    """One markdown row per report: the study table of docs/journal/2026-11-recipe.md."""
    pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| player | wins | mean guesses (wins) | valid guesses | consistent guesses | repeated | format compliance "
             "| training min | eval s |", "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        label = r.get("label") or r["policy"].get("name", "?")
        minutes = r.get("training_minutes", training_minutes(r.get("adapter")))
        mean = "-" if r["mean_guesses"] is None else f"{r['mean_guesses']:.2f}"
        trained = "-" if minutes is None else f"{minutes:.1f}"
        lines.append(f"| {label} | {r['wins']}/{r['n_games']} ({100 * r['win_rate']:.1f}%) | {mean} | "
                     f"{pct(r['valid_guess_rate'])} | {pct(r.get('consistent_rate'))} | {pct(r.get('repeat_rate'))} | "
                     f"{pct(r.get('format_compliance'))} | {trained} | {r['wall_seconds']:.0f} |")
    return "\n".join(lines)
