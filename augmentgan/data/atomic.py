"""Atomic outputs: write under a hidden temporary name next to the target, rename at the end.

An interrupted or failed write never leaves anything under the final name. With ``force`` an
existing output (file or folder) is first renamed away, the new one renamed in, and only then
the old one deleted, so a crash never leaves a mix of old and new files.

A write that fails on the way (a full disk, a read-only or vanished folder) removes the
temporary output and becomes an :class:`OutputError` naming the output, the file that failed and
why (:func:`write_failure`), never a bare ``OSError``.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from augmentgan.errors import ConfigError, OutputError, OutputExistsError


def _input_path(spec: str | os.PathLike) -> Path | None:
    """The file or folder an input spec names (``builtin:NAME``: none; ``FILE.npz:KEY``: the file)."""
    text = os.fspath(spec)
    if text.startswith("builtin:"):
        return None
    path = Path(text)
    if not path.exists() and ":" in text:
        path = Path(text.rsplit(":", 1)[0])
    return path


def check_not_over(path: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
    """Refuse an output that replacing would destroy an input with: the input itself, a folder that holds
    an input, or the current folder (or one above it); and an output inside an input folder of images,
    which reading that folder again would take for a class of images (a GAN run folder, with its
    checkpoints/, may hold outputs). ConfigError naming both; called whether or not the output exists,
    so a dry run and the real run agree."""
    out = Path(path)
    target = out.resolve()
    for spec in inputs:
        if spec is None or (src := _input_path(spec)) is None:
            continue
        held = src.resolve()
        if target == held:
            raise ConfigError(f"output {out} is the input {os.fspath(spec)} itself; write the output to another path")
        if target in held.parents:
            raise ConfigError(f"output {out} holds the input {os.fspath(spec)}; replacing it would delete the input - write the output to another path")
        if held in target.parents and held.is_dir() and not (held / "checkpoints").is_dir():
            raise ConfigError(f"output {out} lies inside the input folder {os.fspath(spec)}; reading that folder again would take the output "
                              f"for a class of images - write the output outside it")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise ConfigError(f"output {os.fspath(path) or '(empty)'} is the current folder or a folder above it; replacing it would delete "
                          f"everything in it - name a new folder for the output")


def check_output(path: str | os.PathLike, *, force: bool, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Refuse an existing output unless ``force``, and (always) an output whose replacement would
    delete one of ``inputs`` (:func:`check_not_over`); call it before expensive work."""
    check_not_over(path, inputs)
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not force:
        raise OutputExistsError(f"output {path} already exists; pass --force (force=True) to replace it or choose another path")
    return path


_HINTS = {
    errno.ENOSPC: "free some disk space (or choose a folder on another disk) and run it again",
    errno.EDQUOT: "free some space in your disk quota and run it again",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EACCES: "you may not write there: choose a writable folder or fix its permissions",
    errno.EPERM: "you may not write there: choose a writable folder or fix its permissions",
}


def final_name(path: str | os.PathLike) -> str:
    """A path inside a staged output (``DIR/.NAME.tmp-PID/x``) as the user named it (``DIR/NAME/x``)."""
    return re.sub(r"(^|/)\.([^/]+)\.tmp-\d+(?=/|$)", r"\1\2", os.fspath(path))


def write_failure(path: str | os.PathLike, err: OSError) -> OutputError:
    """The one-line error for writing output ``path`` that failed with ``err`` (the temporary output is already gone)."""
    text = " ".join(str(err).split())
    code = err.errno
    if code is None and (m := re.search(r"errno = (\d+)", text)):  # h5py puts the C errno into its message
        code = int(m.group(1))
    reason = err.strerror or (os.strerror(code) if code else "") or text[:200] or type(err).__name__
    path = final_name(path)
    where = f" at {final_name(err.filename)}" if err.filename and final_name(err.filename) != path else ""
    hint = _HINTS.get(code, "check the folder and the free space") if code is not None else "check the folder and the free space"
    return OutputError(f"cannot write {path}{where}: {reason}; nothing was left under {path} - {hint}")


def probe_writable(path: str | os.PathLike) -> None:
    """Create (and remove) an empty file beside output ``path``, its folder made if missing: an OutputError now,
    before expensive work, when the folder cannot be written (read-only, a virtual file system, a file in the way)."""
    path = Path(path)
    probe = path.parent / f".{path.name}.probe-{os.getpid()}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise write_failure(path, err) from None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


class StagedOutput:
    """A temporary path ``.NAME.tmp-PID`` beside ``path``; :meth:`commit` renames it into place."""

    def __init__(self, path: str | os.PathLike, *, force: bool) -> None:
        self.path = check_output(path, force=force)
        self.force = force
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the folder {parent} for output {self.path}: {err.strerror}; check the path and permissions") from None
        self.tmp = parent / f".{self.path.name}.tmp-{os.getpid()}"
        _remove(self.tmp)  # a stale leftover of a killed run with the same pid

    def commit(self) -> Path:
        """Move the finished temporary output to the final name (replacing an old one if forced)."""
        old = None
        if self.path.exists() or self.path.is_symlink():
            if not self.force:
                self.abort()
                raise OutputExistsError(f"output {self.path} appeared while writing; pass --force to replace it")
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            _remove(old)
            os.replace(self.path, old)
        try:
            os.replace(self.tmp, self.path)
        except OSError as err:
            if old is not None:
                os.replace(old, self.path)
            self.abort()
            raise OutputError(f"cannot move the finished output into {self.path}: {err.strerror}") from None
        if old is not None:
            _remove(old)
        return self.path

    def abort(self) -> None:
        """Delete the temporary output (on any failure)."""
        _remove(self.tmp)


@contextmanager
def staged_output(path: str | os.PathLike, *, force: bool) -> Iterator[Path]:
    """``with staged_output(out, force=...) as tmp:`` write ``tmp``; it is renamed to ``out`` on success."""
    staged = StagedOutput(path, force=force)
    try:
        yield staged.tmp
    except OSError as err:
        staged.abort()
        raise write_failure(staged.path, err) from None
    except BaseException:
        staged.abort()
        raise
    staged.commit()
