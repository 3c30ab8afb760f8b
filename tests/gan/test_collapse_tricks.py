"""Techniques against collapse on small, long-tailed data (issue 13): LeCam, mode seeking, minibatch
std, transitional conditioning, gSR, DiffAugment auto and ADA - each its real behaviour, its config
switches and its share of the checkpoint (bit-exact resume)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from torch import nn

from augmentgan.errors import ConfigError
from augmentgan.gan.config import DIFFAUG_AUTO_POLICY, GANConfig, TricksConfig, resolve_diffaug
from augmentgan.gan.diffaug import diff_augment
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.layers import MinibatchStd, set_cond_scale
from augmentgan.gan.models import build_discriminator, build_generator
from augmentgan.gan.presets import get_preset
from augmentgan.gan.regularizers import GroupSpectralReg, LeCamEMA, class_balanced_weights, group_shape, lecam_reg, mode_seeking_loss
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.trainer import TrainConfig, resolve_gan_config, train
from trainer_data import assert_resumes_bit_identically, bars, one_thread, tiny  # noqa: F401 - one_thread is a fixture

ALL_ON = dict(
    reg__lecam=0.3, reg__lecam_start=1, reg__mode_seeking=1.0, model__mbstd=4, tricks__cond_start=1, tricks__cond_length=4,
    tricks__diffaug="color,translation,cutout", tricks__ada_target=0.6, tricks__ada_kimg=0.05,
)


def _gan(preset: str = "dcgan", counts=(20, 5, 2), **overrides) -> ConditionalGAN:
    return ConditionalGAN(tiny(preset, **overrides), img_size=16, channels=1, num_classes=3, class_counts=list(counts), seed=1)


def _batch(n: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (n,), generator=g)


# --- config: presets, --set, recipe overrides --------------------------------------------------
def test_every_new_field_is_a_dotted_override():
    cfg = get_preset("small-data", {
        "reg.lecam": 0.3, "reg.lecam_decay": 0.9, "reg.lecam_start": 5, "reg.mode_seeking": 1, "reg.gsr": 0.5, "reg.gsr_beta": 0,
        "model.mbstd": 4, "tricks.cond_start": 10, "tricks.cond_length": 20, "tricks.diffaug": "auto", "tricks.ada_target": 0.6,
    })
    assert (cfg.reg.lecam, cfg.reg.mode_seeking, cfg.reg.gsr, cfg.model.mbstd, cfg.tricks.cond_length, cfg.tricks.ada_target) == (0.3, 1.0, 0.5, 4, 20, 0.6)
    with pytest.raises(ConfigError):
        get_preset("dcgan", {"model.mbstd": -1})
    with pytest.raises(ConfigError):
        get_preset("dcgan", {"tricks.diffaug": "auto,color"})


def test_diffaug_auto_is_the_default_and_resolves_from_the_smallest_class():
    assert GANConfig().tricks.diffaug == "auto" and get_preset("dcgan").tricks.diffaug == "auto"
    assert resolve_diffaug("auto", [5000, 999])[0] == DIFFAUG_AUTO_POLICY
    assert resolve_diffaug("auto", [5000, 1000])[0] == ""
    assert resolve_diffaug("translation", [3])[0] == "translation"
    cfg, _ = resolve_gan_config(get_preset("dcgan"), 16, [150, 8])
    assert cfg.tricks.diffaug == DIFFAUG_AUTO_POLICY
    assert resolve_gan_config(get_preset("dcgan"), 16, [1500, 1000])[0].tricks.diffaug == ""
    assert _gan(counts=(2000, 1500), tricks__diffaug="auto").diffaug == ""
    assert _gan(counts=(2000, 15), tricks__diffaug="auto").diffaug == DIFFAUG_AUTO_POLICY
    no_counts = ConditionalGAN(get_preset("dcgan", {"model.g_ch": 8, "model.d_ch": 8}), img_size=16, channels=1, num_classes=3)
    assert no_counts.diffaug == ""  # nothing to decide from: off


def test_diffaug_off_in_any_spelling_and_ada_without_it_is_said_to_do_nothing():
    for off in ("off", "none", "false", "null", "", "OFF"):
        assert get_preset("dcgan", [f"tricks.diffaug={off}"]).tricks.diffaug == "", off
    with pytest.raises(ConfigError, match="use auto, off, or a comma-separated subset"):
        get_preset("dcgan", ["tricks.diffaug=colour"])
    gan = get_preset("dcgan", ["tricks.diffaug=off", "tricks.ada_target=0.6"])
    assert any("tricks.ada_target 0.6 has no effect" in n for n in resolve_gan_config(gan, 16, [150, 8])[1])
    with_aug = get_preset("dcgan", ["tricks.ada_target=0.6"])  # auto: DiffAugment on for small classes, ADA with it
    assert not any("ada_target" in n for n in resolve_gan_config(with_aug, 16, [150, 8])[1])
    assert any("ada_target" in n for n in resolve_gan_config(with_aug, 16, [1500, 1200])[1])  # auto turned it off


def test_diffaug_auto_is_recorded_resolved_in_config_yaml(tmp_path):
    import yaml

    out = train(bars((12, 8, 6)), tiny("dcgan", tricks__diffaug="auto"), TrainConfig(steps=1, batch=6, device="cpu", sample_every=0), tmp_path / "run").run_dir
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["gan"]["tricks"]["diffaug"] == DIFFAUG_AUTO_POLICY


# --- LeCam -------------------------------------------------------------------------------------
def test_lecam_penalises_only_predictions_beyond_the_other_sides_anchor():
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    # relu(real - ema_fake)^2 mean + relu(ema_real - fake)^2 mean, anchors ema_real=1, ema_fake=0
    expected = ((2.0**2 + 0.0) / 2) + ((0.5**2 + 4.0**2) / 2)
    assert lecam_reg(real, fake, torch.tensor(1.0), torch.tensor(0.0)).item() == pytest.approx(expected)
    ema = LeCamEMA(decay=0.5, start=2)
    ema.update(torch.tensor([4.0]), torch.tensor([-4.0]), g_step=0)  # before start: follows the last value
    ema.update(torch.tensor([2.0]), torch.tensor([-2.0]), g_step=1)
    assert ema.value.tolist() == [2.0, -2.0] and not ema.active(1)
    ema.update(torch.tensor([4.0]), torch.tensor([0.0]), g_step=2)  # from start: decay 0.5
    assert ema.value.tolist() == [3.0, -1.0] and ema.active(2)


def test_lecam_term_trains_d_and_its_emas_are_checkpointed():
    gan = _gan(reg__lecam=0.3, reg__lecam_start=0, tricks__diffaug="")
    x, y = _batch()
    out = gan.train_iteration(lambda: (x, y))
    assert "lecam" in out and "lecam" in gan.metric_names and float(out["lecam"]) >= 0
    state = gan.state_dict()["lecam"]["value"]
    assert torch.equal(state, gan.lecam.value) and state.shape == (2,)


# --- mode seeking ------------------------------------------------------------------------------
def test_mode_seeking_loss_is_lower_for_diverse_pairs_and_its_gradient_spreads_them():
    z1, z2 = torch.zeros(4, 8), torch.ones(4, 8)
    same = mode_seeking_loss(torch.zeros(4, 3), torch.full((4, 3), 0.01), z1, z2)
    apart = mode_seeking_loss(torch.zeros(4, 3), torch.full((4, 3), 0.5), z1, z2)
    assert apart < same
    torch.manual_seed(0)
    G = nn.Linear(8, 16)
    with torch.no_grad():
        G.weight.mul_(0.01)
    za, zb = torch.randn(32, 8), torch.randn(32, 8)
    before = (G(za) - G(zb)).abs().mean().item()
    opt = torch.optim.SGD(G.parameters(), lr=1e-4)
    mode_seeking_loss(G(za), G(zb), za, zb).backward()
    opt.step()
    assert (G(za) - G(zb)).abs().mean().item() > before * 1.5


def test_mode_seeking_pairs_two_latents_for_the_same_classes():
    gan = _gan(reg__mode_seeking=1.0, tricks__diffaug="")
    seen = []
    hook = gan.G.register_forward_hook(lambda m, args, out: seen.append((args[0].clone(), args[1].clone())))
    x, y = _batch()
    out = gan.train_iteration(lambda: (x, y))
    hook.remove()
    z, labels = seen[-1]  # the G step
    assert torch.equal(labels[:4], labels[4:]) and not torch.equal(z[:4], z[4:])
    assert float(out["mode_seeking"]) > 0


# --- minibatch standard deviation --------------------------------------------------------------
def test_mbstd_feature_is_zero_for_identical_samples_and_grows_with_spread():
    layer = MinibatchStd(4)
    same = layer(torch.ones(8, 3, 2, 2))
    assert same.shape == (8, 4, 2, 2) and same[:, 3].abs().max() < 1e-3
    varied = layer(torch.randn(8, 3, 2, 2))
    assert varied[:, 3].min() > 0.3
    odd = layer(torch.randn(6, 3, 2, 2))  # groups of 3: the largest divisor of 6 not above 4
    assert odd.shape == (6, 4, 2, 2)
    assert torch.equal(odd[0, 3], odd[2, 3]) and torch.equal(odd[0, 3], odd[4, 3])  # strided groups {0,2,4} {1,3,5}


@pytest.mark.parametrize("arch_preset", ["dcgan", "sngan", "sagan", "small-data"])
@pytest.mark.parametrize("pac", [1, 2])
def test_mbstd_lets_d_see_the_rest_of_its_group(arch_preset, pac):
    cfg = tiny(arch_preset, model__mbstd=2, model__attn_res=None)
    torch.manual_seed(0)
    D = build_discriminator(cfg.model, img_size=16, channels=1, num_classes=3, pac=pac).eval()
    x = torch.randn(4, pac, 16, 16)
    y = torch.zeros(4, pac, dtype=torch.long) if pac > 1 else torch.zeros(4, dtype=torch.long)
    base = D(x, y).detach()
    x2 = x.clone()
    x2[2] = torch.randn(pac, 16, 16) * 3  # group size 2 over 4 rows: groups {0, 2} and {1, 3}
    moved = D(x2, y).detach()
    assert not torch.allclose(base[0], moved[0])  # same group: its logit changes
    assert torch.allclose(base[1], moved[1]) and torch.allclose(base[3], moved[3])  # other group: untouched


# --- transitional conditioning -----------------------------------------------------------------
def test_cond_scale_ramps_from_zero_to_one():
    t = TricksConfig(cond_start=10, cond_length=20)
    assert [t.cond_scale(s) for s in (0, 10, 20, 30, 99)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert TricksConfig().cond_scale(0) == 1.0


@pytest.mark.parametrize("preset", ["dcgan", "sngan", "small-data"])
def test_at_lambda_zero_g_and_d_ignore_the_class(preset):
    cfg = tiny(preset)
    torch.manual_seed(0)
    G = build_generator(cfg.model, img_size=16, channels=1, num_classes=3).eval()
    D = build_discriminator(cfg.model, img_size=16, channels=1, num_classes=3).eval()
    z, x = torch.randn(4, G.z_dim), torch.randn(4, 1, 16, 16)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.full((4,), 2)
    with torch.no_grad():
        nn.init.normal_(next(m for m in D.modules() if isinstance(m, nn.Embedding)).weight)  # a projection that matters
    assert not torch.allclose(G(z, y0), G(z, y1)) and not torch.allclose(D(x, y0), D(x, y1))
    set_cond_scale(G, 0.0)
    set_cond_scale(D, 0.0)
    assert torch.allclose(G(z, y0), G(z, y1)) and torch.allclose(D(x, y0), D(x, y1))
    split = D(x, y1, split=True)
    assert split.shape == (4, 2) and torch.allclose(split[:, 0], D(x, y1))
    set_cond_scale(D, 0.5)
    assert torch.allclose(D(x, y1), split[:, 0] + 0.5 * split[:, 1], atol=1e-6)
    assert "cond_scale" not in G.state_dict() and "cond_scale" not in D.state_dict()


def test_unrolled_virtual_d_steps_train_the_transitional_objective():
    """With unrolling, G looks ahead at a D trained on the D step's own objective, L(u) + lambda_t L(p),
    not on the loss of the combined logit u + lambda_t p (the two differ for every lambda_t > 0)."""
    from torch.func import functional_call

    gan = _gan("sngan", tricks__cond_length=10, tricks__diffaug="", optim__unrolled_k=1, optim__lr_d=0.5)
    gan.num_g_steps = 5
    gan._set_cond_scale()
    assert gan._split and gan.cond_scale == 0.5
    with torch.no_grad():
        nn.init.normal_(next(m for m in gan.D.modules() if isinstance(m, nn.Embedding)).weight)  # a projection that matters
    x, y = _batch()
    z, y_fake = gan.fake_latents(8)
    real_in, real_y = gan.d_inputs(x, y)
    with torch.no_grad():
        fake_in, fake_y = gan.d_inputs(gan.G(z, y_fake), y_fake)
    unrolled = gan.unrolled_d(real_in, real_y, fake_in, fake_y)
    params = {n: p.detach().requires_grad_(True) for n, p in gan.D.named_parameters()}
    buffers = {n: b.clone() for n, b in gan.D.named_buffers()}
    r = functional_call(gan.D, (params, buffers), (real_in, real_y), {"split": True})
    f = functional_call(gan.D, (params, buffers), (fake_in, fake_y), {"split": True})
    loss = gan.loss.d_loss(r[:, 0], f[:, 0]) + 0.5 * gan.loss.d_loss(r[:, 1], f[:, 1])
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    stepped = {n: p if g is None else p - 0.5 * g for (n, p), g in zip(params.items(), grads)}
    with torch.no_grad():
        want = functional_call(gan.D, (stepped, buffers), (x, y), {"split": True})
        got = unrolled(x, y, split=True)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_transitional_gan_follows_its_own_g_step_counter():
    gan = _gan(tricks__cond_start=1, tricks__cond_length=2, tricks__diffaug="", tricks__ema=True)
    x, y = _batch()
    scales = [float(gan.train_iteration(lambda: (x, y))["cond_scale"]) for _ in range(4)]
    assert scales == [0.0, 0.0, 0.5, 1.0]
    assert float(gan.G.cond_scale) == 1.0 and float(gan.D.cond_scale) == 1.0 and float(gan.ema.model.cond_scale) == 1.0


# --- gSR ---------------------------------------------------------------------------------------
def test_gsr_power_iteration_finds_the_largest_singular_value_of_each_grouped_class_vector():
    assert group_shape(128) == (8, 16) and group_shape(256) == (16, 16) and group_shape(12) == (3, 4)
    w = class_balanced_weights([150, 8], 0.99)
    assert w[1] > w[0] and w.mean().item() == pytest.approx(1.0)
    assert torch.equal(class_balanced_weights([150, 8], 0.0), torch.ones(2, dtype=torch.float64))
    torch.manual_seed(0)
    gamma, beta = torch.randn(3, 12), torch.randn(3, 12)

    class FakeG(nn.Module):
        def class_affines(self):
            return [(gamma, beta)]

    reg = GroupSpectralReg([1, 1, 1], beta=0.0)
    value = reg(FakeG())
    exact = (torch.linalg.matrix_norm(gamma.reshape(3, 3, 4), ord=2) ** 2 + torch.linalg.matrix_norm(beta.reshape(3, 3, 4), ord=2) ** 2).sum() / 3
    assert value.item() == pytest.approx(exact.item(), rel=1e-3)


@pytest.mark.parametrize("preset", ["sngan", "small-data"])
def test_gsr_shrinks_the_class_conditional_gains_and_is_refused_without_them(preset):
    gan = _gan(preset, reg__gsr=1.0, optim__n_dis=1, tricks__diffaug="")
    before = gan.gsr(gan.G).item()
    opt = torch.optim.SGD(gan.G.parameters(), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        gan.gsr(gan.G).backward()
        opt.step()
    assert gan.gsr(gan.G).item() < before
    assert len(gan.state_dict()["gsr"]["vectors"]) == 4 * len(gan.G.class_affines())
    with pytest.raises(ConfigError, match="gsr"):
        _gan("dcgan", reg__gsr=0.5)


# --- ADA ---------------------------------------------------------------------------------------
def test_diffaug_probability_zero_is_identity_and_one_augments_every_sample():
    x = torch.rand(6, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(diff_augment(x, "color,cutout", generator=g, p=torch.tensor(0.0)), x)
    y = diff_augment(x, "color", generator=g, p=torch.tensor(1.0))
    assert all(not torch.allclose(a, b) for a, b in zip(x, y))


def test_ada_p_rises_when_d_is_sure_of_the_reals_and_falls_otherwise():
    gan = _gan(tricks__diffaug="translation", tricks__ada_target=0.6, tricks__ada_kimg=1.0)
    assert gan.ada_p.item() == 0.0
    for _ in range(8):  # every real judged real (D overfits): two adjustments of 8 * 4 / 1000 up
        gan.num_d_steps += 1
        gan._ada_update(torch.ones(8), 8)
    assert gan.ada_p.item() == pytest.approx(0.064)
    for _ in range(4):  # every real judged fake: one adjustment down
        gan.num_d_steps += 1
        gan._ada_update(-torch.ones(8), 8)
    assert gan.ada_p.item() == pytest.approx(0.032)


# --- the checkpoint: bit-exact resume with everything on ---------------------------------------
@pytest.mark.parametrize("preset,extra", [("dcgan", {}), ("small-data", {"reg__gsr": 0.5, "optim__n_dis": 1})])
def test_state_dict_through_torch_save_continues_bit_identically(preset, extra, one_thread):
    x, y = _batch()
    assert_resumes_bit_identically(lambda: _gan(preset, **ALL_ON, **extra), x, y)


def test_trainer_resume_with_every_technique_equals_a_straight_run_and_loads_lambda_t(tmp_path):
    data = bars((12, 8, 6))
    gan = tiny("dcgan", **{**ALL_ON, "tricks__cond_length": 10})
    cfg = dict(batch=6, device="cpu", log_every=2, ckpt_every=2, sample_every=0)
    straight = train(data, gan, TrainConfig(steps=4, **cfg), tmp_path / "straight")
    train(data, gan, TrainConfig(steps=2, **cfg), tmp_path / "split")
    resumed = train(data, gan, TrainConfig(steps=4, **cfg), tmp_path / "split", resume=True)
    a = torch.load(straight.checkpoint, weights_only=True)["state"]
    b = torch.load(resumed.checkpoint, weights_only=True)["state"]
    for key in ("G", "D"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert torch.equal(a["lecam"]["value"], b["lecam"]["value"]) and torch.equal(a["ada"]["p"], b["ada"]["p"])
    G, info = load_generator(straight.run_dir)
    assert float(G.cond_scale) == pytest.approx(0.3)  # step 4 of a ramp from step 1 over 10 steps
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert {"lecam", "mode_seeking", "ada_p", "cond_scale"} <= set(rows[-1])
