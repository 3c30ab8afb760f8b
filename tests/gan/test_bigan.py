"""A jointly trained encoder (bigan section; BiGAN, Donahue et al. 2017 / ALI, Dumoulin et al. 2017):
it learns to invert G, it is off by default and changes nothing then, its state resumes bit-exactly, the
checkpoint hands it out, and combinations it cannot serve are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from augmentgan.errors import ConfigError
from augmentgan.gan.checkpoint import read_generator
from augmentgan.gan.gan import ConditionalGAN
from trainer_data import bars, one_thread, straight_and_resumed, tiny  # noqa: F401 - one_thread is a fixture

SMALL = {"bigan__e_ch": 8, "bigan__d_ch": 8}


def _gan(preset: str = "dcgan", **overrides) -> ConditionalGAN:
    return ConditionalGAN(tiny(preset, **overrides), img_size=16, channels=1, num_classes=3, class_counts=[32, 32, 32], seed=0)


@torch.no_grad()
def _inversion_error(gan: ConditionalGAN) -> tuple[float, float]:
    """(pixel MSE of G(E(G(z, y), y), y) against G(z, y), the same against G(z', y) for fresh z') over 96 samples of G in eval mode."""
    G, E = gan.G.eval(), gan.bigan.E.eval()
    g = torch.Generator().manual_seed(3)
    z, y = torch.randn(96, G.z_dim, generator=g), torch.arange(96) % 3
    x = G(z, y)
    back = G(E(x, y), y)
    other = G(torch.randn(96, G.z_dim, generator=g), y)
    G.train(), E.train()
    return float((back - x).pow(2).mean()), float((other - x).pow(2).mean())


def test_the_joint_encoder_learns_to_invert_the_generator(one_thread):
    """300 steps of a toy dcgan with bigan.weight=1: E's code of G's own sample redraws it far closer than
    a random code of the same class does. Measured: 0.23 of the random codes' error after 300 steps, 0.25
    after 400 (with bigan.cycle=0, the pure adversarial objective, at widths 16: 0.72 after 300 steps, 1.29 after 400)."""
    data = bars((32, 32, 32))
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(data.labels).long()
    g = torch.Generator().manual_seed(0)

    def batch() -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(x), (16,), generator=g)
        return x[idx], y[idx]

    gan = _gan(bigan__weight=1.0, **SMALL)
    for _ in range(300):
        out = gan.train_iteration(batch)
    assert {"bigan_d", "bigan_ge", "bigan_real", "bigan_fake", "bigan_cycle"} <= set(out) and set(gan.metric_names) >= set(out)
    coded, random = _inversion_error(gan)
    print(f"redraw error with E's codes {coded:.4f}, with random codes {random:.4f}")
    assert coded < 0.5 * random, (coded, random)


def test_off_by_default_and_without_effect_on_the_other_networks():
    plain, joint = _gan(), _gan(bigan__weight=1.0, **SMALL)
    assert plain.bigan is None and plain.state_dict()["bigan"] is None and not any(n.startswith("bigan") for n in plain.metric_names)
    for a, b in ((plain.G, joint.G), (plain.D, joint.D)):  # E and D_xz are built after G and D: the same initial weights
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert "bigan_cycle" not in _gan(bigan__weight=1.0, bigan__cycle=0.0, **SMALL).metric_names


@pytest.mark.parametrize(("preset", "extra"), [
    *[(p, {}) for p in ("dcgan", "wgan", "wgan-gp", "wgan-c", "lsgan", "dragan", "ragan", "ssgan", "sngan")],
    ("sagan", {"model__attn_res": None}), ("biggan", {"model__attn_res": None}), ("small-data", {}),
    ("dcgan", {"tricks__pac": 2, "optim__unrolled_k": 1, "tricks__diffaug": "translation", "tricks__ada_target": 0.6}),
])
def test_every_preset_trains_its_encoder_beside_its_own_objective(preset, extra):
    gan = _gan(preset, bigan__weight=1.0, **SMALL, **extra)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (8,), generator=g)
    before = [p.detach().clone() for p in gan.bigan.E.parameters()]
    out = gan.train_iteration(lambda: (x, y))
    assert all(torch.isfinite(out[k]) for k in ("bigan_d", "bigan_ge", "bigan_cycle", "d_loss", "g_loss")), out
    assert any(not torch.equal(p, q) for p, q in zip(before, gan.bigan.E.parameters()))  # E stepped
    assert all(p.requires_grad for p in gan.bigan.D.parameters())  # frozen for the G step only
    assert gan.nonfinite_weights() is None


def _assert_equal_nested(a, b, where: str = "state") -> None:  # noqa: ANN001
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            _assert_equal_nested(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (p, q) in enumerate(zip(a, b)):
            _assert_equal_nested(p, q, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def test_resume_of_a_bigan_run_is_bit_exact_and_the_checkpoint_hands_out_its_encoder(tmp_path):
    """4 steps straight == 2 steps + resume to 4: G, D, EMA G, E, D_xz and all four optimizers, with DiffAugment
    drawing for D_xz from the same stream as for D."""
    gan = tiny("dcgan", bigan__weight=1.0, tricks__diffaug="color,translation,cutout", tricks__ema=True, **SMALL)
    cfg = dict(batch=6, device="cpu", precision="fp32", log_every=1, ckpt_every=2, sample_every=0)
    a, b = straight_and_resumed(bars((12, 8, 6)), gan, tmp_path, steps=4, split=2, **cfg)
    assert set(a["bigan"]) == {"E", "D_xz", "opt_e", "opt_d"} and a["bigan"]["opt_e"]["state"]  # the optimizers have stepped
    for key in ("G", "D", "G_ema", "opt_g", "opt_d", "bigan"):
        _assert_equal_nested(a[key], b[key], key)
    rows = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all({"bigan_d", "bigan_ge", "bigan_cycle"} <= set(r) for r in rows)
    source = read_generator(tmp_path / "straight")
    E = source.encoder()
    assert source.has_encoder and source.info().encoder and not E.training
    assert all(torch.equal(p, a["bigan"]["E"][k]) for k, p in E.state_dict().items())
    assert "bigan" not in source.payload["state"] or set(source.payload["state"]["bigan"]) == {"E"}  # D_xz and optimizers are not kept for sampling


def test_combinations_it_cannot_serve_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"bigan.weight=1 does not work with model.grow.start=8 \(progressive growing.*set bigan.weight=0") as err:
        _gan("progressive", bigan__weight=1.0, **SMALL)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="bigan.weight"):  # a negative weight is refused by the schema, naming the key
        tiny("dcgan", bigan__weight=-1.0)
    with pytest.raises(ConfigError, match="bigan"):  # unknown keys of the section too
        tiny("dcgan", bigan__width=8)
    from augmentgan.gan.presets import get_preset

    assert get_preset("sngan", ["bigan.weight=1", "bigan.lr_e=1e-4"]).bigan.model_dump() == {  # --set and recipe overrides
        "weight": 1.0, "cycle": 1.0, "e_ch": 32, "d_ch": 32, "lr_e": 1e-4, "lr_d": None}


def test_the_expansion_cache_keys_of_runs_without_bigan_leave_the_section_out():
    import hashlib

    from augmentgan.gan.gan import resolve_device
    from augmentgan.gan.precision import resolve_precision
    from augmentgan.gan.trainer import TrainConfig
    from augmentgan.pipeline import GAN_CACHE_VERSION, gan_cache_key

    data, cfg, tcfg = bars((4, 4, 4)), tiny("dcgan"), TrainConfig(steps=3)
    settings = tcfg.model_dump(mode="json", exclude={"device", "sample_every", "sample_per_class", "ckpt_every", "log_every", "keep_last"})
    settings["precision"] = resolve_precision(tcfg.precision, resolve_device(tcfg.device))[0]
    without = {"data": data.fingerprint(), "gan": {k: v for k, v in cfg.model_dump(mode="json").items() if k != "bigan"}, "train": settings,
               "version": GAN_CACHE_VERSION}
    assert gan_cache_key(data, cfg, tcfg) == hashlib.sha256(json.dumps(without, sort_keys=True).encode("utf-8")).hexdigest()[:20]
    assert gan_cache_key(data, tiny("dcgan", bigan__weight=1.0), tcfg) != gan_cache_key(data, cfg, tcfg)
