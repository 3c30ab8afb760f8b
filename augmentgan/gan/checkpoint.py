"""Checkpoint files: an atomic ``torch.save`` of state dicts and plain data, read with ``weights_only=True``.

A checkpoint is a dict::

    format      "augmentgan-gan-checkpoint"      (marker: anything else is a foreign file)
    version     1
    step        G steps done
    gan         resolved GANConfig (plain dict)   train  TrainConfig (plain dict)
    data        fingerprint, class names and counts, data and training image sizes, channels (and
                real_fingerprint: the real part's, when synthetic images trained the GAN too)
    state       ConditionalGAN.state_dict(): G, D, G_ema, both optimizers, scalers, counters,
                its torch.Generator states (latent, augment, penalty), and with ``bigan.weight`` > 0
                ``bigan``: the jointly trained encoder E, D_xz and their optimizers
    rng         batch sampler (numpy bit-generator state) and the global python/numpy/torch/cuda states
    versions    augmentgan, torch, numpy

Files are written to a temporary name in the same folder and renamed into place, so a kill at any
moment leaves either the previous file or the new one, never half a file under the final name.

Each checkpoint's sha256 is recorded beside it when it is written (``NAME.pt.sha256``, in
``sha256sum`` format, also written atomically), so damage done later (a full disk, a killed copy,
a bad sector) is caught before the file is used: :func:`verify` checks a file against its record
(or, for a file without one, reads it), :func:`newest_intact` finds the newest checkpoint of a
run that verifies, setting aside (renaming, never deleting) the damaged ones with a warning.

Reading a trained generator lives here too: :func:`checkpoint_target` turns a run folder and a
``--checkpoint`` choice into a file, :func:`read_generator` reads that file once into a
:class:`GeneratorCheckpoint`, which builds the generator (EMA or raw weights) on any device as
often as its users need without reading the file again (and, for a BiGAN run, its jointly trained
encoder: :meth:`GeneratorCheckpoint.encoder`); :func:`load_generator` is both in one call.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from pydantic import ValidationError

from augmentgan.errors import AugmentganWarning, CheckpointError, ConfigError
from augmentgan.gan.bigan import encoder_from_state
from augmentgan.gan.config import GANConfig
from augmentgan.gan.fit import LEGACY_FIT, Fit
from augmentgan.gan.gan import resolve_device
from augmentgan.gan.layers import set_cond_scale
from augmentgan.gan.models import build_generator, growth_at, set_growth
from augmentgan.overrides import format_validation_error

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
        if first.startswith("Weights only load failed"):  # torch's long advice about weights_only, cut mid-sentence below
            first = "torch cannot read it as plain tensors and data"
        raise CheckpointError(
            f"checkpoint {path} cannot be read safely ({first[:160]}); it is corrupt or not an augmentgan checkpoint - use a file written by `augmentgan train`"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an augmentgan GAN checkpoint (no {FORMAT!r} marker); use a file written by `augmentgan train`")
    if payload.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has checkpoint format v{payload['version']}, this augmentgan reads up to v{VERSION}: upgrade augmentgan")
    return payload


def load_intact(path: Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], str]:
    """:func:`load_checkpoint` of a file that matches the sha256 recorded when it was written, and its sha256.

    For reading a finished run (sampling, encoding, labeling): a damaged file is a CheckpointError
    naming it and the way out, never used and never moved (training's resume sets damaged ones
    aside instead, :func:`newest_intact`). A file without a record is only read.
    """
    path = Path(path)
    if not path.is_file():
        return load_checkpoint(path, map_location), ""  # the one "does not exist" message
    try:
        got = file_sha256(path)
    except OSError as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err.strerror or err}") from None
    want = recorded_sha256(path)
    if want is not None and got != want:
        raise CheckpointError(
            f"checkpoint {path} is damaged: its sha256 {got[:12]}... differs from {want[:12]}... recorded when it was written; "
            f"use another checkpoint of the run (--checkpoint last, best or a step number) or train again"
        )
    return load_checkpoint(path, map_location), got


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


# --- reading a trained generator ----------------------------------------------------------------
@dataclass(frozen=True)
class GeneratorInfo:
    """What a generator was trained on, read from its checkpoint."""

    gan: GANConfig
    train: dict[str, Any]
    img_size: int
    channels: int
    data_size: tuple[int, int]
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    data_fingerprint: str
    checkpoint: Path
    sha256: str
    step: int
    ema: bool
    encoder: bool = False  # the run trained an encoder jointly (bigan.weight > 0): GeneratorCheckpoint.encoder()
    fit: Fit = LEGACY_FIT  # how the run brought images to img_size (augmentgan.gan.fit); its samples go back the same way
    real_fingerprint: Optional[str] = None  # the real part of its data when synthetic images trained it too (gan.train_on classical)


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The newest step checkpoint of a run (``final.pt`` if only that is left)."""
    found = step_checkpoints(run_dir / "checkpoints")
    if found:
        return found[-1][1]
    final = run_dir / "checkpoints" / "final.pt"
    return final if final.is_file() else None


def checkpoint_target(run_or_ckpt: str | os.PathLike, checkpoint: str | int = "auto") -> tuple[Path, str | int]:
    """``(path, which)`` for :func:`load_generator` from a run folder or .pt file and ``--checkpoint``.

    ``auto`` (the default) is ``best`` when the run kept a best checkpoint (trained with quality
    tracking, ``train.eval_every`` > 0) and ``final`` otherwise; ``best`` requires one.
    """
    path, choice = Path(run_or_ckpt), str(checkpoint)
    if choice.endswith(".pt") or os.sep in choice:
        return Path(choice), "final"
    if not path.is_dir():
        if not path.exists():
            raise CheckpointError(f"{path} does not exist; give a run folder of `augmentgan train` or one of its .pt checkpoints")
        if choice not in ("final", "auto"):
            raise ConfigError(f"--checkpoint {choice}: {path} is a checkpoint file already; give the run folder to choose another checkpoint")
        return path, "final"
    if choice == "auto":
        return path, "best" if (path / "checkpoints" / "best.pt").is_file() else "final"
    if choice == "best" and not (path / "checkpoints" / "best.pt").is_file():
        raise ConfigError(f"--checkpoint best: run folder {path} has no best checkpoint (checkpoints/best.pt): it was trained without quality tracking (--eval-every 0); use final or auto")
    if choice not in ("final", "best", "last") and not choice.isdigit():
        raise ConfigError(f"--checkpoint {choice!r}: use auto, best, final, last, a step number or a .pt file")
    return path, int(choice) if choice.isdigit() else choice


def checkpoint_file(run_or_ckpt: str | os.PathLike, which: str | int) -> Path:
    """The checkpoint file ``which`` (``final``, ``best``, ``last`` or a step) of a run folder; a file is itself."""
    path = Path(run_or_ckpt)
    if not path.is_dir():
        return path
    if which in ("final", "best"):
        target = path / "checkpoints" / f"{which}.pt"
        if which == "best" and not target.is_file():
            raise CheckpointError(f"run folder {path} has no checkpoints/best.pt (it was trained without quality tracking, train.eval_every=0); use final")
        return target
    if which == "last":
        last = latest_checkpoint(path)
        if last is None:
            raise CheckpointError(f"run folder {path} has no checkpoint; train it first (augmentgan train)")
        return last
    if isinstance(which, int) or str(which).isdigit():
        return step_path(path / "checkpoints", int(which))
    raise ConfigError(f"which={which!r}: use 'final', 'best', 'last' or a step number")


_KEPT_STATE = ("G", "G_ema", "D")  # what sampling needs; the optimizer states are dropped after reading


class GeneratorCheckpoint:
    """One checkpoint file, read once: builds its generator (and hands out its discriminator's
    weights) as often as callers need, without reading the file again.

    ``source`` is the run folder or file the user named (recorded in outputs); ``path`` the file read.
    """

    def __init__(self, path: Path, payload: Mapping[str, Any], source: str | os.PathLike | None = None, sha256: Optional[str] = None) -> None:
        self.path = Path(path)
        self.source = str(self.path if source is None else source)
        state = payload.get("state") if isinstance(payload, Mapping) else None
        kept = {k: state[k] for k in _KEPT_STATE if k in state} if isinstance(state, Mapping) else state
        if isinstance(state, Mapping) and isinstance(state.get("bigan"), Mapping):  # the joint encoder, not D_xz or the optimizers
            kept["bigan"] = {"E": state["bigan"].get("E")}
        self.payload: dict[str, Any] = {**payload, "state": kept}
        self._sha256: Optional[str] = sha256 or None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = file_sha256(self.path)
        return self._sha256

    @property
    def data_spec(self) -> Optional[str]:
        """Where the training data came from (the run's recorded data spec), if recorded."""
        return self.payload["data"].get("spec")

    def _invalid(self, err: Exception) -> CheckpointError:
        detail = format_validation_error(err) if isinstance(err, ValidationError) else f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return CheckpointError(f"{self.path} does not match this augmentgan's GAN models ({detail[:200]}); it was written by another version or edited")

    def info(self, ema: bool = True) -> GeneratorInfo:
        """What the generator was trained on (``ema``: whether the EMA weights would be used), without building it."""
        payload = self.payload
        try:
            gan = GANConfig.model_validate(payload["gan"])
            data = payload["data"]
            use_ema = ema and payload["state"]["G_ema"] is not None
            return GeneratorInfo(
                gan=gan, train=payload["train"], img_size=int(data["img_size"]), channels=int(data["channels"]),
                data_size=tuple(data["data_size"]), class_names=tuple(data["class_names"]), class_counts=tuple(data["class_counts"]),
                data_fingerprint=data["fingerprint"], checkpoint=self.path, sha256=self.sha256, step=int(payload["step"]), ema=use_ema,
                encoder=self.has_encoder, fit=data.get("fit", LEGACY_FIT), real_fingerprint=data.get("real_fingerprint"),
            )
        except (KeyError, TypeError, ValidationError) as err:
            raise self._invalid(err) from None

    @property
    def has_encoder(self) -> bool:
        """Whether the run trained an encoder jointly with the GAN (``bigan.weight`` > 0, BiGAN/ALI)."""
        state = self.payload.get("state")
        return isinstance(state, Mapping) and isinstance(state.get("bigan"), Mapping) and state["bigan"].get("E") is not None

    def encoder(self, device: str | torch.device = "cpu") -> torch.nn.Module:
        """The jointly trained encoder ``E(x, y) -> z`` (eval mode, no grad; images in [-1, 1] at the
        training size). It was trained beside the raw generator, not its EMA copy. ConfigError naming the
        run when it has none."""
        if not self.has_encoder:
            raise ConfigError(f"run {self.source} has no jointly trained encoder (it was trained with bigan.weight=0); train it with --set bigan.weight=1, or use the fitted encoder")
        info = self.info()
        try:
            E = encoder_from_state(info.gan.bigan, self.payload["state"]["bigan"]["E"], img_size=info.img_size, channels=info.channels,
                                   num_classes=len(info.class_names), z_dim=info.gan.model.z_dim)
        except (KeyError, TypeError, RuntimeError) as err:
            raise self._invalid(err) from None
        return E.to(resolve_device(device))

    def generator(self, ema: bool = True, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, GeneratorInfo]:
        """The trained generator (eval mode, no grad) and what it was trained on.

        ``ema=True`` loads the EMA weights when the run kept them (``info.ema`` says which weights
        were loaded). Each call builds a new module from the weights read once.
        """
        info = self.info(ema)
        state = self.payload["state"]
        try:
            weights = state["G_ema"]["model"] if info.ema else state["G"]
            with torch.random.fork_rng(devices=[]):
                G = build_generator(info.gan.model, img_size=info.img_size, channels=info.channels, num_classes=len(info.class_names))
            G.load_state_dict(weights)
            set_cond_scale(G, info.gan.tricks.cond_scale(info.step))  # transitional conditioning's lambda_t at that step
            set_growth(G, *growth_at(info.gan.model, info.img_size, info.step))  # progressive growing's resolution at that step
        except (KeyError, TypeError, ValidationError, RuntimeError) as err:
            raise self._invalid(err) from None
        return G.to(resolve_device(device)).eval().requires_grad_(False), info


def read_generator(run_or_ckpt: str | os.PathLike, checkpoint: str | int = "auto") -> GeneratorCheckpoint:
    """Read the checkpoint ``checkpoint`` (see :func:`checkpoint_target`) of a run folder, or a .pt file, once."""
    path, which = checkpoint_target(run_or_ckpt, checkpoint)
    file = checkpoint_file(path, which)
    payload, sha256 = load_intact(file)
    return GeneratorCheckpoint(file, payload, source=run_or_ckpt, sha256=sha256)


GeneratorSource = Union[str, os.PathLike, GeneratorCheckpoint]
"""A run folder, a .pt file, or a checkpoint read already (what generation and reports accept)."""


def open_generator(source: GeneratorSource, checkpoint: str | int = "auto") -> GeneratorCheckpoint:
    """``source`` itself when it was read already (``checkpoint`` is then ignored: the caller chose
    it when reading), else :func:`read_generator` of it: a caller holding a checkpoint passes it on
    instead of letting each stage read the file again."""
    return source if isinstance(source, GeneratorCheckpoint) else read_generator(source, checkpoint)


def load_generator(
    run_or_ckpt: str | Path, which: str | int = "final", ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[torch.nn.Module, GeneratorInfo]:
    """The trained generator (eval mode, no grad) and what it was trained on.

    ``run_or_ckpt`` is a run folder (``which``: ``"final"``, ``"best"``, ``"last"`` or a step number) or a
    checkpoint file. ``ema=True`` loads the EMA weights when the run kept them (``info.ema`` says
    which weights were loaded).
    """
    path = checkpoint_file(run_or_ckpt, which)
    payload, sha256 = load_intact(path)
    return GeneratorCheckpoint(path, payload, sha256=sha256).generator(ema=ema, device=device)
