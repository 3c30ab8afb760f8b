"""Checkpoint files: an atomic ``torch.save`` of state dicts and plain data, read with ``weights_only=True``.

A checkpoint is a dict::

    format      "augmentgan-gan-checkpoint"      (marker: anything else is a foreign file)
    version     1
    step        G steps done
    gan         resolved GANConfig (plain dict)   train  TrainConfig (plain dict)
    data        fingerprint, class names and counts, data and training image sizes, channels
    state       ConditionalGAN.state_dict(): G, D, G_ema, both optimizers, scalers, counters,
                and its torch.Generator states (latent, augment, penalty)
    rng         batch sampler (numpy bit-generator state) and the global python/numpy/torch/cuda states
    versions    augmentgan, torch, numpy

Files are written to a temporary name in the same folder and renamed into place, so a kill at any
moment leaves either the previous file or the new one, never half a file under the final name.

Each checkpoint's sha256 is recorded beside it when it is written (``NAME.pt.sha256``, in
``sha256sum`` format, also written atomically), so damage done later (a full disk, a killed copy,
a bad sector) is caught before the file is used: :func:`verify` checks a file against its record
(or, for a file without one, reads it), :func:`newest_intact` finds the newest checkpoint of a
run that verifies, setting aside (renaming, never deleting) the damaged ones with a warning.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch

from augmentgan.errors import AugmentganWarning, CheckpointError

FORMAT = "augmentgan-gan-checkpoint"
VERSION = 1
_STEP_RE = re.compile(r"^step-(\d+)\.pt$")


def step_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:06d}.pt"


def step_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``step-NNNNNN.pt`` in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_RE.match(p.name))]
    return sorted(found)


def digest_path(path: Path) -> Path:
    """Where the sha256 of checkpoint ``path`` is recorded: ``path`` + ``.sha256``."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest step checkpoints (and their sha256 records)."""
    for _, path in step_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
        digest_path(path).unlink(missing_ok=True)


def atomic_write(path: Path, write, *, record_sha256: bool = False) -> Path:  # noqa: ANN001 - write(file object)
    """Call ``write(f)`` on a temporary file next to ``path``, fsync it, then rename it to ``path``.

    ``record_sha256``: also record the written file's sha256 in :func:`digest_path` (the old
    record is removed before the rename, the new one written after it, so a record never
    describes another file than the one under ``path``).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if record_sha256:
            digest = file_sha256(tmp)
            digest_path(path).unlink(missing_ok=True)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if record_sha256:
        atomic_write(digest_path(path), lambda f: f.write(f"{digest}  {path.name}\n".encode("utf-8")))
    return path


def save_checkpoint(payload: Mapping[str, Any], path: Path) -> Path:
    """Write ``payload`` plus the format marker and version, atomically, and record its sha256."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    return atomic_write(path, lambda f: torch.save(data, f), record_sha256=True)


def recorded_sha256(path: Path) -> Optional[str]:
    """The sha256 recorded when ``path`` was written, ``None`` when there is no (readable) record."""
    try:
        text = digest_path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    first = text.split()[0] if text.split() else ""
    return first.lower() if re.fullmatch(r"[0-9a-fA-F]{64}", first) else None


def verify(path: Path) -> Optional[str]:
    """``None`` when checkpoint ``path`` is intact, else why not (one short phrase).

    With a recorded sha256 the file's bytes are compared to it; without one (a run written
    before records existed, or killed between the file and its record) the file is read.
    """
    path = Path(path)
    want = recorded_sha256(path)
    try:
        if want is not None:
            got = file_sha256(path)
            return None if got == want else f"its sha256 {got[:12]}... differs from {want[:12]}... recorded when it was written"
        load_checkpoint(path)
    except OSError as err:
        return f"it cannot be read: {err.strerror or err}"
    except CheckpointError:
        return "it cannot be read as an augmentgan checkpoint"
    return None


def set_aside(path: Path) -> Path:
    """Rename a damaged checkpoint (and its record) to ``NAME.damaged[-N]`` beside it; never deletes."""
    path = Path(path)
    new = path.with_name(path.name + ".damaged")
    n = 1
    while new.exists() or new.is_symlink():
        n += 1
        new = path.with_name(f"{path.name}.damaged-{n}")
    os.replace(path, new)
    if digest_path(path).exists():
        os.replace(digest_path(path), digest_path(new))
    return new


def set_aside_if_damaged(path: Path) -> Optional[Path]:
    """:func:`verify` ``path``; a damaged one is set aside with a warning naming it. Returns where it went, or ``None`` when intact."""
    problem = verify(path)
    if problem is None:
        return None
    new = set_aside(path)
    warnings.warn(
        f"checkpoint {path} is damaged ({problem}): set aside as {new.name}; the newest intact earlier checkpoint is used instead",
        AugmentganWarning, stacklevel=2,
    )
    return new


def newest_intact(folder: Path) -> Optional[Path]:
    """The newest checkpoint in a run's ``checkpoints`` folder that verifies (step checkpoints, newest first, then ``final.pt``).

    Damaged ones met on the way are set aside with a warning each; ``None`` when none is intact.
    """
    folder = Path(folder)
    candidates = [p for _, p in reversed(step_checkpoints(folder))] + [folder / "final.pt"]
    for path in candidates:
        if path.is_file() and set_aside_if_damaged(path) is None:
            return path
    return None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a missing, corrupt or foreign file is a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give a run folder or a .pt file written by `augmentgan train`")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt zip, truncated file, pickled objects refused by weights_only
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({first[:160]}); it is corrupt or not an augmentgan checkpoint - use a file written by `augmentgan train`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an augmentgan GAN checkpoint (no {FORMAT!r} marker); use a file written by `augmentgan train`")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint format v{payload['version']}, this augmentgan reads up to v{VERSION}: upgrade augmentgan")
    return payload


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def capture_global_rng() -> dict[str, Any]:
    """The global python / numpy / torch (and initialised CUDA) RNG states, as plain data and tensors.

    augmentgan draws nothing from them (it uses its own generators); they are kept so that code of
    the user's that does can continue its stream after a resume.
    """
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {**np_state, "state": {"key": np_state["state"]["key"].tolist(), "pos": int(np_state["state"]["pos"])}},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_global_rng(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np.asarray(np_state["state"]["key"], dtype=np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts (``[]`` when equal)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            out += diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    return [] if a == b else [prefix.rstrip(".")]
