"""Pseudo-labels from a semi-supervised GAN's K+1 discriminator (preset ``ssgan``, ``model.d_cond=kplus1``).

The discriminator's class logits ``l_k(x)`` with the fake class's logit fixed at 0 give the
K+1-way posterior ``p(k | x) = exp(l_k) / (1 + sum_j exp(l_j))`` (Salimans et al. 2016). An image's
pseudo-label is its most likely real class; its confidence is that class's K+1 posterior, so an
image D takes for a fake is not confidently labeled either. :func:`pseudo_label` keeps the images
whose confidence is at least ``min_confidence``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import torch
from torch import nn

from augmentgan.errors import CheckpointError, ConfigError
from augmentgan.gan import checkpoint as ckpt
from augmentgan.gan.config import GANConfig
from augmentgan.gan.fit import LEGACY_FIT, Fit, to_train
from augmentgan.gan.models import build_discriminator


@dataclass(frozen=True)
class KPlusOne:
    """A trained K+1 discriminator (eval mode) and what it was trained on."""

    D: nn.Module
    class_names: tuple[str, ...]
    img_size: int
    channels: int
    data_size: tuple[int, int]
    checkpoint: Path
    step: int
    fit: Fit = LEGACY_FIT  # how the run brought images to img_size (augmentgan.gan.fit)


def load_kplus1(path: str | Path) -> KPlusOne:
    """The K+1 discriminator of a checkpoint file; ConfigError when the run's D is not a K+1 classifier."""
    path = Path(path)
    return kplus1_from_payload(ckpt.load_intact(path)[0], path)


def kplus1_from_payload(payload: Mapping[str, Any], path: Path) -> KPlusOne:
    """The K+1 discriminator of a checkpoint read already (``payload``: what :func:`~augmentgan.gan.checkpoint.load_checkpoint`
    returned for ``path``, or a :class:`~augmentgan.gan.checkpoint.GeneratorCheckpoint`'s payload, which keeps D)."""
    try:
        gan = GANConfig.model_validate(payload["gan"])
        data = payload["data"]
        if gan.model.d_cond != "kplus1":
            raise ConfigError(f"{path} was trained with model.d_cond={gan.model.d_cond!r}: its discriminator is no K+1 classifier; label with a run of --preset ssgan (model.d_cond=kplus1)")
        with torch.random.fork_rng(devices=[]):
            D = build_discriminator(gan.model, img_size=data["img_size"], channels=data["channels"], num_classes=len(data["class_names"]), per_sample_grad=gan.reg.per_sample_grad)
        D.load_state_dict(payload["state"]["D"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{path}: its discriminator does not match this augmentgan's models ({type(err).__name__}); it was written by another version") from None
    return KPlusOne(D.eval().requires_grad_(False), tuple(data["class_names"]), int(data["img_size"]), int(data["channels"]), tuple(data["data_size"]), path, int(payload["step"]),
                    data.get("fit", LEGACY_FIT))


@torch.no_grad()
def class_posteriors(D: nn.Module, images: np.ndarray, img_size: int, *, fit: Fit, batch: int = 256) -> np.ndarray:
    """``(N, K + 1)`` posteriors (the K classes, then fake) of uint8 images ``(N, H, W, C)`` under a K+1 D."""
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).permute(0, 3, 1, 2).float()
        x = to_train(x, img_size, fit)
        logits, _ = D(x.div(127.5).sub(1.0), torch.zeros(len(x), dtype=torch.long), head=True)
        out.append(torch.softmax(torch.cat([logits.float(), torch.zeros(len(x), 1)], dim=1), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


@dataclass(frozen=True)
class PseudoLabels:
    """Labels and confidences of every image, and which of them pass ``min_confidence``."""

    labels: np.ndarray  # (N,) int64, the most likely real class
    confidence: np.ndarray  # (N,) float32, that class's K+1 posterior
    keep: np.ndarray  # (N,) bool


def pseudo_label(D: nn.Module, images: np.ndarray, img_size: int, *, fit: Fit, min_confidence: float, batch: int = 256) -> PseudoLabels:
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"--min-confidence {min_confidence}: a probability in [0, 1]")
    post = class_posteriors(D, images, img_size, fit=fit, batch=batch)
    labels = post[:, :-1].argmax(1).astype(np.int64)
    conf = post[np.arange(len(post)), labels].astype(np.float32)
    return PseudoLabels(labels, conf, conf >= min_confidence)


def kplus1_checkpoint(run_or_ckpt: str | Path, which: Optional[str] = None) -> Path:
    """The checkpoint ``which`` (auto, best, final, last, a step; default final) of a run folder, or the file
    itself (then ``which`` must be final or auto): :func:`~augmentgan.gan.checkpoint.checkpoint_target`'s rules."""
    path, choice = ckpt.checkpoint_target(run_or_ckpt, which or "final")
    return ckpt.checkpoint_file(path, choice)
