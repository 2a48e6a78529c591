"""Watch a model play one game (coloured tiles and its think text per turn), or play yourself.

    python -m scripts.play --adapter adapters/recipe [--secret crane]     # the base model the adapter records
    python -m scripts.play --model smollm2-135m-instruct [--adapter logs/sft/adapters] [--secret crane]
    python -m scripts.play --human [--secret crane]
"""

from __future__ import annotations

import argparse
import random
import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.play import prompts
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.wordle.game import GameState
from scripts import model_for_adapter, run

_STYLE = {"G": "bold white on green", "Y": "bold black on yellow", "X": "bold white on grey35"}


def tiles(guess: str, fb: str) -> str:
    return " ".join(f"[{_STYLE[f]}] {c.upper()} [/]" for c, f in zip(guess, fb))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--model", help="built-in name, .gguf file, mlx-lm directory or HF id "
                     "(default: the base model --adapter records)")
    who.add_argument("--human", action="store_true", help="you guess, the engine gives feedback")
    parser.add_argument("--adapter", help="LoRA adapter directory (e.g. adapters/recipe)")
    parser.add_argument("--secret", help="the secret word (default: a random eval answer)")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--format", choices=prompts.FORMATS, default=None,
                        help="prompt format (default: the adapter's, else plain)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--mask", choices=["none", "allowed", "allowed_new"], default=None,
                        help="legal-move mask on the guess (default: the adapter's, else none)")
    args = parser.parse_args(argv)
    if not args.human:
        try:
            args.model = model_for_adapter(args.model, args.adapter)
        except ValueError as err:
            parser.error(str(err))
    secret = (args.secret or random.Random(args.seed).choice(wordlists.split_words("eval"))).lower()
    if len(secret) != 5 or not secret.isalpha():
        parser.error(f"--secret: expected a 5-letter word, got {args.secret!r}")
    if secret not in wordlists.allowed_set():
        parser.error(f"--secret: {args.secret!r} is not in the allowed word list")

    from rich.console import Console

    console = Console()
    state = GameState(secret)
    attempts = 0
    if args.human:
        while not state.won and attempts < state.max_guesses:
            try:
                guess = console.input(f"guess {attempts + 1}/6: ").strip().lower()
            except EOFError:
                return 0
            problem = state.check_guess(guess)
            if problem:
                console.print(f"[red]{problem[1]}[/] (not counted)")
                continue
            state = state.play(guess)
            attempts += 1
            console.print(tiles(guess, state.turns[-1].feedback))
    else:
        from wordle_mlx.model import models
        from wordle_mlx.play.policy import load_policy

        try:
            policy = load_policy(args.model, args.adapter, fmt=args.format, mask=args.mask,
                                 temperature=args.temperature, max_tokens=args.max_tokens)
        except models.ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        rejected: list[str] = []
        while not state.won and attempts < state.max_guesses:
            guess = policy.guess_batch([state.turns], [rejected])[0]
            parsed = policy.last_parsed[0]
            attempts += 1
            if policy.think:
                console.print(f"[dim]turn {attempts} think:[/] {parsed.think or '(no think)'}")
            problem = state.check_guess(guess)
            if problem:
                console.print(f"  [red]invalid ({parsed.guess_problem or problem[0]}):[/] {policy.last_completions[0][:120]!r}")
                rejected.append(guess)
                continue
            state = state.play(guess)
            console.print("  " + tiles(guess, state.turns[-1].feedback))
    result = f"[green]won in {attempts}[/]" if state.won else f"[red]lost[/]: the word was {secret.upper()}"
    console.print(result)
    return 0


if __name__ == "__main__":
    run(main)
