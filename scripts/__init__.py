"""Command-line entry points: run each as `python -m scripts.NAME` from the repo root.

Interruption is one line at any moment. `python -m` imports this package before the script's own
(slow: MLX, pydantic) imports, so from here until the script calls `run(main)` Ctrl-C or SIGTERM
print `interrupted` and exit at once. Inside `run`, both raise KeyboardInterrupt (the trainers
save a checkpoint and raise `runs.Interrupted`, whose text says how to resume); `run` prints that
one line and exits 130 for Ctrl-C, 143 for SIGTERM (128 + the signal: the shell convention, so
`train_sft && train_rl` stops after an interrupted SFT). A SIGINT that was ignored when the
process started (a background job of a non-interactive shell, nohup) stays ignored.

One moment used to lose a Ctrl-C: MLX's CPU backend asks the shell once per process whether g++
exists (`system("g++ --version")`, at the first `mx.compile` trace), and glibc's `system()` sets
SIGINT to ignored while it waits (~10 ms, far more on a cold or busy machine), which also discards
one already pending; the run then went on to its end. So from the moment this package is located
SIGINT is blocked (threads that OpenBLAS and MLX start inherit the block) and one thread takes it
with `sigwait`, which still works while it is ignored: `interrupted`, exit 130 at once. `run` makes
MLX ask before `main`, stops that thread and unblocks SIGINT in the main thread only.

That exit is `os._exit` after flushing stdout and stderr (every file the trainers write is closed
by then): once a KeyboardInterrupt has passed through CPython's C-level run loop (`PyRun_*`, which
a library may call), CPython ends even a clean `sys.exit(130)` by killing itself with SIGINT
(status -2), as if the interrupt had gone unhandled.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Callable, NoReturn

_SIGINT_IGNORED = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
_received: list[int] = []


def _quit_now(signum, frame) -> None:
    sys.stderr.write("\ninterrupted\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _raise_interrupt(signum, frame) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def _install(handler) -> None:
    if not _SIGINT_IGNORED:
        signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


_WAKE = signal.SIGUSR2  # tells the start-up thread that `run` has taken over
_start_up: list[threading.Thread] = []  # the thread that takes SIGINT until `run` calls `main`


def _take_ctrl_c_at_start_up() -> None:
    if signal.sigwait({signal.SIGINT, _WAKE}) == signal.SIGINT:
        _quit_now(signal.SIGINT, None)


def _watch_start_up() -> None:
    """Block SIGINT in this thread and every thread started after it, and take it in one of our own."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, _WAKE})
    _start_up.append(threading.Thread(target=_take_ctrl_c_at_start_up, name="ctrl-c at start-up", daemon=True))
    _start_up[0].start()


def _stop_watching_start_up() -> None:
    """Hand Ctrl-C to the main thread's handler; one that comes meanwhile waits, pending, for it."""
    while _start_up:
        thread = _start_up.pop()
        signal.pthread_kill(thread.ident, _WAKE)
        thread.join()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, _WAKE})  # a waiting Ctrl-C is raised here


if sys.argv[:1] == ["-m"]:  # being located by `python -m scripts.NAME` (not imported by tests)
    _install(_quit_now)
    if not _SIGINT_IGNORED and hasattr(signal, "pthread_sigmask"):
        _watch_start_up()


def _program_name() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return f"python -m {spec.name}" if spec is not None else os.path.basename(sys.argv[0])


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run a script's `main()` and exit with its code; Ctrl-C / SIGTERM anywhere = one line, 128 + signal."""
    sys.argv[0] = _program_name()  # argparse's usage line then says how the script is really run
    _install(_raise_interrupt)
    try:
        _let_mlx_ask_for_its_compiler()
        _stop_watching_start_up()
        code = _environment_error() or main()
        if _received:  # a Ctrl-C whose KeyboardInterrupt a library swallowed on the way
            raise KeyboardInterrupt
    except BaseException as stop:
        if not (isinstance(stop, KeyboardInterrupt) or _received):
            raise  # SystemExit from argparse, a real error
        # a KeyboardInterrupt raised while MLX's extension initializes comes out as its ImportError
        _install(_quit_now)  # a second Ctrl-C while this is printed is just as quiet
        text = str(stop) if getattr(stop, "resume_command", None) else "interrupted"
        print(f"\n{text}", file=sys.stderr)
        _exit_now(128 + (_received[-1] if _received else signal.SIGINT))
    sys.exit(code or 0)


def _let_mlx_ask_for_its_compiler() -> None:
    """Trace one tiny `mx.compile` on the CPU (no kernel is built): MLX's once-per-process
    `system("g++ --version")` happens now, while the start-up thread takes Ctrl-C, not mid-run."""
    try:
        import wordle_mlx  # noqa: F401  (OpenBLAS before MLX)
        import mlx.core as mx
    except ImportError:  # the script's own import says what is missing
        return
    with mx.stream(mx.cpu):
        mx.compile(lambda x: x * 2 + 1)(mx.zeros(1))


def _environment_error() -> int:
    """2 after one line when a WORDLE_MLX_* setting in the environment is unusable, else 0."""
    if not os.environ.get("WORDLE_MLX_PATTERNS_DEVICE"):
        return 0
    from wordle_mlx.wordle import patterns

    try:
        patterns.wordle_device()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _exit_now(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(code)


def model_for_adapter(model: str | None, adapter: str | None) -> str:
    """The model to load: `model` if given, else the base model `adapter` records, else the default.
    ValueError (one line) when the adapter records another base model than `model`."""
    from wordle_mlx.model import lora, models

    recorded = lora.adapter_base_model(adapter) if adapter else None
    if model and recorded and model != recorded:
        raise ValueError(f"--adapter: {adapter} was trained on {recorded}, not {model} (drop --model to use it)")
    return model or recorded or models.DEFAULT_MODEL


class OneLineErrors(argparse.ArgumentParser):
    """argparse whose usage errors are one line, `error: ... (python -m scripts.NAME --help)`, exit 2:
    the usage block it prints by default buries the one line that matters."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def make_parser(doc: str | None) -> argparse.ArgumentParser:
    """A script's argument parser: its docstring as the description, one-line usage errors."""
    return OneLineErrors(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
