"""How images of the data's size become the GAN's training size, and how its samples go back.

A GAN trains at one of a few sizes (16, 32, 64, 128) and its samples are written at the data's own
size, so every real image goes in through :func:`to_train` and every sample comes out through
:func:`to_data`. The round trip matters more than it looks: an antialiased bilinear resize of MNIST
digits 28 -> 32 -> 28 takes the improved precision / recall of the *real* training images against
the test images (``augmentgan evaluate``'s domain features) from 0.96 / 0.94 to 0.47 / 0.51, and of
the 8x8 digits 8 -> 16 -> 8 from 0.76 / 0.86 to 0.29 / 0.04 (benchmarks/RESULTS.md): a generator that
learnt the real images perfectly would still write blurred ones. So:

- ``scale``: the training size is a whole multiple of the data's: each pixel becomes a k x k block
  (nearest) going in, each k x k block is averaged coming out. Exact both ways (8 -> 16 -> 8).
- ``pad``: the data is smaller than the training size but fills at least 3/4 of its side (28 in 32,
  48 in 64, 100 in 128): the image is centered and its edge pixels repeated outward going in; the
  center is cropped coming out. Exact both ways, and nothing is resampled.
- ``resize``: antialiased bilinear both ways (any other pair of sizes, e.g. 16 px data at 64, or
  data larger than the training size). Lossy.

``auto`` (``train.fit``'s default) takes the first of these that applies. A run records what it
resolved to (``data.fit`` in its checkpoints); checkpoints written before the field existed resized.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from augmentgan.errors import ConfigError

__all__ = ["FIT_MODES", "LEGACY_FIT", "Fit", "FitRequest", "resolve_fit", "to_data", "to_train"]

Fit = Literal["scale", "pad", "resize"]
FitRequest = Literal["auto", "scale", "pad", "resize"]
FIT_MODES: tuple[str, ...] = ("auto", "scale", "pad", "resize")
LEGACY_FIT: Fit = "resize"  # checkpoints without data.fit were trained on resized images
PAD_MIN_FILL = 0.75  # pad only where the image fills at least this share of the training size's side


def resolve_fit(data_size: tuple[int, int], img_size: int, requested: FitRequest = "auto") -> Fit:
    """What ``requested`` means for images of ``data_size`` (H, W) trained at ``img_size``; a clear error where it cannot apply."""
    h, w = (int(v) for v in data_size)
    scalable = img_size % h == 0 and img_size % w == 0 and img_size // h == img_size // w
    paddable = h <= img_size and w <= img_size and min(h, w) >= PAD_MIN_FILL * img_size
    if requested == "auto":
        return "scale" if scalable else "pad" if paddable else "resize"
    if requested == "scale" and not scalable:
        raise ConfigError(f"train.fit=scale needs the training size to be a whole multiple of the images': {h}x{w} at {img_size}; use fit auto, pad or resize")
    if requested == "pad" and not (h <= img_size and w <= img_size):
        raise ConfigError(f"train.fit=pad needs images no larger than the training size: {h}x{w} at {img_size}; use fit auto or resize, or a larger train.img_size")
    if requested not in FIT_MODES:
        raise ConfigError(f"train.fit={requested!r} is not one of {', '.join(FIT_MODES)}")
    return requested  # type: ignore[return-value]


def _pads(h: int, w: int, img_size: int) -> tuple[int, int, int, int]:
    top, left = (img_size - h) // 2, (img_size - w) // 2
    return left, img_size - w - left, top, img_size - h - top


def to_train(x: torch.Tensor, img_size: int, fit: Fit) -> torch.Tensor:
    """Float images (N, C, H, W) at the data's size -> (N, C, img_size, img_size), the same value range."""
    h, w = x.shape[-2:]
    if (h, w) == (img_size, img_size):
        return x
    if fit == "scale":
        return F.interpolate(x, scale_factor=img_size // h, mode="nearest")
    if fit == "pad":
        return F.pad(x, _pads(h, w, img_size), mode="replicate")
    return F.interpolate(x, size=(img_size, img_size), mode="bilinear", antialias=True, align_corners=False)


def to_data(x: torch.Tensor, data_size: tuple[int, int], fit: Fit) -> torch.Tensor:
    """Float images (N, C, S, S) at the training size -> (N, C, H, W) at the data's size (the inverse of :func:`to_train`)."""
    h, w = (int(v) for v in data_size)
    s = x.shape[-1]
    if tuple(x.shape[-2:]) == (h, w):
        return x
    if fit == "scale":
        return F.avg_pool2d(x, s // h)
    if fit == "pad":
        left, _, top, _ = _pads(h, w, s)
        return x[..., top : top + h, left : left + w]
    return F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
