"""Progressive growing (Karras et al. 2018, ProGAN, arXiv:1710.10196) for the residual models.

A growing generator has one RGB head per resolution from ``model.grow.start`` up (the model's own
``out`` layer is the head at the training size) and runs only the blocks up to the current
resolution; while a resolution fades in, its image is ``lerp(up2(old head(h_prev)), new head(h), a)``.
A growing discriminator has a 1x1 "from RGB" conv per resolution that enters the block stack where
that resolution is the block input; while fading, ``lerp(fromRGB_old(avgpool2(x)), blocks(fromRGB_new(x)), a)``.
At ``a = 0`` both are exactly the networks of the previous resolution (upsampled / downsampled):
a growth step does not change what G makes or what D computes.

The current resolution and alpha are plain attributes (``grow_res``, ``grow_alpha``) that
:func:`set_growth` sets from the G step counter (the GAN before each iteration, ``load_generator``
from a checkpoint's step), so checkpoints need no extra state. A freshly built model is at its
final size. The growing layers are built after all others, so a model's other weights are
initialised exactly as without growing.

Training-mode G returns images at the current resolution; eval mode (sampling) upsamples them
(nearest) to the training size unless ``native=True``, so samplers see one size at every stage.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def rgb_head(width: int, channels: int, conv: Callable[..., nn.Module]) -> nn.Module:
    """BN-ReLU-conv3-tanh, the residual generators' output layer."""
    return nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), conv(width, channels, 3, padding=1), nn.Tanh())


def set_growth(module: nn.Module, res: int, alpha: float) -> None:
    """Put the current resolution and fade-in alpha into every growing G or D inside ``module``."""
    for m in module.modules():
        if isinstance(m, (GrowingGenerator, GrowingDiscriminator)) and m.growing:
            m.grow_res, m.grow_alpha = int(res), float(alpha)


def resize_reals(x: Tensor, res: int, alpha: float) -> Tensor:
    """Real images as D sees them at ``res`` (average pooling), blended with the half resolution while fading in."""
    if x.shape[-1] != res:
        x = F.avg_pool2d(x, x.shape[-1] // res)
    if alpha < 1.0:
        x = torch.lerp(F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest"), x, alpha)
    return x


class GrowingGenerator(nn.Module):
    """Mixin of the residual generators: ``_init_growth`` after the layers, ``_synthesize`` in forward.

    The subclass provides ``blocks``, ``attention``/``attn_after`` and ``out``.
    """

    growing = False

    def _init_growth(self, img_size: int, sizes: Sequence[int], widths: Sequence[int], grow_from: Optional[int], channels: int, conv: Callable[..., nn.Module]) -> None:
        """``sizes[i]``/``widths[i]``: the feature-map size and width after block ``i``."""
        self.img_size, self.grow_res, self.grow_alpha = img_size, img_size, 1.0
        self.growing = grow_from is not None
        self.to_rgb = nn.ModuleDict({str(s): rgb_head(w, channels, conv) for s, w in zip(sizes, widths) if grow_from <= s < img_size}) if self.growing else None

    def _head(self, res: int) -> nn.Module:
        return self.out if res == self.img_size else self.to_rgb[str(res)]

    def _synthesize(self, h: Tensor, conds: Sequence[Tensor], native: bool = False) -> Tensor:
        res, alpha = (self.grow_res, self.grow_alpha) if self.growing else (self.img_size, 1.0)
        n = int(math.log2(res // 4))  # blocks to run: block i makes 8 * 2^i pixels
        prev = h
        for i in range(n):
            prev = h
            h = self.blocks[i](h, conds[i])
            if i == self.attn_after:
                h = self.attention(h)
        img = self._head(res)(h)
        if alpha < 1.0:
            img = torch.lerp(F.interpolate(self._head(res // 2)(prev), scale_factor=2, mode="nearest"), img, alpha)
        if res != self.img_size and not self.training and not native:
            img = F.interpolate(img, size=(self.img_size, self.img_size), mode="nearest")
        return img


class GrowingDiscriminator(nn.Module):
    """Mixin of the residual discriminators: ``_init_growth`` after the layers, ``_run_blocks`` in features.

    The subclass provides ``blocks``, ``mbstd``, ``attention``/``attn_after``; ``run_block(i, h)`` runs one.
    """

    growing = False

    def _init_growth(self, img_size: int, in_sizes: Sequence[int], widths: Sequence[int], grow_from: Optional[int], in_channels: int, conv: Callable[..., nn.Module]) -> None:
        """``in_sizes[i]``/``widths[i]``: the input size and width of block ``i``."""
        self.img_size, self.grow_res, self.grow_alpha = img_size, img_size, 1.0
        self.growing = grow_from is not None
        self.entry = {}
        for i, s in enumerate(in_sizes):
            self.entry.setdefault(s, i)  # the first block that takes s x s maps
        self.from_rgb = nn.ModuleDict(
            {str(s): conv(in_channels, widths[i], 1) for s, i in self.entry.items() if grow_from <= s < img_size}
        ) if self.growing else None

    def _enter(self, x: Tensor, res: int) -> tuple[Tensor, int]:
        i = self.entry[res]
        return (x if i == 0 else self.from_rgb[str(res)](x)), i

    def _run_blocks(self, x: Tensor) -> Tensor:
        res, alpha = (self.grow_res, self.grow_alpha) if self.growing else (self.img_size, 1.0)
        h, start = self._enter(x, res)
        if alpha < 1.0:
            old, stop = self._enter(F.avg_pool2d(x, 2), res // 2)
            for i in range(start, stop):
                h = self.run_block(i, h)
            h, start = torch.lerp(old, h, alpha), stop
        for i in range(start, len(self.blocks)):
            h = self.run_block(i, h)
        return h
