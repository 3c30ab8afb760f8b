"""DiffAugment: differentiable augmentations applied to every image D sees, real and fake alike.

Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN
Training" (arXiv:2006.10738). A port of the official ``DiffAugment_pytorch.py``
(mit-han-lab/data-efficient-gans) with the same operations, parameters and order of random
draws, except that every random number comes from the ``generator`` argument. Images are
``[B, C, H, W]`` in [-1, 1]; apply it before PacGAN packing so each sample gets its own
augmentation.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from augmentgan.gan._random import rand, randint

__all__ = ["DIFFAUG_OPS", "diff_augment", "parse_policy"]

Op = Callable[[Tensor, Optional[torch.Generator]], Tensor]


def _per_sample(x: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    return rand((x.shape[0], 1, 1, 1), x, generator)


def rand_brightness(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Add one offset in [-0.5, 0.5) per sample."""
    return x + (_per_sample(x, generator) - 0.5)


def rand_saturation(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Scale each pixel's deviation from its channel mean by a factor in [0, 2) per sample."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_per_sample(x, generator) * 2) + mean


def rand_contrast(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Scale the deviation from the image mean by a factor in [0.5, 1.5) per sample."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (_per_sample(x, generator) + 0.5) + mean


def rand_translation(x: Tensor, generator: Optional[torch.Generator] = None, ratio: float = 0.125) -> Tensor:
    """Shift each sample by up to ``ratio`` of its size (integer pixels per axis), filling with zeros.

    Output pixel (i, j) is input pixel (i + tx, j + ty), zero where that falls outside.
    """
    b, _, h, w = x.shape
    shift_h, shift_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx = randint(-shift_h, shift_h + 1, (b, 1), x, generator)
    ty = randint(-shift_w, shift_w + 1, (b, 1), x, generator)
    # Index into a 1-pixel zero border: positions outside the image clamp onto that border.
    rows = (torch.arange(h, device=x.device)[None, :] + tx + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device)[None, :] + ty + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def rand_cutout(x: Tensor, generator: Optional[torch.Generator] = None, ratio: float = 0.5) -> Tensor:
    """Zero one ``ratio``-sized square per sample (all channels), centred anywhere, clipped at the borders."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    off_h = randint(0, h + (1 - size_h % 2), (b, 1), x, generator)
    off_w = randint(0, w + (1 - size_w % 2), (b, 1), x, generator)
    top, left = off_h - size_h // 2, off_w - size_w // 2
    i = torch.arange(h, device=x.device)[None, :]
    j = torch.arange(w, device=x.device)[None, :]
    in_rows = (i >= top) & (i < top + size_h)
    in_cols = (j >= left) & (j < left + size_w)
    keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
    return x * keep.unsqueeze(1).to(x.dtype)


DIFFAUG_OPS: dict[str, tuple[Op, ...]] = {
    "color": (rand_brightness, rand_saturation, rand_contrast),
    "translation": (rand_translation,),
    "cutout": (rand_cutout,),
}


def parse_policy(policy: str) -> list[str]:
    """``"color, cutout"`` -> ``["color", "cutout"]``; ValueError naming the valid ops on an unknown one."""
    ops = [p.strip() for p in policy.split(",") if p.strip()]
    bad = [p for p in ops if p not in DIFFAUG_OPS]
    if bad:
        raise ValueError(
            f"unknown DiffAugment op(s) {bad} in policy {policy!r}; use a comma-separated subset of {sorted(DIFFAUG_OPS)}"
        )
    return ops


def diff_augment(x: Tensor, policy: str, *, generator: Optional[torch.Generator] = None, p: Optional[Tensor] = None) -> Tensor:
    """Apply the ops of ``policy`` (e.g. ``"color,translation,cutout"``) to ``x`` [B, C, H, W].

    Differentiable with respect to ``x``; every random number is drawn from ``generator``.
    An empty policy returns ``x`` itself. ``p`` (a 0-dim tensor, ADA's adaptive probability,
    Karras et al. 2020): each op group of the policy is applied to a sample with probability ``p``
    (one uniform per sample and group, drawn after the op's own numbers); None = always applied.
    """
    ops = parse_policy(policy)
    if not ops:
        return x
    if x.ndim != 4:
        raise ValueError(f"diff_augment expects images [B, C, H, W], got shape {tuple(x.shape)}")
    for name in ops:
        y = x
        for op in DIFFAUG_OPS[name]:
            y = op(y, generator)
        if p is not None:
            keep = _per_sample(x, generator) >= p.to(x.dtype)
            y = torch.where(keep, x, y)
        x = y
    return x.contiguous()
