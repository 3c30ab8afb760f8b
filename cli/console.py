"""Shared output helpers: stderr console for progress/messages, stdout for results."""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass, field
from typing import NoReturn, Optional, TextIO

from rich.console import Console

PIPE_WIDTH = 10_000
"""Console width when stdout is not a terminal: results piped to a file or another program are
never hard-wrapped (a path stays on one line); in a terminal rich fits the terminal."""


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# soft_wrap: printed lines are never broken by rich (a terminal wraps them itself); stdout's
# tables get a wide console when piped. stderr keeps rich's width for its progress bars.
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
out_console = Console(highlight=False, soft_wrap=True, width=None if _is_tty(sys.stdout) else PIPE_WIDTH)


@dataclass
class _State:
    debug: bool = False
    json: bool = False  # --json given: errors are also a JSON object on stdout
    # warnings shown in this command: each text once (code that enters warnings.catch_warnings, as
    # imbalanced-learn's callers and the plan's folds do, resets Python's own "default" once-only memory)
    shown: set[str] = field(default_factory=set)


state = _State()


def fail(err: BaseException, code: int, message: Optional[str] = None) -> NoReturn:
    if state.debug:
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    text = message if message is not None else str(err)
    sys.stderr.write(f"error: {text}\n")
    if state.json:
        sys.stdout.write(json.dumps({"error": text, "type": type(err).__name__, "exit_code": code}) + "\n")
    sys.exit(code)


def warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    text = str(message)
    if text not in state.shown:
        state.shown.add(text)
        warn(text)
