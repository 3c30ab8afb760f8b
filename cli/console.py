"""Shared output helpers: stderr console for progress/messages, stdout for results."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn, Optional

from rich.console import Console

err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


@dataclass
class _State:
    debug: bool = False


state = _State()


def fail(err: BaseException, code: int, message: Optional[str] = None) -> NoReturn:
    if state.debug:
        traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    text = message if message is not None else str(err)
    sys.stderr.write(f"error: {text}\n")
    sys.exit(code)


def warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    warn(str(message))
