"""Unconditional low-resolution layers (UTLO, Khorram et al. 2024; issue 13 item 2): G's layers up to
``model.uncond_res`` are shared by every class, D judges G's low-resolution image without the class,
and the whole GAN trains, learns and resumes bit-exactly with it."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from augmentgan.errors import ConfigError
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.models import build_discriminator, build_generator
from augmentgan.gan.presets import get_preset
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import assert_resumes_bit_identically, bars, one_thread, tiny  # noqa: F401 - one_thread is a fixture


def _nets(img_size: int, res: int, **overrides):
    cfg = tiny("dcgan", model__uncond_res=res, **overrides)
    torch.manual_seed(0)
    G = build_generator(cfg.model, img_size=img_size, channels=1, num_classes=3).eval()
    D = build_discriminator(cfg.model, img_size=img_size, channels=1, num_classes=3).eval()
    return G, D


@pytest.mark.parametrize("img_size,res", [(16, 4), (32, 4), (32, 8), (64, 16)])
def test_the_low_resolution_image_is_the_same_for_every_class_and_the_full_one_is_not(img_size, res):
    G, D = _nets(img_size, res)
    z = torch.randn(4, G.z_dim)
    y0, y2 = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
    with torch.no_grad():
        img0, low0 = G(z, y0, low=True)
        img2, low2 = G(z, y2, low=True)
        assert low0.shape == (4, 1, res, res) and img0.shape == (4, 1, img_size, img_size)
        assert torch.equal(low0, low2)  # the shared layers never see the class
        assert not torch.allclose(img0, img2)  # the class enters above uncond_res
        assert torch.equal(img0, G(z, y0))  # low=True returns the same image
        assert low0.abs().max() <= 1.0
        logits = D.low_logits(low0)
    assert logits.shape == (4,)


def test_the_unconditional_losses_train_only_the_shared_layers_and_the_low_resolution_head():
    G, D = _nets(32, 8)
    assert len(G.class_affines()) == 1  # the 16x16 stage; the image layer has no BatchNorm
    G.train(), D.train()
    _, low = G(torch.randn(6, G.z_dim), torch.randint(0, 3, (6,)), low=True)
    D.low_logits(low).mean().backward()
    grads = lambda net: {n for n, p in net.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}  # noqa: E731
    g, d = grads(G), grads(D)
    assert "net.0.weight" in g and any(n.startswith("to_rgb_low") for n in g)
    assert not any(n.startswith("embed") for n in g)  # no class in the low-resolution path
    assert not any(int(n.split(".")[1]) >= G._cut for n in g if n.startswith("net."))  # nor the class-conditional stages
    assert any(n.startswith("from_rgb_low") for n in d) and any(n.startswith("head_low") for n in d)
    assert not any(n.startswith(("head.", "embed")) for n in d)  # the conditional head and projection are not touched
    stages = {int(n.split(".")[1]) for n in d if n.startswith("net.")}
    assert stages and min(stages) >= D._low_start  # D's stages above the low resolution are skipped; the rest are shared


def test_the_refusals_name_the_key_and_the_valid_values():
    with pytest.raises(ConfigError, match=r"model.uncond_res=8 is not a size of G's feature maps with a class-conditional stage above it at 16x16; use one of \[4\] or null"):
        _nets(16, 8)
    with pytest.raises(ConfigError, match=r"built for \['dcgan'\], not model.arch='biggan'"):
        build_generator(get_preset("small-data", {"model.uncond_res": 8}).model, img_size=32, channels=1, num_classes=3)
    with pytest.raises(ConfigError, match="does not work with model.d_cond=kplus1"):
        ConditionalGAN(tiny("ssgan", model__uncond_res=4), img_size=16, channels=1, num_classes=3)
    with pytest.raises(ConfigError, match="does not work with optim.unrolled_k"):
        ConditionalGAN(tiny("dcgan", model__uncond_res=4, optim__unrolled_k=2), img_size=16, channels=1, num_classes=3)
    with pytest.raises(ConfigError, match="uncond_alpha"):
        get_preset("dcgan", {"model.uncond_alpha": 0})


@pytest.mark.parametrize("extra", [{"reg__gsr": 0.5}, {"tricks__pac": 2, "loss__name": "ragan", "tricks__diffaug": "translation,cutout", "model__mbstd": 2}])
def test_a_utlo_gan_continues_bit_identically_from_its_state_dict(extra, one_thread):
    def make() -> ConditionalGAN:
        return ConditionalGAN(tiny("dcgan", model__uncond_res=4, **extra), img_size=16, channels=1, num_classes=3, class_counts=[20, 5, 2], seed=1)

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (8,), generator=g)
    out = assert_resumes_bit_identically(make, x, y)
    assert {"d_low", "g_low"} <= set(out) and ("gsr" in out) == ("reg__gsr" in extra)


def test_the_unconditional_head_learns_to_tell_real_low_resolution_images_from_gs(one_thread):
    """D steps alone (G fixed): the low-resolution head comes to separate the real images pooled to 4x4
    from G's 4x4 images (it once could not: a from-RGB layer whose bias drowned its grey input)."""
    data = bars((24, 24, 24))
    gan = ConditionalGAN(tiny("dcgan", model__uncond_res=4), img_size=16, channels=1, num_classes=3, class_counts=[24, 24, 24], seed=0)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(data.labels).long()
    first = float(gan.d_step(x, y)["d_low"])
    for _ in range(250):
        last = float(gan.d_step(x, y)["d_low"])
    assert last < 0.5 * first, (first, last)
    with torch.no_grad():
        z, y_fake = gan.latent(len(y))
        _, low = gan.G(z, y_fake, low=True)
        real, fake = gan.D.low_logits(F.avg_pool2d(x, 4)), gan.D.low_logits(low)
    accuracy = float(torch.cat([real > 0, fake < 0]).float().mean())
    assert accuracy >= 0.9, accuracy


def test_the_class_modulates_the_shared_features_from_the_start():
    """At initialisation the class already changes G's image by a sizeable fraction of what z does (the
    conditional BatchNorm's gains and biases are linear maps of an N(0, 1) embedding, not near-zero tables)."""
    G, _ = _nets(32, 8)
    torch.manual_seed(3)
    z, z2 = torch.randn(64, G.z_dim), torch.randn(64, G.z_dim)
    y0, y1 = torch.zeros(64, dtype=torch.long), torch.ones(64, dtype=torch.long)
    G.train()  # batch statistics, as in training
    with torch.no_grad():
        by_class = (G(z, y0) - G(z, y1)).abs().mean()
        by_z = (G(z, y0) - G(z2, y0)).abs().mean()
    assert by_class > 0.3 * by_z, (float(by_class), float(by_z))


def test_training_logs_the_unconditional_losses(tmp_path):
    gan_cfg = tiny("dcgan", model__uncond_res=4)
    train(bars((12, 8, 6)), gan_cfg, TrainConfig(steps=4, batch=6, device="cpu", log_every=2, ckpt_every=4, sample_every=0), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"d_low", "g_low"} <= set(rows[-1])
