"""ResNet GAN with a projection discriminator (SNGAN: Miyato et al. 2018, arXiv:1802.05957;
cGAN-PD: Miyato & Koyama 2018, arXiv:1802.05637), and SAGAN (Zhang et al. 2019, arXiv:1805.08318):
the same network with self-attention (on by default for ``arch="sagan"``) and spectral norm in G
as well (``model.g_sn``, which the sagan preset sets).

G: linear z -> 4x4, residual up-blocks with class-conditional BatchNorm (per-class gain and
bias), BN-ReLU-conv3-tanh. D: residual down-blocks (the first one not pre-activated), ReLU,
global sum pooling, linear + projection. Widths follow the reference models: at 32x32 and
``g_ch = d_ch = 64`` G has 256 channels in every block and D 128 (SNGAN CIFAR-10); at 64 and 128
they follow SNGAN's ImageNet/CelebA models (kwotsin/mimicry ``sngan_64`` / ``sngan_128``).
"""

from __future__ import annotations

import functools
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.gan.layers import (
    ConditionalBatchNorm2d,
    DBlock,
    GBlock,
    InitScheme,
    MinibatchStd,
    SelfAttention,
    conv_factory,
    embedding_factory,
    linear_factory,
)
from augmentgan.gan.models.common import ConditionalDiscriminator, DCond
from augmentgan.gan.models.progressive import GrowingDiscriminator, GrowingGenerator, rgb_head

GArch = tuple[int, tuple[int, ...]]  # (channels at 4x4, out channels of each up-block), multiples of ch
DArch = tuple[tuple[int, ...], tuple[bool, ...]]  # (out channels of each down-block, downsample flags)

G_ARCH: dict[int, GArch] = {
    16: (4, (4, 4)),
    32: (4, (4, 4, 4)),
    64: (16, (8, 4, 2, 1)),
    128: (16, (16, 8, 4, 2, 1)),
}
D_ARCH: dict[int, DArch] = {
    16: ((2, 2, 2), (True, True, False)),
    32: ((2, 2, 2, 2), (True, True, False, False)),
    64: ((1, 2, 4, 8, 16), (True, True, True, True, False)),
    128: ((1, 2, 4, 8, 16, 16), (True, True, True, True, True, False)),
}


def up_sizes(g_arch: GArch) -> list[int]:
    """Feature-map sizes after each up-block."""
    return [8 * 2**i for i in range(len(g_arch[1]))]


def down_sizes(img_size: int, d_arch: DArch) -> list[int]:
    """Feature-map sizes after each down-block."""
    sizes, size = [], img_size
    for down in d_arch[1]:
        size //= 2 if down else 1
        sizes.append(size)
    return sizes


def g_sizes(img_size: int) -> list[int]:
    return up_sizes(G_ARCH[img_size])


def d_sizes(img_size: int) -> list[int]:
    return down_sizes(img_size, D_ARCH[img_size])


def sagan_default_attn(img_size: int) -> int:
    """SAGAN puts attention on 32x32 feature maps; smaller images use img/2."""
    return min(32, img_size // 2)


class ResNetGenerator(GrowingGenerator):
    """SNGAN/SAGAN generator: ``G(z, y)`` with per-class conditional BatchNorm in every block."""

    def __init__(
        self,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        z_dim: int = 128,
        ch: int = 64,
        sn: bool = False,
        attn_res: Optional[int] = None,
        init: InitScheme = "xavier",
        grow_from: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        g_arch = G_ARCH[img_size]
        conv, linear = conv_factory(sn, init), linear_factory(sn, init)
        bn = functools.partial(ConditionalBatchNorm2d, num_classes=num_classes)
        widths = [g_arch[0] * ch] + [m * ch for m in g_arch[1]]
        self.linear = linear(z_dim, widths[0] * 16)
        self.blocks = nn.ModuleList(
            GBlock(c_in, c_out, conv=conv, bn=bn) for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        sizes = up_sizes(g_arch)
        self.attn_after = sizes.index(attn_res) if attn_res is not None else -1
        self.attention = SelfAttention(widths[self.attn_after + 1], conv) if attn_res is not None else None
        self.out = rgb_head(widths[-1], channels, conv)
        self._init_growth(img_size, sizes, widths[1:], grow_from, channels, conv)

    def class_affines(self) -> list[tuple[Tensor, Tensor]]:
        """Per-class (gain, bias) matrices ``[K, C]`` of every conditional BatchNorm (for gSR)."""
        return [bn.class_affine() for block in self.blocks for bn in (block.bn1, block.bn2)]

    def forward(self, z: Tensor, y: Tensor, *, native: bool = False) -> Tensor:
        h = self.linear(z).reshape(z.shape[0], -1, 4, 4)
        return self._synthesize(h, [y] * len(self.blocks), native)


class ResidualDiscriminator(ConditionalDiscriminator, GrowingDiscriminator):
    """Residual projection discriminator shared by resnet/sagan (``wide=False``, SNGAN) and biggan (``wide=True``)."""

    def __init__(
        self,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        d_arch: DArch,
        pac: int = 1,
        ch: int = 64,
        sn: bool = True,
        wide: bool = False,
        d_cond: DCond = "projection",
        attn_res: Optional[int] = None,
        init: InitScheme = "xavier",
        mbstd: int = 0,
        grow_from: Optional[int] = None,
    ) -> None:
        super().__init__(channels=channels, num_classes=num_classes, pac=pac, d_cond=d_cond)
        conv = conv_factory(sn, init)
        widths = [self.in_channels] + [m * ch for m in d_arch[0]]
        last = len(d_arch[0]) - 1
        # minibatch std (ProGAN) is one more input map of the last block (4x4 here, as in StyleGAN2's epilogue)
        self.mbstd = MinibatchStd(mbstd) if mbstd else None
        self.blocks = nn.ModuleList(
            DBlock(c_in + (1 if mbstd and i == last else 0), c_out, conv=conv, downsample=down, preactivation=i > 0, wide=wide)
            for i, (c_in, c_out, down) in enumerate(zip(widths[:-1], widths[1:], d_arch[1]))
        )
        sizes = down_sizes(img_size, d_arch)
        self.attn_after = sizes.index(attn_res) if attn_res is not None else -1
        self.attention = SelfAttention(widths[self.attn_after + 1], conv) if attn_res is not None else None
        self.linear = linear_factory(sn, init)(widths[-1], 1)
        self._make_embedding(embedding_factory(sn, init), widths[-1])
        self._init_growth(img_size, [img_size] + sizes[:-1], widths[:-1], grow_from, self.in_channels, conv)

    def run_block(self, i: int, h: Tensor) -> Tensor:
        if i == len(self.blocks) - 1 and self.mbstd is not None:
            h = self.mbstd(h)
        h = self.blocks[i](h)
        return self.attention(h) if i == self.attn_after else h

    def features(self, x: Tensor) -> Tensor:
        return F.relu(self._run_blocks(x))

    def output(self, h: Tensor) -> Tensor:
        return self.linear(h.sum(dim=(2, 3))).flatten()


class ResNetDiscriminator(ResidualDiscriminator):
    """SNGAN/SAGAN discriminator with the SNGAN widths for ``img_size``."""

    def __init__(self, *, img_size: int, **kwargs) -> None:
        super().__init__(img_size=img_size, d_arch=D_ARCH[img_size], wide=False, **kwargs)
