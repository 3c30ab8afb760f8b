"""Class-conditional DCGAN (Radford et al. 2016, arXiv:1511.06434).

G: [z ⊕ class embedding] -> 4x4 transposed conv -> (stride-2 transposed conv, BN, ReLU)* ->
stride-2 transposed conv to the image, tanh. D: (stride-2 conv, norm, LeakyReLU 0.2)* down to
4x4 (no norm on the first layer), a 4x4 valid conv for the logit, plus a projection term
(or one-hot label channels on the input). Widths are multiples of ``ch``: at 64x64 and
``ch=64`` the layers are those of the PyTorch DCGAN example (widest layer 8ch at 4x4).

D normalisation ``"batch"`` mixes samples, which breaks per-sample gradient penalties
(WGAN-GP, DRAGAN, R1); ``"none"`` is the WGAN-GP critic and ``"layer"`` is GroupNorm(1, C).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from augmentgan.gan.layers import InitScheme, MinibatchStd, SelfAttention, conv_factory, embedding_factory
from augmentgan.gan.models.common import ConditionalDiscriminator, DCond

DNorm = Literal["batch", "none", "layer"]

#: channel multipliers of G's stages at 4x4, 8x8, ..., img/2 (D mirrors them)
G_WIDTHS: dict[int, tuple[int, ...]] = {
    16: (8, 4),
    32: (8, 4, 2),
    64: (8, 4, 2, 1),
    128: (16, 8, 4, 2, 1),
}


def g_sizes(img_size: int) -> list[int]:
    """Feature-map sizes after each G stage (attention may follow any of them)."""
    return [4 * 2**i for i in range(len(G_WIDTHS[img_size]))]


def d_sizes(img_size: int) -> list[int]:
    """Feature-map sizes after each D stage."""
    return [img_size // 2 ** (i + 1) for i in range(len(G_WIDTHS[img_size]))]


def _batch_norm(num_features: int, init: InitScheme) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(num_features)
    if init == "normal":  # DCGAN: gamma ~ N(1, 0.02), beta = 0
        with torch.no_grad():
            nn.init.normal_(bn.weight, 1.0, 0.02)
            nn.init.zeros_(bn.bias)
    return bn


def _d_norm(kind: DNorm, num_features: int, init: InitScheme) -> nn.Module:
    if kind == "layer":
        return nn.GroupNorm(1, num_features)
    return _batch_norm(num_features, init)


class DCGANGenerator(nn.Module):
    """``G(z, y)``: the class embedding is concatenated to z before the first layer."""

    def __init__(
        self,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        z_dim: int = 128,
        ch: int = 64,
        embed_dim: int = 128,
        sn: bool = False,
        attn_res: Optional[int] = None,
        init: InitScheme = "normal",
    ) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        conv_t = conv_factory(sn, init, transposed=True)
        self.embed = nn.Embedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        in_ch = z_dim + embed_dim
        for i, (mult, size) in enumerate(zip(G_WIDTHS[img_size], g_sizes(img_size))):
            out_ch = mult * ch
            stride, padding = (1, 0) if i == 0 else (2, 1)
            layers += [conv_t(in_ch, out_ch, 4, stride, padding, bias=False), _batch_norm(out_ch, init), nn.ReLU()]
            if size == attn_res:
                layers.append(SelfAttention(out_ch, conv_factory(sn, init)))
            in_ch = out_ch
        layers += [conv_t(in_ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        # transitional conditioning's lambda_t scales the class embedding (not in the state dict)
        self.register_buffer("cond_scale", torch.ones(()), persistent=False)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        h = torch.cat([z, (self.embed(y) * self.cond_scale).to(z.dtype)], dim=1)
        return self.net(h[:, :, None, None])


class DCGANDiscriminator(ConditionalDiscriminator):
    """DCGAN D with a projection head (or label channels); see the module docstring for ``norm``."""

    def __init__(
        self,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        pac: int = 1,
        ch: int = 64,
        sn: bool = False,
        norm: DNorm = "batch",
        d_cond: DCond = "projection",
        attn_res: Optional[int] = None,
        init: InitScheme = "normal",
        mbstd: int = 0,
    ) -> None:
        super().__init__(channels=channels, num_classes=num_classes, pac=pac, d_cond=d_cond)
        conv = conv_factory(sn, init)
        layers: list[nn.Module] = []
        in_ch = self.in_channels
        for i, (mult, size) in enumerate(zip(reversed(G_WIDTHS[img_size]), d_sizes(img_size))):
            out_ch = mult * ch
            normed = i > 0 and norm != "none"
            layers.append(conv(in_ch, out_ch, 4, 2, 1, bias=not normed))
            if normed:
                layers.append(_d_norm(norm, out_ch, init))
            layers.append(nn.LeakyReLU(0.2))
            if size == attn_res:
                layers.append(SelfAttention(out_ch, conv))
            in_ch = out_ch
        self.net = nn.Sequential(*layers)
        # minibatch std (ProGAN) feeds the last layer only; the projection term sees the plain features
        self.mbstd = MinibatchStd(mbstd) if mbstd else None
        self.head = conv(in_ch + (1 if mbstd else 0), 1, 4, 1, 0)
        self._make_embedding(embedding_factory(sn, init), in_ch)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)

    def output(self, h: Tensor) -> Tensor:
        return self.head(self.mbstd(h) if self.mbstd is not None else h).flatten()
