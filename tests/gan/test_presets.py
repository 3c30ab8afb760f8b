"""Presets carry their papers' values, validate, and override without being mutated."""

from __future__ import annotations

import pytest
import torch

from augmentgan.errors import ConfigError
from augmentgan.gan.config import GANConfig
from augmentgan.gan.diffaug import parse_policy
from augmentgan.gan.losses import LOSSES
from augmentgan.gan.presets import PRESETS, get_preset, preset_names

# name -> arch, loss, optimizer, lr_g, lr_d, (beta1, beta2), n_dis, G/D spectral norm, regularizers, tricks
PAPER = {
    "dcgan": ("dcgan", "bce", "adam", 2e-4, 2e-4, (0.5, 0.999), 1, (False, False), {}, {}),
    "wgan": ("dcgan", "wasserstein", "rmsprop", 5e-5, 5e-5, None, 5, (False, False), {"clip": 0.01}, {}),
    "wgan-gp": ("dcgan", "wasserstein", "adam", 1e-4, 1e-4, (0.0, 0.9), 5, (False, False), {"gp": 10.0}, {}),
    "wgan-c": ("dcgan", "wasserstein", "adam", 1e-4, 1e-4, (0.0, 0.9), 5, (False, False), {"gp": 10.0}, {}),  # + the curriculum
    "lsgan": ("dcgan", "lsgan", "adam", 2e-4, 2e-4, (0.5, 0.999), 1, (False, False), {}, {}),
    "dragan": ("dcgan", "bce", "adam", 1e-4, 1e-4, (0.5, 0.9), 1, (False, False), {"dragan": 10.0}, {}),
    "ragan": ("dcgan", "ragan", "adam", 2e-4, 2e-4, (0.5, 0.999), 1, (False, False), {}, {}),
    "sngan": ("resnet", "hinge", "adam", 2e-4, 2e-4, (0.0, 0.9), 5, (False, True), {}, {}),
    "sagan": ("sagan", "hinge", "adam", 1e-4, 4e-4, (0.0, 0.999), 1, (True, True), {}, {}),
    "ssgan": ("dcgan", "bce", "adam", 3e-4, 3e-4, (0.5, 0.999), 1, (False, False), {}, {}),  # + model.d_cond=kplus1
    "progressive": ("resnet", "wasserstein", "adam", 2e-4, 2e-4, (0.0, 0.99), 1, (False, False), {"gp": 10.0}, {}),  # + model.grow
    "biggan": (
        "biggan", "hinge", "adam", 5e-5, 2e-4, (0.0, 0.999), 2, (True, True), {"ortho": 1e-4},
        {"ema": True, "ema_decay": 0.9999, "ema_start": 1000},
    ),
    "small-data": (
        "biggan", "hinge", "adam", 2e-4, 2e-4, (0.0, 0.999), 4, (True, True), {},
        {"diffaug": "color,translation,cutout", "ema": True, "ema_decay": 0.999, "ema_start": 1000},
    ),
}

REG_DEFAULTS = {"gp": 0.0, "dragan": 0.0, "r1": 0.0, "clip": None, "ortho": 0.0}
TRICK_DEFAULTS = {"diffaug": "auto", "pac": 1, "ema": False}  # auto: DiffAugment when a class has < 1000 images


def test_names():
    assert preset_names() == list(PRESETS) == list(PAPER)


@pytest.mark.parametrize("name", list(PAPER))
def test_preset_matches_its_paper(name):
    arch, loss, opt, lr_g, lr_d, betas, n_dis, (g_sn, d_sn), reg, tricks = PAPER[name]
    cfg = get_preset(name)
    assert isinstance(cfg, GANConfig)
    assert GANConfig.model_validate(cfg.model_dump()) == cfg
    assert (cfg.model.arch, cfg.loss.name, cfg.optim.name) == (arch, loss, opt)
    assert (cfg.optim.lr_g, cfg.optim.lr_d, cfg.optim.n_dis) == (lr_g, lr_d, n_dis)
    if betas is not None:
        assert (cfg.optim.beta1, cfg.optim.beta2) == betas
    assert (cfg.model.g_sn, cfg.model.d_sn) == (g_sn, d_sn)
    for key, default in REG_DEFAULTS.items():
        assert getattr(cfg.reg, key) == reg.get(key, default), f"{name}: reg.{key}"
    for key, default in TRICK_DEFAULTS.items():
        assert getattr(cfg.tricks, key) == tricks.get(key, default), f"{name}: tricks.{key}"
    for key in ("ema_decay", "ema_start"):
        if key in tricks:
            assert getattr(cfg.tricks, key) == tricks[key]
    assert cfg.loss.name in LOSSES
    if cfg.tricks.diffaug != "auto":
        parse_policy(cfg.tricks.diffaug)


def test_architecture_details_from_the_papers():
    assert get_preset("dcgan").model.init == "normal" and get_preset("dcgan").model.d_norm == "batch"
    # gradient penalties need per-sample gradients: no BatchNorm in those critics
    assert get_preset("wgan-gp").model.d_norm != "batch" and get_preset("dragan").model.d_norm != "batch"
    assert get_preset("sagan").model.attn_res == 32
    big = get_preset("biggan").model
    assert (big.attn_res, big.hier, big.embed_dim, big.init) == (64, True, 128, "ortho")
    small = get_preset("small-data").model
    assert small.attn_res is None and small.g_ch < big.g_ch


def test_nested_override_returns_a_new_config_and_leaves_the_preset_alone():
    before = {name: cfg.model_dump() for name, cfg in PRESETS.items()}
    cfg = get_preset("sngan", ["optim.n_dis=2", "model.g_ch=32", "tricks.diffaug=translation"])
    assert (cfg.optim.n_dis, cfg.model.g_ch, cfg.tricks.diffaug) == (2, 32, "translation")
    assert cfg.optim.lr_g == 2e-4  # untouched fields keep the preset's values
    cfg2 = get_preset("biggan", {"reg.ortho": 0.0, "tricks.ema_start": 0})
    assert (cfg2.reg.ortho, cfg2.tricks.ema_start, cfg2.tricks.ema) == (0.0, 0, True)
    plain = get_preset("dcgan")
    assert plain is not PRESETS["dcgan"] and plain.model is not PRESETS["dcgan"].model
    plain.optim.lr_g = 1.0
    assert {name: c.model_dump() for name, c in PRESETS.items()} == before


def test_unknown_preset_names_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        get_preset("stylegan")
    for name in PAPER:
        assert name in str(err.value)


def test_unknown_or_invalid_override_key():
    with pytest.raises(ConfigError) as err:
        get_preset("dcgan", ["optim.lr=1e-4"])
    assert "optim.lr" in str(err.value) and "lr_g" in str(err.value)
    with pytest.raises(ConfigError, match="n_dis"):
        get_preset("dcgan", ["optim.n_dis=0"])
    with pytest.raises(ConfigError, match="label_smoothing"):
        get_preset("sngan", ["loss.label_smoothing=0.1"])  # hinge takes no label smoothing


@pytest.mark.parametrize("name", list(PAPER))
def test_preset_builds_models(name):
    """preset -> the trainer's fit to the image size -> G and D that run (skipped until both exist)."""
    models = pytest.importorskip("augmentgan.gan.models")
    trainer = pytest.importorskip("augmentgan.gan.trainer")
    if not hasattr(models, "build_generator") or not hasattr(trainer, "resolve_gan_config"):
        pytest.skip("augmentgan.gan.models.build_generator or trainer.resolve_gan_config is missing")
    img, classes = 32, 3
    cfg, _ = trainer.resolve_gan_config(get_preset(name, {"model.g_ch": 8, "model.d_ch": 8}), img)
    G = models.build_generator(cfg.model, img_size=img, channels=3, num_classes=classes)
    D = models.build_discriminator(
        cfg.model, img_size=img, channels=3, num_classes=classes, pac=1, per_sample_grad=cfg.reg.per_sample_grad
    )
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 2])
    x = G(z, y)
    assert x.shape == (2, 3, img, img) and x.abs().max() <= 1.0
    assert D(x, y).shape == (2,)
