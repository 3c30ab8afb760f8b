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
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from augmentgan.errors import CheckpointError

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


def prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest step checkpoints."""
    for _, path in step_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)


def atomic_write(path: Path, write) -> Path:  # noqa: ANN001 - write(file object)
    """Call ``write(f)`` on a temporary file next to ``path``, fsync it, then rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_checkpoint(payload: Mapping[str, Any], path: Path) -> Path:
    """Write ``payload`` plus the format marker and version, atomically."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    return atomic_write(path, lambda f: torch.save(data, f))


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
