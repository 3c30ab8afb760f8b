"""Typed errors. Every message names the offending file, key or class and says what to do.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``; a traceback
is shown only with ``--debug``. Exit codes are documented in the README.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, TypeVar, Union


@dataclass(frozen=True)
class Flag:
    """The option of the readers or the trainer that fixes an error, kept apart from the message's words so
    that every front end names it in its own terms: a command's flag (``pass --size N``, the default), a
    recipe key (``set data.size: N``), ``augmentgan convert`` for a command without that option, or nothing
    where no such option exists. ``before`` and ``after`` are the words that go with it, and go with it.

    ``option`` is the readers' or trainer's keyword (size, skip_bad, split, keys, channels, device,
    precision); ``value`` what to give it ("N", "IMAGES,LABELS[,CLASS_NAMES]"; "" for a switch).
    """

    option: str
    value: str = ""
    before: str = ""
    after: str = ""


# what a front end says for a Flag: the action ("pass --size N"), or None to leave the hint out
Terms = Callable[[Flag], Optional[str]]


def flag_name(flag: Flag) -> str:
    """``--size N``: the command-line spelling of ``flag``."""
    return f"--{flag.option.replace('_', '-')} {flag.value}".rstrip()


def command_terms(flag: Flag) -> str:
    """The default terms: the commands' flags (``pass --size N``)."""
    return f"pass {flag_name(flag)}"


def render(parts: tuple[Union[str, Flag], ...], terms: Terms) -> str:
    """``parts`` as one message, every Flag in ``terms`` (with its words, or without them where ``terms`` leave it out)."""
    out = []
    for part in parts:
        if isinstance(part, Flag):
            action = terms(part)
            part = "" if action is None else f"{part.before}{action}{part.after}"
        out.append(part)
    return "".join(out)


_E = TypeVar("_E", bound="AugmentganError")


class AugmentganError(Exception):
    """Base class of every error augmentgan raises on purpose.

    The message is given in parts: text, and :class:`Flag` hints that ``str()`` spells as the commands'
    flags and :meth:`in_terms` as another front end's (a recipe's keys, ``augmentgan convert``).
    """

    exit_code = 1

    def __init__(self, *parts: Union[str, Flag]) -> None:
        super().__init__(render(parts, command_terms))
        self.parts = parts

    def in_terms(self: _E, terms: Terms, prefix: str = "") -> _E:
        """The same error (type, cause) with its Flag hints in ``terms`` and ``prefix`` in front; its hints are final."""
        err = type(self)(prefix + render(getattr(self, "parts", (str(self),)), terms))
        err.__cause__, err.__traceback__ = self.__cause__, self.__traceback__
        return err


def in_terms(err: BaseException, terms: Terms, prefix: str = "") -> BaseException:
    """:meth:`AugmentganError.in_terms` for any exception (others keep their text, with ``prefix``)."""
    if isinstance(err, AugmentganError):
        return err.in_terms(terms, prefix)
    try:
        return type(err)(prefix + str(err)) if prefix else err
    except TypeError:  # an exception type that is not built from a message
        return err


class DataError(AugmentganError):
    """Input data that cannot be read or does not make sense (missing path, corrupt image...)."""

    exit_code = 3


class ImageArrayError(DataError, ValueError):
    """An array given to :class:`augmentgan.GANOverSampler` that does not hold images (wrong
    shape, pixel values out of range): a DataError, and a ValueError as scikit-learn expects."""


class ConfigError(AugmentganError):
    """A bad preset, override, recipe key or option value."""

    exit_code = 4


class OutputExistsError(AugmentganError):
    """An output path exists and ``--force`` was not given."""

    exit_code = 5


class OutputError(AugmentganError):
    """An output cannot be written (unsafe class name, unwritable folder...)."""

    exit_code = 5


class TrainingError(AugmentganError):
    """Training cannot go on (non-finite loss or weights, unusable checkpoint...)."""

    exit_code = 6


class CheckpointError(TrainingError):
    """A checkpoint that is missing, corrupt, foreign or of another configuration."""


class TrainingInterrupted(AugmentganError):
    """Training stopped on Ctrl-C (SIGINT) after writing a checkpoint; ``--resume`` continues it."""

    exit_code = 130


class GenerationError(AugmentganError):
    """Sampling cannot meet the request (quality filters reject too much...)."""

    exit_code = 7


class AugmentganWarning(UserWarning):
    """Warnings the library emits through :mod:`warnings`; the CLI shows them on stderr."""


EXIT_CODES = {
    0: "success",
    1: "unexpected internal error (a bug: rerun with --debug and report it)",
    2: "command-line usage error (unknown option, missing argument)",
    3: "bad input data (missing path, corrupt image, wrong HDF5/NPZ keys...)",
    4: "bad configuration (preset, --set override, recipe key)",
    5: "output problem (output exists without --force, unsafe class name, full disk, read-only folder)",
    6: "training failed (non-finite loss/weights, bad checkpoint)",
    7: "generation could not meet the request",
    130: "interrupted (Ctrl-C); training writes a checkpoint first",
}
