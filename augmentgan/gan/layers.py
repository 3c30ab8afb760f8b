"""Building blocks shared by the model zoo.

One model definition serves with or without spectral norm: a model asks
:func:`conv_factory` / :func:`linear_factory` / :func:`embedding_factory` for a
constructor (BigGAN-PyTorch's ``which_conv``) and calls it like the torch class.
The constructor initialises the weight with the model's scheme *before* wrapping
it in ``torch.nn.utils.parametrizations.spectral_norm``, so the power-iteration
vectors start from the initialised weight. Initialisation draws from torch's
global RNG only (the trainer seeds it around model construction).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Literal, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

InitScheme = Literal["normal", "ortho", "xavier", "default"]

#: Xavier gain of the two 3x3 convs on a residual branch (SNGAN reference code); shortcuts use 1.
RESIDUAL_GAIN = math.sqrt(2.0)


def init_weight_(weight: Tensor, scheme: InitScheme, gain: float = 1.0) -> None:
    """Initialise ``weight`` in place: N(0, 0.02) (DCGAN), orthogonal (BigGAN), Xavier-uniform (SNGAN) or torch's default.

    ``gain`` is used by the xavier scheme only.
    """
    with torch.no_grad():
        if scheme == "normal":
            nn.init.normal_(weight, 0.0, 0.02)
        elif scheme == "ortho":
            nn.init.orthogonal_(weight)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(weight, gain=gain)
        elif scheme != "default":
            raise ValueError(f"unknown init scheme {scheme!r}; use normal, ortho, xavier or default")


def _build(cls: type[nn.Module], sn: bool, init: InitScheme, *args, gain: float = 1.0, **kwargs) -> nn.Module:
    module = cls(*args, **kwargs)
    init_weight_(module.weight, init, gain)
    return spectral_norm(module) if sn else module


def conv_factory(sn: bool, init: InitScheme = "default", *, transposed: bool = False) -> Callable[..., nn.Module]:
    """``nn.Conv2d`` (or ``nn.ConvTranspose2d``) constructor, spectrally normalised when ``sn``.

    The returned callable takes the torch arguments plus ``gain=`` (xavier gain).
    """
    return functools.partial(_build, nn.ConvTranspose2d if transposed else nn.Conv2d, sn, init)


def linear_factory(sn: bool, init: InitScheme = "default") -> Callable[..., nn.Module]:
    """``nn.Linear`` constructor, spectrally normalised when ``sn``."""
    return functools.partial(_build, nn.Linear, sn, init)


def embedding_factory(sn: bool, init: InitScheme = "default") -> Callable[..., nn.Module]:
    """``nn.Embedding`` constructor, spectrally normalised when ``sn`` (weight seen as a classes x dim matrix)."""
    return functools.partial(_build, nn.Embedding, sn, init)


def raw_weight(module: nn.Module) -> Tensor:
    """The trainable weight of ``module``: the pre-normalisation original when spectral norm is applied."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def set_cond_scale(module: nn.Module, value: float) -> None:
    """Set transitional conditioning's lambda_t (Shahbazi et al. 2022) in every submodule that has a
    ``cond_scale`` buffer (generators scale their class input by it, discriminators their class term)."""
    with torch.no_grad():
        for m in module.modules():
            buf = m._buffers.get("cond_scale")
            if buf is not None:
                buf.fill_(float(value))


def mbstd_group(n: int, group_size: int) -> int:
    """The largest divisor of ``n`` not above ``group_size`` (ProGAN needs groups that tile the batch)."""
    return max(g for g in range(1, min(group_size, n) + 1) if n % g == 0)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN; StyleGAN2's ``MinibatchStdLayer``).

    The batch is split into groups of ``group_size`` samples (strided, as in StyleGAN2: sample ``i``
    belongs to group ``i mod (N / G)``; ``G`` is the largest divisor of ``N`` not above ``group_size``),
    the standard deviation of every feature over each group is averaged into one number per group,
    and that number is appended to each of the group's samples as one constant feature map. D can
    then see how varied a batch is, which a collapsed generator cannot fake.
    """

    def __init__(self, group_size: int) -> None:
        super().__init__()
        if group_size < 1:
            raise ValueError(f"minibatch std group size must be >= 1, got {group_size} (model.mbstd)")
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = mbstd_group(n, self.group_size)
        y = x.reshape(g, n // g, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # [N/G, C, H, W]
        y = y.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)  # [N, 1, H, W]
        return torch.cat([x, y.to(x.dtype)], dim=1)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without affine, then a per-sample gain ``1 + g`` and bias ``b``.

    Class mode (``num_classes``): ``g`` and ``b`` are per-class embeddings (SNGAN/SAGAN;
    ``g ~ N(0, 0.02)`` so classes differ from the start, ``b = 0``); the condition is ``long[B]``.
    Vector mode (``cond_dim``): ``g`` and ``b`` are bias-free linear maps of a conditioning
    vector ``float[B, cond_dim]`` (BigGAN: shared class embedding joined to a z chunk),
    built with ``linear`` (a :func:`linear_factory` product, so they follow G's init and SN).
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_classes: Optional[int] = None,
        cond_dim: Optional[int] = None,
        linear: Callable[..., nn.Module] = nn.Linear,
        eps: float = 1e-5,
        momentum: float = 0.1,
    ) -> None:
        super().__init__()
        if (num_classes is None) == (cond_dim is None):
            raise ValueError("ConditionalBatchNorm2d needs exactly one of num_classes and cond_dim")
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        if num_classes is not None:
            self.gain = nn.Embedding(num_classes, num_features)
            self.bias = nn.Embedding(num_classes, num_features)
            with torch.no_grad():
                nn.init.normal_(self.gain.weight, 0.0, 0.02)
                nn.init.zeros_(self.bias.weight)
            # transitional conditioning's lambda_t scales the class part (not in the state dict)
            self.register_buffer("cond_scale", torch.ones(()), persistent=False)
        else:
            self.gain = linear(cond_dim, num_features, bias=False)
            self.bias = linear(cond_dim, num_features, bias=False)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.bn(x)
        g, b = self.gain(cond), self.bias(cond)
        scale = self._buffers.get("cond_scale")
        if scale is not None:
            g, b = g * scale, b * scale
        return h * (1.0 + g)[:, :, None, None] + b[:, :, None, None]

    def class_affine(self, embedding: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """The per-class gains and biases ``(gamma [K, C], beta [K, C])`` that gSR regularizes.

        Class mode: the embedding tables. Vector mode (BigGAN): the maps applied to the class part of the
        condition, ``embedding [K, E]`` (the shared class embedding) against the first ``E`` input columns
        (the z chunk zero-padded, as in val-iisc/gSRGAN).
        """
        if self._buffers.get("cond_scale") is not None:
            return self.gain.weight, self.bias.weight
        if embedding is None:
            raise ValueError("class_affine of a vector-mode ConditionalBatchNorm2d needs the class embedding")
        e = embedding.shape[1]
        return embedding @ self.gain.weight[:, :e].t(), embedding @ self.bias.weight[:, :e].t()


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019) as in BigGAN-PyTorch ``Attention``.

    1x1 convs theta, phi (C/8) and g (C/2), phi and g max-pooled 2x2, softmax over the
    pooled positions, a 1x1 conv back to C, and ``x + gamma * o`` with ``gamma`` initialised
    to 0 (the block starts as the identity). Written with ``bmm`` rather than
    ``scaled_dot_product_attention`` because fused attention kernels have no double
    backward, which gradient penalties need.
    """

    def __init__(self, channels: int, conv: Callable[..., nn.Module] = nn.Conv2d) -> None:
        super().__init__()
        self.key_ch = max(1, channels // 8)
        self.value_ch = max(1, channels // 2)
        self.theta = conv(channels, self.key_ch, 1, bias=False)
        self.phi = conv(channels, self.key_ch, 1, bias=False)
        self.g = conv(channels, self.value_ch, 1, bias=False)
        self.o = conv(self.value_ch, channels, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2)  # [B, C/8, N]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [B, C/8, N/4]
        g = F.max_pool2d(self.g(x), 2).flatten(2)  # [B, C/2, N/4]
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # [B, N, N/4]
        o = torch.bmm(g, beta.transpose(1, 2)).reshape(b, self.value_ch, h, w)
        return x + self.gamma * self.o(o)


class GBlock(nn.Module):
    """Residual up-block of SNGAN/BigGAN: cBN-ReLU-(up)-conv3-cBN-ReLU-conv3 + (up)-conv1 shortcut.

    ``bn(num_features)`` builds a :class:`ConditionalBatchNorm2d`; both take the block's condition.
    The 1x1 shortcut is learnable when the channels change or the block upsamples (nearest).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        conv: Callable[..., nn.Module],
        bn: Callable[[int], nn.Module],
        upsample: bool = True,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.bn1 = bn(in_channels)
        self.conv1 = conv(in_channels, out_channels, 3, padding=1, gain=RESIDUAL_GAIN)
        self.bn2 = bn(out_channels)
        self.conv2 = conv(out_channels, out_channels, 3, padding=1, gain=RESIDUAL_GAIN)
        self.shortcut = conv(in_channels, out_channels, 1) if in_channels != out_channels or upsample else None

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = F.relu(self.bn1(x, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        if self.shortcut is not None:
            x = self.shortcut(x)
        return h + x


class DBlock(nn.Module):
    """Residual down-block of SNGAN/BigGAN: [ReLU]-conv3-ReLU-conv3-[avgpool] + 1x1 shortcut.

    ``preactivation=False`` is the first block (SNGAN's "optimized" block: no ReLU on the
    image, shortcut pools before its conv); later blocks pre-activate and convolve before
    pooling. ``wide`` (BigGAN) uses ``out_channels`` hidden channels; otherwise (SNGAN)
    ``in_channels``, except in the first block. The shortcut is learnable when the
    channels change or the block downsamples.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        conv: Callable[..., nn.Module],
        downsample: bool,
        preactivation: bool,
        wide: bool = True,
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.preactivation = preactivation
        hidden = out_channels if (wide or not preactivation) else in_channels
        self.conv1 = conv(in_channels, hidden, 3, padding=1, gain=RESIDUAL_GAIN)
        self.conv2 = conv(hidden, out_channels, 3, padding=1, gain=RESIDUAL_GAIN)
        self.shortcut = conv(in_channels, out_channels, 1) if in_channels != out_channels or downsample else None

    def _skip(self, x: Tensor) -> Tensor:
        if self.preactivation:
            if self.shortcut is not None:
                x = self.shortcut(x)
            return F.avg_pool2d(x, 2) if self.downsample else x
        if self.downsample:
            x = F.avg_pool2d(x, 2)
        return self.shortcut(x) if self.shortcut is not None else x

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self._skip(x)
