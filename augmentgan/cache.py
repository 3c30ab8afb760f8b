"""The user cache: where it lives, and one lock per cache entry.

Root: ``$AUGMENTGAN_CACHE_DIR``; when that is unset, ``$XDG_CACHE_HOME/augmentgan``; when that
is unset too, ``~/.cache/augmentgan``. GAN runs live in ``ROOT/runs/<key>/``, domain classifiers
in ``ROOT/classifiers/<key>.pt``.

Several processes may need the same entry at once (two terminals, a CI matrix): whoever takes an
entry's lock builds it; the others wait, saying so (an :class:`~augmentgan.errors.AugmentganWarning`
the CLI shows, and a ``"wait"`` progress event), then reuse what was built. The lock is an OS
file lock (``filelock``: ``flock`` on Unix, ``LockFileEx`` on Windows) on ``<entry>.lock`` beside
the entry: the operating system drops it when its holder exits, however it exits (SIGKILL
included), so a lock left by a killed process never blocks anyone.

:func:`cache_entries` lists what the cache holds and :func:`clear_cache` prunes it (``augmentgan
cache list | clear``); an entry another process holds is never removed.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from filelock import FileLock, Timeout

from augmentgan.errors import AugmentganWarning, OutputError
from augmentgan.progress import ProgressCallback, report

__all__ = ["CacheEntry", "cache_entries", "cache_root", "clear_cache", "entry_lock", "in_use", "lock_path"]


def cache_root() -> Path:
    """``$AUGMENTGAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/augmentgan``, else ``~/.cache/augmentgan``."""
    env = os.environ.get("AUGMENTGAN_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    # the XDG spec: a relative path is invalid and must be ignored
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "augmentgan"


_HELD: set[str] = set()  # entries this process holds (their locks conflict with a second fd of our own)


def lock_path(entry: str | os.PathLike) -> Path:
    """The lock file of a cache entry: ``<entry>.lock`` beside it (never inside a folder that may be cleared)."""
    entry = Path(entry)
    return entry.with_name(entry.name + ".lock")


@contextmanager
def entry_lock(entry: str | os.PathLike, what: str = "cache entry", *, callback: Optional[ProgressCallback] = None, timeout: Optional[float] = None) -> Iterator[Path]:
    """Hold the lock of ``entry`` for the ``with`` block; wait (saying so) while another process holds it.

    ``timeout`` (seconds, ``None``: wait as long as the holder works) ends the wait with an
    OutputError naming the entry. Not re-entrant: never nest two locks of one entry.
    """
    entry = Path(entry)
    path = lock_path(entry)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the cache folder {path.parent} ({err.strerror}); set AUGMENTGAN_CACHE_DIR to a writable folder") from None
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        message = f"another augmentgan process is using the {what} {entry} (lock {path}); waiting for it to finish, then reusing its result"
        warnings.warn(message, AugmentganWarning, stacklevel=3)
        report(callback, "wait", 0, 1, message=message, entry=str(entry))
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise OutputError(f"the {what} {entry} stayed locked by another process for {timeout:g} s (lock {path}); try again when it is done") from None
        report(callback, "wait", 1, 1, message=f"{entry} is free", entry=str(entry))
    except OSError as err:
        raise OutputError(f"cannot lock the {what} {entry} ({err.strerror or err}); set AUGMENTGAN_CACHE_DIR to a writable local folder") from None
    key = str(entry.absolute())
    _HELD.add(key)
    try:
        yield path
    finally:
        _HELD.discard(key)
        lock.release()


def in_use(entry: str | os.PathLike) -> bool:
    """Whether another process holds the lock of ``entry`` right now (a moment's answer; ``False`` for an entry this process holds)."""
    path = lock_path(entry)
    if not path.exists() or str(Path(entry).absolute()) in _HELD:
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False


# --- what the cache holds, and pruning it ----------------------------------------------------------
def mark_used(entry: str | os.PathLike) -> None:
    """Refresh an entry's age when it is reused (``cache clear --older-than`` removes entries untouched
    for that long, by their newest file's time): a GAN run's ``config.yaml``, a classifier's file.
    A read-only cache keeps its times."""
    entry = Path(entry)
    try:
        os.utime(entry / "config.yaml" if entry.is_dir() else entry)
    except OSError:
        pass


@dataclass(frozen=True)
class CacheEntry:
    kind: str  # "gan-run" or "classifier"
    path: Path
    bytes: int
    modified: float  # newest modification time of its files (seconds since the epoch)
    complete: bool  # a GAN run with checkpoints/final.pt; a classifier file
    in_use: bool  # locked by a process right now

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _size_and_mtime(path: Path) -> tuple[int, float]:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    stats = [p.stat() for p in files]
    return sum(s.st_size for s in stats), max((s.st_mtime for s in stats), default=path.stat().st_mtime)


def cache_entries(root: Optional[str | os.PathLike] = None) -> list[CacheEntry]:
    """Every GAN run (``runs/<key>/``) and domain classifier (``classifiers/*.pt``) in the cache, oldest first."""
    root = Path(root) if root is not None else cache_root()
    if root.exists() and not root.is_dir():  # it would read as an empty cache, where expand fails to create it
        raise OutputError(f"the cache folder {root} is a file, not a folder; point AUGMENTGAN_CACHE_DIR (or --cache-dir) at a folder")
    found = []
    for kind, folder, pick in (("gan-run", root / "runs", Path.is_dir), ("classifier", root / "classifiers", lambda p: p.suffix == ".pt" and p.is_file())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(".") or not pick(path):
                continue
            size, mtime = _size_and_mtime(path)
            complete = (path / "checkpoints" / "final.pt").is_file() if kind == "gan-run" else True
            found.append(CacheEntry(kind, path, size, mtime, complete, in_use(path)))
    return sorted(found, key=lambda e: e.modified)


def clear_cache(*, older_than: Optional[float] = None, root: Optional[str | os.PathLike] = None) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Remove cache entries (those untouched for ``older_than`` seconds; all when ``None``).

    Returns (removed, skipped): an entry another process holds is skipped, never removed. Each
    removal happens under the entry's lock, so no process can start using it halfway.
    """
    now = time.time()
    removed, skipped = [], []
    for entry in cache_entries(root):
        if older_than is not None and now - entry.modified < older_than:
            continue
        lock = FileLock(str(lock_path(entry.path)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            skipped.append(entry)
            continue
        try:
            if entry.path.is_dir():
                shutil.rmtree(entry.path)
            else:
                entry.path.unlink(missing_ok=True)
        finally:
            lock.release()
        removed.append(entry)
    return removed, skipped
