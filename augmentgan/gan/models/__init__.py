"""Class-conditional generators and discriminators: the model zoo.

``build_generator(cfg, img_size=, channels=, num_classes=)`` returns ``G(z: float[B, z_dim],
y: long[B]) -> float[B, channels, img_size, img_size]`` in [-1, 1], with ``G.z_dim`` and
``G.num_classes``. ``build_discriminator(cfg, ..., pac=, per_sample_grad=)`` returns
``D(x: float[B, channels*pac, H, W], y: long[B] or long[B, pac]) -> float[B]`` raw logits.
Forward passes are deterministic given their inputs. :data:`MODELS` maps each arch name to
its builders; attention sizes, init schemes and image sizes are validated here and refused
with a :class:`~augmentgan.errors.ConfigError` naming the valid values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from augmentgan.errors import AugmentganWarning, ConfigError
from augmentgan.gan.config import ModelConfig
from augmentgan.gan.layers import InitScheme
from augmentgan.gan.models import biggan, dcgan, resnet
from augmentgan.gan.models.curriculum import CurriculumDiscriminator, build_curriculum
from augmentgan.gan.models.progressive import set_growth
from augmentgan.gan.models.biggan import BigGANDiscriminator, BigGANGenerator
from augmentgan.gan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from augmentgan.gan.models.resnet import ResNetDiscriminator, ResNetGenerator

IMG_SIZES = (16, 32, 64, 128)
CHANNELS = (1, 3)


@dataclass(frozen=True)
class ModelEntry:
    """One architecture: builders from a :class:`ModelConfig`, feature-map sizes, defaults and its paper."""

    paper: str
    generator: Callable[..., nn.Module]  # (cfg, *, img_size, channels, num_classes, attn_res, init)
    discriminator: Callable[..., nn.Module]  # (cfg, *, img_size, channels, num_classes, pac, per_sample_grad, attn_res, init)
    g_sizes: Callable[[int], list[int]]
    d_sizes: Callable[[int], list[int]]
    default_init: InitScheme
    default_attn: Callable[[int], Optional[int]] = lambda img_size: None
    grows: bool = False  # supports progressive growing (model.grow)
    uncond_low: bool = False  # supports unconditional low-resolution layers (model.uncond_res, UTLO)


def _dcgan_g(cfg: ModelConfig, **kw) -> nn.Module:
    return DCGANGenerator(z_dim=cfg.z_dim, ch=cfg.g_ch, embed_dim=cfg.embed_dim, sn=cfg.g_sn, uncond_res=cfg.uncond_res, **kw)


def _dcgan_d(cfg: ModelConfig, *, per_sample_grad: bool, **kw) -> nn.Module:
    norm = resolve_d_norm(cfg, per_sample_grad)
    return DCGANDiscriminator(ch=cfg.d_ch, sn=cfg.d_sn, d_cond=cfg.d_cond, norm=norm, mbstd=cfg.mbstd, uncond_res=cfg.uncond_res, **kw)


def _resnet_g(cfg: ModelConfig, **kw) -> nn.Module:
    return ResNetGenerator(z_dim=cfg.z_dim, ch=cfg.g_ch, sn=cfg.g_sn, grow_from=cfg.grow.start, **kw)


def _resnet_d(cfg: ModelConfig, *, per_sample_grad: bool, **kw) -> nn.Module:
    # residual Ds have no BatchNorm (spectral norm only): per-sample penalties need no change
    return ResNetDiscriminator(ch=cfg.d_ch, sn=cfg.d_sn, d_cond=cfg.d_cond, mbstd=cfg.mbstd, grow_from=cfg.grow.start, **kw)


def _biggan_g(cfg: ModelConfig, **kw) -> nn.Module:
    return BigGANGenerator(z_dim=cfg.z_dim, ch=cfg.g_ch, embed_dim=cfg.embed_dim, hier=cfg.hier, sn=cfg.g_sn, grow_from=cfg.grow.start, **kw)


def _biggan_d(cfg: ModelConfig, *, per_sample_grad: bool, **kw) -> nn.Module:
    # no BatchNorm in D, as for resnet
    return BigGANDiscriminator(ch=cfg.d_ch, sn=cfg.d_sn, d_cond=cfg.d_cond, mbstd=cfg.mbstd, grow_from=cfg.grow.start, **kw)


MODELS: dict[str, ModelEntry] = {
    "dcgan": ModelEntry(
        paper="Radford, Metz & Chintala 2016, arXiv:1511.06434",
        generator=_dcgan_g,
        discriminator=_dcgan_d,
        g_sizes=dcgan.g_sizes,
        d_sizes=dcgan.d_sizes,
        default_init="normal",
        uncond_low=True,
    ),
    "resnet": ModelEntry(
        paper="Miyato et al. 2018, arXiv:1802.05957; Miyato & Koyama 2018, arXiv:1802.05637",
        generator=_resnet_g,
        discriminator=_resnet_d,
        g_sizes=resnet.g_sizes,
        d_sizes=resnet.d_sizes,
        default_init="xavier",
        grows=True,
    ),
    "sagan": ModelEntry(
        paper="Zhang, Goodfellow, Metaxas & Odena 2019, arXiv:1805.08318",
        generator=_resnet_g,
        discriminator=_resnet_d,
        g_sizes=resnet.g_sizes,
        d_sizes=resnet.d_sizes,
        default_init="xavier",
        default_attn=resnet.sagan_default_attn,
        grows=True,
    ),
    "biggan": ModelEntry(
        paper="Brock, Donahue & Simonyan 2019, arXiv:1809.11096",
        generator=_biggan_g,
        discriminator=_biggan_d,
        g_sizes=biggan.g_sizes,
        d_sizes=biggan.d_sizes,
        default_init="ortho",
        grows=True,
    ),
}


def _entry(cfg: ModelConfig) -> ModelEntry:
    try:
        return MODELS[cfg.arch]
    except KeyError:
        raise ConfigError(f"unknown model.arch {cfg.arch!r}; use one of {sorted(MODELS)}") from None


def _check_data(img_size: int, channels: int, num_classes: int) -> None:
    if img_size not in IMG_SIZES:
        raise ConfigError(f"image size {img_size} is not supported by the GAN models; resize the data to one of {list(IMG_SIZES)}")
    if channels not in CHANNELS:
        raise ConfigError(f"{channels} image channels are not supported by the GAN models; convert the data to 1 (grey) or 3 (RGB)")
    if num_classes < 1:
        raise ConfigError(f"num_classes={num_classes}: the GAN models need at least one class")


def growth_levels(cfg: ModelConfig, img_size: int) -> list[int]:
    """The resolutions progressive growing goes through, ``model.grow.start`` to ``img_size``; [img_size] when off.

    ConfigError for an arch that cannot grow or a start that is not one of G's block sizes below ``img_size``.
    """
    start = cfg.grow.start
    if start is None:
        return [img_size]
    entry = _entry(cfg)
    if not entry.grows:
        growing = sorted(name for name, e in MODELS.items() if e.grows)
        raise ConfigError(f"model.grow.start={start}: progressive growing is built for {growing}, not model.arch={cfg.arch!r}; use one of those or set model.grow.start=null")
    valid = [s for s in entry.g_sizes(img_size) if s < img_size]
    if start not in valid:
        raise ConfigError(f"model.grow.start={start} is not a resolution to grow from at {img_size}x{img_size}; use one of {valid} or null")
    return [s for s in entry.g_sizes(img_size) if s >= start]


def check_uncond_res(cfg: ModelConfig, img_size: int) -> None:
    """ConfigError unless ``model.uncond_res`` is null or one of G's feature-map sizes with a stage above it, of an arch that has UTLO's layers."""
    res = cfg.uncond_res
    if res is None:
        return
    entry = _entry(cfg)
    if not entry.uncond_low:
        built = sorted(name for name, e in MODELS.items() if e.uncond_low)
        raise ConfigError(f"model.uncond_res={res}: unconditional low-resolution layers are built for {built}, not model.arch={cfg.arch!r}; use one of those or set model.uncond_res=null")
    valid = dcgan.uncond_sizes(img_size)
    if res not in valid:
        raise ConfigError(f"model.uncond_res={res} is not a size of G's feature maps with a class-conditional stage above it at {img_size}x{img_size}; use one of {valid} or null")


def growth_at(cfg: ModelConfig, img_size: int, g_step: int) -> tuple[int, float]:
    """``(resolution, fade-in alpha)`` of progressive growing after ``g_step`` G steps (``(img_size, 1.0)`` when off)."""
    return cfg.grow.phase(g_step, growth_levels(cfg, img_size))


def attention_sizes(arch: str, img_size: int) -> list[int]:
    """Feature-map sizes where ``model.attn_res`` may put attention: those present in both G and D."""
    entry = MODELS[arch]
    return sorted(set(entry.g_sizes(img_size)) & set(entry.d_sizes(img_size)))


def resolve_attn_res(cfg: ModelConfig, img_size: int) -> Optional[int]:
    """``cfg.attn_res`` (or the arch default, e.g. SAGAN's), checked against :func:`attention_sizes`."""
    attn = cfg.attn_res if cfg.attn_res is not None else _entry(cfg).default_attn(img_size)
    if attn is not None and attn not in attention_sizes(cfg.arch, img_size):
        raise ConfigError(
            f"model.attn_res={attn} is not a feature-map size of arch {cfg.arch!r} at {img_size}x{img_size}; "
            f"use one of {attention_sizes(cfg.arch, img_size)} or null"
        )
    return attn


def resolve_init(cfg: ModelConfig) -> InitScheme:
    """``cfg.init`` with ``"auto"`` replaced by the arch's paper init."""
    return _entry(cfg).default_init if cfg.init == "auto" else cfg.init


def resolve_d_norm(cfg: ModelConfig, per_sample_grad: bool) -> str:
    """DCGAN D normalisation: ``auto`` is BatchNorm, or none when a per-sample gradient penalty is used."""
    if cfg.d_norm == "auto":
        return "none" if per_sample_grad else "batch"
    if cfg.d_norm == "batch" and per_sample_grad:
        warnings.warn(
            "model.d_norm='batch' with a gradient penalty (gp, dragan or r1): BatchNorm mixes samples and breaks "
            "the per-sample penalty; use model.d_norm=auto, none or layer",
            AugmentganWarning,
            stacklevel=4,
        )
    return cfg.d_norm


def build_generator(cfg: ModelConfig, *, img_size: int, channels: int, num_classes: int) -> nn.Module:
    """The generator of ``cfg.arch`` for ``img_size`` x ``img_size`` images with ``channels`` channels."""
    _check_data(img_size, channels, num_classes)
    growth_levels(cfg, img_size)
    check_uncond_res(cfg, img_size)
    return _entry(cfg).generator(
        cfg,
        img_size=img_size,
        channels=channels,
        num_classes=num_classes,
        attn_res=resolve_attn_res(cfg, img_size),
        init=resolve_init(cfg),
    )


def build_discriminator(
    cfg: ModelConfig,
    *,
    img_size: int,
    channels: int,
    num_classes: int,
    pac: int = 1,
    per_sample_grad: bool = False,
) -> nn.Module:
    """The discriminator of ``cfg.arch``; ``pac`` packs samples on channels (PacGAN), and
    ``per_sample_grad`` (a gp/dragan/r1 penalty is used) makes ``d_norm="auto"`` drop BatchNorm."""
    _check_data(img_size, channels, num_classes)
    if pac < 1:
        raise ConfigError(f"tricks.pac={pac}: the packing degree must be at least 1")
    growth_levels(cfg, img_size)
    check_uncond_res(cfg, img_size)

    def member(d_ch: int) -> nn.Module:
        return _entry(cfg).discriminator(
            cfg.model_copy(update={"d_ch": d_ch}),
            img_size=img_size,
            channels=channels,
            num_classes=num_classes,
            pac=pac,
            per_sample_grad=per_sample_grad,
            attn_res=resolve_attn_res(cfg, img_size),
            init=resolve_init(cfg),
        )

    if cfg.curriculum.active:  # WGAN-C: an ensemble of Ds of increasing width, weakest first
        return build_curriculum(member, cfg.d_ch, cfg.curriculum.widths)
    return member(cfg.d_ch)


__all__ = [
    "CHANNELS",
    "IMG_SIZES",
    "MODELS",
    "ModelEntry",
    "attention_sizes",
    "build_discriminator",
    "build_generator",
    "check_uncond_res",
    "growth_at",
    "growth_levels",
    "set_growth",
    "resolve_attn_res",
    "resolve_d_norm",
    "resolve_init",
    "BigGANDiscriminator",
    "CurriculumDiscriminator",
    "BigGANGenerator",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "ResNetDiscriminator",
    "ResNetGenerator",
]
