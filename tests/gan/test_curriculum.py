"""Curriculum GAN / WGAN-C (Sharma et al. 2018): the schedule, the ensemble D, resume, and that a tiny run learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from augmentgan.errors import ConfigError
from augmentgan.gan.config import CurriculumConfig
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.models import CurriculumDiscriminator, build_discriminator
from augmentgan.gan.presets import get_preset
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.trainer import TrainConfig, train
from augmentgan.recipe import gan_config, load_recipe
from trainer_data import assert_same_state, bars, straight_and_resumed, tiny


def weights(schedule: str, step: int, k: int = 3) -> list[float]:
    widths = [0.25, 0.5, 1.0, 2.0][:k]
    return CurriculumConfig(widths=widths, schedule=schedule, start=100, length=400).weights(step)


@pytest.mark.parametrize("schedule", ["linear", "exp", "step"])
def test_schedule_moves_weight_from_the_weakest_to_the_strongest_member(schedule):
    steps = range(0, 700, 10)
    ws = np.array([weights(schedule, t) for t in steps])
    assert np.allclose(ws.sum(1), 1.0)
    assert (ws >= 0).all() and (np.count_nonzero(ws, axis=1) <= 2).all()  # at most two neighbours mixed
    assert ws[0].tolist() == [1.0, 0.0, 0.0] and weights(schedule, 100) == [1.0, 0.0, 0.0]  # before start: the weakest alone
    assert weights(schedule, 500) == [0.0, 0.0, 1.0] and weights(schedule, 10**6) == [0.0, 0.0, 1.0]  # after start + length
    position = ws @ np.arange(3)
    assert (np.diff(position) >= -1e-12).all()  # strength never goes back


def test_schedule_shapes_are_as_documented():
    # linear: p = 2u; halfway (u = 0.5) the middle member alone, at u = 0.25 half weakest half middle
    assert weights("linear", 300) == [0.0, 1.0, 0.0]
    assert weights("linear", 200) == pytest.approx([0.5, 0.5, 0.0])
    assert weights("linear", 400) == pytest.approx([0.0, 0.5, 0.5])
    # exp: p = 2 (1 - e^(-5u)) / (1 - e^(-5)): ahead of linear, 1.84 at u = 0.5
    p = 2 * (1 - np.exp(-2.5)) / (1 - np.exp(-5))
    assert weights("exp", 300) == pytest.approx([0.0, 2 - p, p - 1])
    # step: each member alone for length / K steps
    assert weights("step", 233) == [1.0, 0.0, 0.0]
    assert weights("step", 234) == [0.0, 1.0, 0.0]
    assert weights("step", 366) == [0.0, 1.0, 0.0]
    assert weights("step", 367) == [0.0, 0.0, 1.0]
    assert weights("linear", 300, k=4) == pytest.approx([0.0, 0.5, 0.5, 0.0])


def test_bad_member_lists_are_refused():
    for widths in ([1.0], [0.5, 0.25], [0.0, 1.0], [0.5, 0.5]):
        with pytest.raises(ConfigError, match="model.curriculum.widths"):
            get_preset("wgan-gp", {"model.curriculum.widths": widths})


def test_preset_cli_pairs_and_recipe_overrides_switch_it_on():
    c = get_preset("wgan-c")
    assert c.model.curriculum.widths == [0.25, 0.5, 1.0] and c.loss.name == "wasserstein" and c.reg.gp == 10.0
    assert get_preset("sngan", ["model.curriculum.widths=[0.5, 1.0]", "model.curriculum.schedule=step"]).model.curriculum.active
    recipe = load_recipe({"data": {"path": "builtin:digits"}, "output": {"path": "out"}, "gan": {"preset": "sngan", "overrides": {"model": {"curriculum": {"widths": [0.5, 1.0], "length": 10}}}}})
    assert gan_config(recipe).model.curriculum.length == 10
    D = build_discriminator(c.model, img_size=16, channels=1, num_classes=3, per_sample_grad=True)
    assert isinstance(D, CurriculumDiscriminator)
    assert [m.net[0].out_channels for m in D.members] == [64, 128, 256]  # the first conv of dcgan D at 16x16 is 4 x d_ch: d_ch 16, 32, 64
    assert D.weights.tolist() == [0.0, 0.0, 1.0]  # a freshly built D (e.g. for the discriminator filter) is the final, strongest one


def _gan(**overrides) -> ConditionalGAN:
    cfg = tiny("wgan-c", optim__n_dis=1, model__curriculum__length=4, **overrides)
    return ConditionalGAN(cfg, img_size=16, channels=1, num_classes=3, class_counts=[8, 8, 8], seed=0)


def test_g_faces_the_mixture_and_every_member_trains_from_the_start():
    data = bars((8, 8, 8))
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(data.labels)
    gan = _gan()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in gan.D.members]
    seen = []
    for _ in range(6):
        out = gan.train_iteration(lambda: (x, y))
        seen.append((gan.D.weights.tolist(), float(out["d_strength"])))
    # the weights of iteration t are those of the schedule at G step t
    assert [w for w, _ in seen] == [CurriculumConfig(widths=[0.25, 0.5, 1.0], length=4).weights(t) for t in range(6)]
    assert [s for _, s in seen] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.0])
    # the strongest member had weight 0 for the first iterations, yet it trained on its own loss all along
    for member, old in zip(gan.D.members, before):
        assert any(not torch.equal(v, old[k]) for k, v in member.state_dict().items())
    # the mixture is what D (and so G's loss) sees
    gan.D.weights.copy_(torch.tensor([0.2, 0.3, 0.5]))
    with torch.no_grad():
        parts = [m(x, y) for m in gan.D.members]
        assert torch.allclose(gan.D(x, y), 0.2 * parts[0] + 0.3 * parts[1] + 0.5 * parts[2], atol=1e-5)


def test_with_weight_on_the_weakest_member_g_gets_gradient_from_it_alone():
    gan = _gan()  # step 0: weights [1, 0, 0]
    z, y = gan.fake_latents(8)
    fake = gan.G(z, y)
    grads = torch.autograd.grad(gan.D(fake, y).mean(), list(gan.D.members[2].parameters()), allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    grads = torch.autograd.grad(gan.D(gan.G(z, y), y).mean(), list(gan.D.members[0].parameters()), allow_unused=True)
    assert any(g is not None and g.any() for g in grads)


def test_resume_across_the_schedule_is_bit_identical(tmp_path):
    gan = tiny("wgan-c", optim__n_dis=2, model__curriculum__length=4, model__curriculum__schedule="exp")
    cfg = dict(batch=8, device="cpu", precision="fp32", log_every=1, ckpt_every=3, sample_every=0)
    a, b = straight_and_resumed(bars((16, 8, 8)), gan, tmp_path, steps=6, split=3, **cfg)
    assert_same_state(a, b)
    assert any(k.startswith("members.2.") for k in a["D"])


def test_curriculum_with_hinge_resnet_and_transitional_conditioning_trains(tmp_path):
    data = bars((16, 8, 8))
    gan = tiny("sngan", optim__n_dis=1, model__curriculum__widths=[0.5, 1.0], model__curriculum__length=2, tricks__cond_length=2)
    result = train(data, gan, TrainConfig(steps=3, batch=8, device="cpu", precision="fp32", log_every=1, ckpt_every=3, sample_every=0), tmp_path / "run")
    assert result.metrics["d_strength"] == 1.0 and np.isfinite(result.metrics["d_loss"])


@pytest.mark.slow
def test_a_tiny_wgan_c_run_learns_the_classes(tmp_path):
    """As tests/gan/test_trainer_learning.py: a pixel classifier puts >= 90% of the generated images in their class."""
    data = bars((64, 32, 16))
    pixels = data.images.reshape(len(data), -1) / 255.0
    clf = LogisticRegression(max_iter=2000).fit(pixels, data.labels)
    steps = 150  # the weight is on the full critic from step 60
    gan = tiny("wgan-c", model__curriculum__length=60)
    train(data, gan, TrainConfig(steps=steps, batch=32, device="cpu", precision="fp32", log_every=50, ckpt_every=steps, sample_every=0), tmp_path / "run")
    G, _ = load_generator(tmp_path / "run")
    y = torch.arange(3).repeat_interleave(100)
    with torch.no_grad():
        x = G(torch.randn(len(y), G.z_dim, generator=torch.Generator().manual_seed(1)), y)
    accuracy = float(np.mean(clf.predict(((x.clamp(-1, 1) + 1) / 2).reshape(len(y), -1).numpy()) == y.numpy()))
    assert accuracy >= 0.9
