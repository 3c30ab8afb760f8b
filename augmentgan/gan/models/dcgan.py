"""Class-conditional DCGAN (Radford et al. 2016, arXiv:1511.06434).

G: [z ⊕ class embedding] -> 4x4 transposed conv -> (stride-2 transposed conv, BN, ReLU)* ->
stride-2 transposed conv to the image, tanh. D: (stride-2 conv, norm, LeakyReLU 0.2)* down to
4x4 (no norm on the first layer), a 4x4 valid conv for the logit, plus a projection term
(or one-hot label channels on the input). Widths are multiples of ``ch``: at 64x64 and
``ch=64`` the layers are those of the PyTorch DCGAN example (widest layer 8ch at 4x4).

With ``uncond_res`` (UTLO, Khorram, Kumar & Fuxin, "Taming the Tail in Class-Conditional GANs",
CVPR 2024; khorrams/utlo) G's stages up to that feature-map size see z alone, so every class shares
them; the stages above it normalise with class-conditional BatchNorm, and a 1x1 "to RGB" conv
turns the last shared map into a low-resolution image. D gets a 1x1
"from RGB" conv entering its stack where the maps have that size and a second, unconditional head
(:meth:`DCGANDiscriminator.low_logits`): tail classes borrow coarse structure from head classes
through the shared layers and the unconditional judgement of the low-resolution images.

D normalisation ``"batch"`` mixes samples, which breaks per-sample gradient penalties
(WGAN-GP, DRAGAN, R1); ``"none"`` is the WGAN-GP critic and ``"layer"`` is GroupNorm(1, C).
"""

from __future__ import annotations

from typing import Literal, Optional

import torch
from torch import Tensor, nn

from augmentgan.gan.layers import ConditionalBatchNorm2d, InitScheme, MinibatchStd, SelfAttention, conv_factory, embedding_factory, linear_factory
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


def uncond_sizes(img_size: int) -> list[int]:
    """The sizes ``model.uncond_res`` may take: G's feature-map sizes with at least one stage above them."""
    return g_sizes(img_size)[:-1]


def _check_uncond_res(uncond_res: Optional[int], img_size: int) -> None:
    if uncond_res is not None and uncond_res not in uncond_sizes(img_size):
        raise ValueError(f"uncond_res={uncond_res} is not a feature-map size of G with a stage above it at {img_size}x{img_size}; use one of {uncond_sizes(img_size)}")


class DCGANGenerator(nn.Module):
    """``G(z, y)``: the class embedding is concatenated to z before the first layer.

    With ``uncond_res`` (UTLO) the first layer sees z alone, the stages above ``uncond_res`` normalise
    with class-conditional BatchNorm whose gain and bias are linear maps (PyTorch's default init) of the
    N(0, 1) class embedding, as BigGAN's: the class modulates the shared features from the first step.
    (With the DCGAN N(0, 0.02) init of the maps, 0.43 of the toy bars' samples were of their class after
    150 steps, against 0.63; per-class gain tables initialised near zero, as SNGAN's, left mnist-lt's
    samples classless blobs after 800 steps: 0.11 in class.) ``G(z, y, low=True)`` also returns the
    low-resolution image.
    """

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
        uncond_res: Optional[int] = None,
    ) -> None:
        super().__init__()
        _check_uncond_res(uncond_res, img_size)
        self.z_dim, self.num_classes, self.uncond_res = z_dim, num_classes, uncond_res
        conv_t = conv_factory(sn, init, transposed=True)
        self.embed = nn.Embedding(num_classes, embed_dim)
        layers: list[nn.Module] = []
        in_ch = z_dim + (embed_dim if uncond_res is None else 0)
        self._cut = 0  # index in self.net of the first class-conditional stage (UTLO)
        for i, (mult, size) in enumerate(zip(G_WIDTHS[img_size], g_sizes(img_size))):
            out_ch = mult * ch
            stride, padding = (1, 0) if i == 0 else (2, 1)
            conditional = uncond_res is not None and size > uncond_res
            if conditional and not self._cut:
                self._cut, low_ch = len(layers), in_ch
            conv = conv_t(in_ch, out_ch, 4, stride, padding, bias=False)  # before the norm: the initial weights draw in this order
            norm = ConditionalBatchNorm2d(out_ch, cond_dim=embed_dim, linear=linear_factory(sn, "default")) if conditional else _batch_norm(out_ch, init)
            layers += [conv, norm, nn.ReLU()]
            if size == attn_res:
                layers.append(SelfAttention(out_ch, conv_factory(sn, init)))
            in_ch = out_ch
        layers += [conv_t(in_ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        if uncond_res is not None:
            to_rgb = conv_factory(sn, init)(low_ch, channels, 1, 1, 0)
            nn.init.zeros_(to_rgb.bias)
            self.to_rgb_low = nn.Sequential(to_rgb, nn.Tanh())
        # transitional conditioning's lambda_t scales the class embedding (not in the state dict)
        self.register_buffer("cond_scale", torch.ones(()), persistent=False)

    def class_affines(self) -> list[tuple[Tensor, Tensor]]:
        """Per-class (gain, bias) matrices ``[K, C]`` of the class-conditional BatchNorms (UTLO; for gSR); [] without."""
        return [m.class_affine(self.embed.weight) for m in self.net if isinstance(m, ConditionalBatchNorm2d)]

    def forward(self, z: Tensor, y: Tensor, *, low: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        emb = self.embed(y) * self.cond_scale
        if self.uncond_res is None:
            if low:
                raise ValueError("low=True needs a generator built with uncond_res (model.uncond_res)")
            return self.net(torch.cat([z, emb.to(z.dtype)], dim=1)[:, :, None, None])
        h, img_low = z[:, :, None, None], None
        for i, layer in enumerate(self.net):
            if i == self._cut and low:  # the last map every class shares
                img_low = self.to_rgb_low(h)
            h = layer(h, emb) if isinstance(layer, ConditionalBatchNorm2d) else layer(h)
        return (h, img_low) if low else h


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
        uncond_res: Optional[int] = None,
    ) -> None:
        super().__init__(channels=channels, num_classes=num_classes, pac=pac, d_cond=d_cond)
        _check_uncond_res(uncond_res, img_size)
        self.uncond_res = uncond_res
        conv = conv_factory(sn, init)
        layers: list[nn.Module] = []
        in_ch = self.in_channels
        self._low_start = 0  # index in self.net where the low-resolution images enter (UTLO)
        for i, (mult, size) in enumerate(zip(reversed(G_WIDTHS[img_size]), d_sizes(img_size))):
            if size * 2 == uncond_res:  # this stage's input has the low resolution
                self._low_start, low_ch = len(layers), in_ch
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
        if uncond_res is not None:
            if uncond_res == 4:  # the low-resolution images go straight to their head
                self._low_start, low_ch = len(layers), in_ch
            # PyTorch's default init, zero bias: with fan-in 1 (grey) the DCGAN N(0, 0.02) weights and the default
            # U(-1, 1) bias made this layer's output a constant 50x larger than the image's contribution
            from_rgb = conv_factory(sn, "default")(channels * pac, low_ch, 1, 1, 0)
            nn.init.zeros_(from_rgb.bias)
            self.from_rgb_low = nn.Sequential(from_rgb, nn.LeakyReLU(0.2))
            self.head_low = conv(in_ch + (1 if mbstd else 0), 1, 4, 1, 0)

    def features(self, x: Tensor) -> Tensor:
        return self.net(x)

    def output(self, h: Tensor) -> Tensor:
        return self.head(self.mbstd(h) if self.mbstd is not None else h).flatten()

    def low_logits(self, x: Tensor) -> Tensor:
        """UTLO's unconditional logits ``[B]`` of images (PacGAN-packed like D's input) at ``uncond_res``:
        from RGB, D's own stages from that size down, then the low-resolution head."""
        if self.uncond_res is None:
            raise ValueError("low_logits needs a discriminator built with uncond_res (model.uncond_res)")
        h = self.net[self._low_start :](self.from_rgb_low(x))
        return self.head_low(self.mbstd(h) if self.mbstd is not None else h).flatten()
