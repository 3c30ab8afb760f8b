"""Typed errors. Every message names the offending file, key or class and says what to do.

The CLI prints ``str(error)`` as one line and exits with ``error.exit_code``; a traceback
is shown only with ``--debug``. Exit codes are documented in the README.
"""

from __future__ import annotations


class AugmentganError(Exception):
    """Base class of every error augmentgan raises on purpose."""

    exit_code = 1


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
