"""Watch a model or solver play one game, play yourself, or get help with a real game played elsewhere.

    python -m scripts.play --adapter adapters/recipe [--secret crane]     # the base model the adapter records
    python -m scripts.play --model smollm2-135m-instruct [--adapter logs/sft/adapters] [--secret crane]
    python -m scripts.play --policy entropy [--secret snafu]             # a solver plays
    python -m scripts.play --human [--secret crane]
    python -m scripts.play --assist --adapter adapters/recipe_gemma_sft_long   # today's puzzle: you type what you
    python -m scripts.play --assist --policy frequent                          # played and the colours it got

The secret may be any allowed word (the daily puzzle has used words outside the 2,315 answers).
--assist: each turn the player suggests a guess; type the word you played (Enter = the suggestion)
and its colours (g green, y yellow, x grey: e.g. gyxxg). Works from a terminal or a pipe.
"""

from __future__ import annotations

import random
import sys

import wordle_mlx  # noqa: F401  (loads OpenBLAS before mlx on Linux)
from wordle_mlx.play import prompts
from wordle_mlx.wordle import solvers
from wordle_mlx.wordle import words as wordlists
from wordle_mlx.wordle.game import GameState
from scripts import make_parser, model_for_adapter, run

_STYLE = {"G": "bold white on green", "Y": "bold black on yellow", "X": "bold white on grey35"}


def tiles(guess: str, fb: str, colour: bool = True) -> str:
    """Coloured tiles on a terminal; piped or logged, the word and its feedback letters (CRANE  GYXXG)."""
    if not colour:
        return f"{guess.upper()}  {fb}"
    return " ".join(f"[{_STYLE[f]}] {c.upper()} [/]" for c, f in zip(guess, fb))


def main(argv: list[str] | None = None) -> int:
    parser = make_parser(__doc__)
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--model", help="built-in name, .gguf file, mlx-lm directory or HF id "
                     "(default: the base model --adapter records)")
    who.add_argument("--policy", choices=solvers.POLICIES, help="a solver plays (or suggests, with --assist)")
    who.add_argument("--human", action="store_true", help="you guess, the engine gives feedback")
    parser.add_argument("--assist", action="store_true",
                        help="a real game played elsewhere: the player suggests, you type the word played and its colours")
    parser.add_argument("--adapter", help="LoRA adapter directory (e.g. adapters/recipe)")
    parser.add_argument("--secret", help="the secret word, any allowed word (default: a random eval answer)")
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--format", choices=prompts.FORMATS, default=None,
                        help="prompt format (default: the adapter's, else plain)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--mask", choices=["none", "allowed", "allowed_new"], default=None,
                        help="legal-move mask on the guess (default: the adapter's, else none)")
    args = parser.parse_args(argv)
    if args.assist and (args.human or args.secret):
        parser.error("--assist: the secret is unknown (a game played elsewhere); drop --human and --secret")
    if args.adapter and args.policy:
        parser.error("--adapter: goes with a model, not --policy")
    model_plays = not (args.human or args.policy)
    if model_plays:
        try:
            args.model = model_for_adapter(args.model, args.adapter)
        except ValueError as err:
            parser.error(str(err))
    secret = (args.secret or random.Random(args.seed).choice(wordlists.split_words("eval"))).strip().lower()
    if len(secret) != 5 or not (secret.isascii() and secret.isalpha()):
        parser.error(f"--secret: expected a 5-letter word, got {args.secret!r}")
    if secret not in wordlists.allowed_set():
        parser.error(f"--secret: {args.secret!r} is not in the allowed word list")

    from rich.console import Console

    console = Console(soft_wrap=True)
    colour = console.is_terminal
    player = solvers.make_policy(args.policy, seed=args.seed or 0) if args.policy else None
    if model_plays:
        from wordle_mlx.model import models
        from wordle_mlx.play.policy import load_policy

        try:
            player = load_policy(args.model, args.adapter, fmt=args.format, mask=args.mask,
                                 temperature=args.temperature, max_tokens=args.max_tokens)
        except models.ModelLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    if args.assist:
        return assist(player, console, colour)
    state = GameState(secret)
    attempts = 0
    if args.human:
        while not state.won and attempts < state.max_guesses:
            try:
                guess = console.input(f"guess {attempts + 1}/6: ").strip().lower()
            except EOFError:
                print(f"\nerror: input ended at guess {attempts + 1}/6; the game is not finished (the word was "
                      f"{secret.upper()})", file=sys.stderr)
                return 1
            problem = state.check_guess(guess)
            if problem:
                console.print(f"[red]{problem[1]}[/] (not counted)")
                continue
            state = state.play(guess)
            attempts += 1
            console.print(tiles(guess, state.turns[-1].feedback, colour))
    else:
        rejected: list[str] = []
        while not state.won and attempts < state.max_guesses:
            guess = player.guess_batch([state.turns], [rejected])[0] if model_plays else player.guess(state.turns)
            attempts += 1
            if model_plays and player.think:
                console.print(f"[dim]turn {attempts} think:[/] {player.last_parsed[0].think or '(no think)'}")
            problem = state.check_guess(guess)
            if problem:
                reason = player.last_parsed[0].guess_problem if model_plays else None
                text = player.last_completions[0][:120] if model_plays else guess
                console.print(f"  [red]invalid ({reason or problem[0]}):[/] {text!r}")
                rejected.append(guess)
                continue
            state = state.play(guess)
            console.print("  " + tiles(guess, state.turns[-1].feedback, colour))
    result = f"[green]won in {attempts}[/]" if state.won else f"[red]lost[/]: the word was {secret.upper()}"
    console.print(result)
    return 0


def assist(player, console, colour: bool) -> int:
    """`play --assist`: one real game, the player suggesting, the person typing (wordle_mlx.play.assist)."""
    from wordle_mlx.play import assist as helper

    say = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731

    def ask(prompt: str) -> str:
        line = console.input(prompt)
        if not sys.stdin.isatty():  # from a pipe: echo the answer, so the output reads like the session
            say(line)
        return line

    try:
        game = helper.assist(player, ask, say, lambda t: console.print("  " + tiles(t.guess, t.feedback, colour)))
    except helper.InputEnded as ended:
        print(f"\nerror: input ended at turn {ended.turn}/6, before the game did", file=sys.stderr)
        return 1
    if game.won:
        console.print(f"solved in {len(game.turns)}")
    else:
        left = game.candidates()
        console.print(f"out of guesses; {len(left)} word(s) fit: {', '.join(w.upper() for w in left[:10])}")
    return 0


if __name__ == "__main__":
    run(main)
