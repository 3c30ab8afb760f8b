"""BigGAN (Brock et al. 2019, arXiv:1809.11096), following ajbrock/BigGAN-PyTorch ``BigGAN.py``.

G: a shared class embedding; with ``hier`` z is split into ``len(blocks) + 1`` chunks, the
first feeds the linear layer and each other chunk is joined to the shared embedding to give
the conditioning vector of one block, whose conditional BatchNorms map it linearly to gains
and biases. Optional self-attention, spectral norm in G and D, orthogonal init. D is the wide
residual projection discriminator. Widths follow BigGAN-PyTorch ``G_arch`` / ``D_arch``
(32x32: 4ch in every G and D block; 64 and 128: up to 16ch); 16x16 uses the 32x32 widths.

Truncation: G takes any ``z`` of shape ``[B, z_dim]``, so the sampler can draw z from a
truncated normal. ``z_dim`` need not be divisible by the number of chunks: z is split with
``torch.tensor_split`` into nearly equal chunks (the first ``z_dim % chunks`` are one longer).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch
from torch import Tensor, nn

from augmentgan.errors import ConfigError
from augmentgan.gan.layers import (
    ConditionalBatchNorm2d,
    GBlock,
    InitScheme,
    SelfAttention,
    conv_factory,
    init_weight_,
    linear_factory,
)
from augmentgan.gan.models.progressive import GrowingGenerator, rgb_head
from augmentgan.gan.models.resnet import DArch, GArch, ResidualDiscriminator, down_sizes, up_sizes

G_ARCH: dict[int, GArch] = {
    16: (4, (4, 4)),
    32: (4, (4, 4, 4)),
    64: (16, (16, 8, 4, 2)),
    128: (16, (16, 8, 4, 2, 1)),
}
D_ARCH: dict[int, DArch] = {
    16: ((4, 4, 4), (True, True, False)),
    32: ((4, 4, 4, 4), (True, True, False, False)),
    64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)),
}


def g_sizes(img_size: int) -> list[int]:
    return up_sizes(G_ARCH[img_size])


def d_sizes(img_size: int) -> list[int]:
    return down_sizes(img_size, D_ARCH[img_size])


class BigGANGenerator(GrowingGenerator):
    """``G(z, y)`` with a shared class embedding and (optionally) hierarchical z."""

    def __init__(
        self,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        z_dim: int = 128,
        ch: int = 64,
        embed_dim: int = 128,
        hier: bool = True,
        sn: bool = True,
        attn_res: Optional[int] = None,
        init: InitScheme = "ortho",
        grow_from: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.hier = z_dim, num_classes, hier
        g_arch = G_ARCH[img_size]
        n_blocks = len(g_arch[1])
        self.n_chunks = n_blocks + 1 if hier else 1
        if z_dim < self.n_chunks:
            raise ConfigError(
                f"model.z_dim={z_dim} is too small for biggan at {img_size}x{img_size} with model.hier=true: "
                f"z is split into {self.n_chunks} chunks; use z_dim >= {self.n_chunks} or set model.hier=false"
            )
        chunks = [len(c) for c in torch.arange(z_dim).tensor_split(self.n_chunks)]
        conv, linear = conv_factory(sn, init), linear_factory(sn, init)
        self.shared = nn.Embedding(num_classes, embed_dim)
        init_weight_(self.shared.weight, init)
        widths = [g_arch[0] * ch] + [m * ch for m in g_arch[1]]
        self.linear = linear(chunks[0], widths[0] * 16)
        self.blocks = nn.ModuleList(
            GBlock(
                c_in,
                c_out,
                conv=conv,
                bn=functools.partial(
                    ConditionalBatchNorm2d, cond_dim=embed_dim + (chunks[i + 1] if hier else 0), linear=linear
                ),
            )
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:]))
        )
        sizes = up_sizes(g_arch)
        self.attn_after = sizes.index(attn_res) if attn_res is not None else -1
        self.attention = SelfAttention(widths[self.attn_after + 1], conv) if attn_res is not None else None
        self.out = rgb_head(widths[-1], channels, conv)
        # transitional conditioning's lambda_t scales the shared class embedding (not in the state dict)
        self.register_buffer("cond_scale", torch.ones(()), persistent=False)
        self._init_growth(img_size, sizes, widths[1:], grow_from, channels, conv)

    def class_affines(self) -> list[tuple[Tensor, Tensor]]:
        """Per-class (gain, bias) matrices ``[K, C]`` of every conditional BatchNorm (for gSR)."""
        e = self.shared.weight
        return [bn.class_affine(e) for block in self.blocks for bn in (block.bn1, block.bn2)]

    def forward(self, z: Tensor, y: Tensor, *, native: bool = False) -> Tensor:
        e = (self.shared(y) * self.cond_scale).to(z.dtype)
        if self.hier:
            z0, *zs = z.tensor_split(self.n_chunks, dim=1)
            conds = [torch.cat([e, zc], dim=1) for zc in zs]
        else:
            z0, conds = z, [e] * len(self.blocks)
        h = self.linear(z0).reshape(z.shape[0], -1, 4, 4)
        return self._synthesize(h, conds, native)


class BigGANDiscriminator(ResidualDiscriminator):
    """BigGAN's wide residual projection discriminator with the BigGAN-PyTorch widths for ``img_size``."""

    def __init__(self, *, img_size: int, init: InitScheme = "ortho", **kwargs) -> None:
        super().__init__(img_size=img_size, d_arch=D_ARCH[img_size], wide=True, init=init, **kwargs)
