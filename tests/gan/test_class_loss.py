"""reg.class_loss: D's projection embeddings double as a classifier (P2GAN, Han et al. 2021).

D learns to classify real images with softmax_k <embed_k, phi(x)>, and G is pushed toward samples that
D classifies as the class they were asked for. On small long-tailed data this is what keeps a class's
samples of that class (benchmarks/RESULTS.md, "Class faithfulness": 0.09 -> 0.81 of the quick start's
samples recognised as their class).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from augmentgan.errors import ConfigError
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import assert_resumes_bit_identically, bars, one_thread, tiny  # noqa: F401 - one_thread is a fixture


def _gan(preset: str = "dcgan", **overrides) -> ConditionalGAN:
    return ConditionalGAN(tiny(preset, **overrides), img_size=16, channels=1, num_classes=3, class_counts=[20, 5, 2], seed=1)


def test_class_logits_are_the_projection_terms_and_the_output_is_unchanged():
    gan = _gan("sngan")  # spectral norm: the embedding must be read once, so both calls see the same weights
    D = gan.D.eval()
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        plain = D(x, y)
        logits, classes = D(x, y, classes=True)
        assert torch.allclose(logits, plain, atol=1e-6) and classes.shape == (6, 3)
        # D(x, k) - D(x, j) is the difference of the class logits: one set of embeddings, two readings
        for k in range(3):
            other = D(x, torch.full_like(y, k))
            assert torch.allclose(other - plain, classes[:, k] - classes[torch.arange(6), y], atol=1e-4)


@pytest.mark.parametrize(("preset", "extra", "names"), [
    ("ssgan", {}, "model.d_cond='kplus1'"),
    ("dcgan", {"tricks__pac": 2}, "tricks.pac=2"),
    ("dcgan", {"model__d_cond": "channels"}, "model.d_cond='channels'"),
    ("wgan-c", {}, "model.curriculum"),
])
def test_refused_where_there_are_no_class_logits(preset, extra, names):
    with pytest.raises(ConfigError, match="reg.class_loss=1 does not work with") as err:
        _gan(preset, reg__class_loss=1.0, **extra)
    assert names in str(err.value) and "\n" not in str(err.value)


def test_d_learns_to_classify_the_reals_and_both_steps_log_their_class_loss(one_thread):
    data = bars((24, 24, 24))
    gan = _gan("dcgan", reg__class_loss=1.0)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(data.labels).long()
    first = gan.train_iteration(lambda: (x, y))
    assert {"d_class", "g_class"} <= set(first) and "d_class" in gan.metric_names
    for _ in range(30):
        last = gan.train_iteration(lambda: (x, y))
    assert float(last["d_class"]) < 0.5 * float(first["d_class"])
    with torch.no_grad():  # in training mode, as D sees its batches (BatchNorm on the batch's statistics)
        _, classes = gan.D(x, y, classes=True)
    assert float((classes.argmax(1) == y).float().mean()) >= 0.9


@pytest.mark.parametrize("twin", [False, True])
def test_resume_with_the_class_loss_is_bit_identical(twin, one_thread):
    kw = dict(reg__class_loss=1.0, reg__mode_seeking=0.1, tricks__cond_start=1, tricks__cond_length=4, reg__class_twin=twin)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(8, 1, 16, 16, generator=g) * 2 - 1, torch.randint(0, 3, (8,), generator=g)
    out = assert_resumes_bit_identically(lambda: _gan("dcgan", **kw), x, y)
    assert ({"d_twin", "g_twin"} <= set(out)) == twin


# --- TAC-GAN's twin classifier (reg.class_twin) ----------------------------------------------------
def test_the_twin_is_trained_in_ds_step_and_is_ds_third_class_output(one_thread):
    gan = _gan("dcgan", reg__class_loss=1.0, reg__class_twin=True)
    assert gan.D.twin is not None and {"d_twin", "g_twin"} <= set(gan.metric_names)
    before = gan.D.twin.weight.detach().clone()
    x, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.randint(0, 3, (8,))
    gan.D.zero_grad()
    gan.D.requires_grad_(True)
    out = gan.d_step(x, y)
    assert not torch.equal(gan.D.twin.weight, before) and "d_twin" in out
    # classes=True returns the twin's logits as a third output
    z, y_fake = torch.randn(8, gan.G.z_dim), torch.randint(0, 3, (8,))
    with torch.no_grad():
        fake = gan.G(z, y_fake)
    _, _, twin_logits = gan.D(fake, y_fake, classes=True)
    assert twin_logits.shape == (8, 3)
    with pytest.raises(ConfigError, match="reg.class_twin needs reg.class_loss > 0"):
        tiny("dcgan", reg__class_twin=True)


def test_with_a_twin_equal_to_the_classifier_the_class_terms_cancel_in_gs_update(one_thread):
    """G's class term is CE(classifier) - CE(twin): where the twin has learned exactly what the classifier
    knows, G is left with the adversarial loss alone - the same update as without a class loss."""
    tac = _gan("dcgan", reg__class_loss=1.0, reg__class_twin=True)
    plain = _gan("dcgan")
    with torch.no_grad():
        tac.D.twin.weight.copy_(tac.D.embed.weight)
    plain.G.load_state_dict(tac.G.state_dict())
    plain.D.load_state_dict({k: v for k, v in tac.D.state_dict().items() if not k.startswith("twin")})
    x, y = torch.rand(8, 1, 16, 16) * 2 - 1, torch.randint(0, 3, (8,))
    a, b = tac.g_step(x, y), plain.g_step(x, y)
    assert float(a["g_class"]) == pytest.approx(float(a["g_twin"]), abs=1e-6) and float(a["g_class"]) > 0.5
    assert torch.equal(a["g_loss"], b["g_loss"])
    for p, q in zip(tac.G.parameters(), plain.G.parameters()):
        assert torch.allclose(p, q, atol=1e-7)


@pytest.mark.slow
def test_with_the_quick_starts_regularizers_the_class_loss_keeps_samples_in_their_class(tmp_path):
    """Mode seeking, minibatch std and LeCam (the quick start's GAN) pull a projection GAN's samples off
    their class on small imbalanced data (measured here: 0.53 / 0.58 / 0.00 of each class's samples in
    their class after 300 steps); the class loss brings them back (1.00 / 1.00 / 0.41)."""
    data = bars((64, 32, 16))
    pixels = data.images.reshape(len(data), -1) / 255.0
    clf = LogisticRegression(max_iter=2000).fit(pixels, data.labels)
    regs = dict(reg__mode_seeking=1.0, model__mbstd=4, reg__lecam=0.3, reg__lecam_start=20)
    scores = {}
    for weight in (0.0, 1.0):
        cfg = TrainConfig(steps=300, batch=32, device="cpu", precision="fp32", log_every=100, ckpt_every=300, sample_every=0)
        train(data, tiny("dcgan", reg__class_loss=weight, **regs), cfg, tmp_path / f"run{weight}")
        G, _ = load_generator(tmp_path / f"run{weight}")
        y = torch.arange(3).repeat_interleave(100)
        with torch.no_grad():
            x = G(torch.randn(len(y), G.z_dim, generator=torch.Generator().manual_seed(1)), y)
        hit = clf.predict(((x.clamp(-1, 1) + 1) / 2).reshape(len(y), -1).numpy()) == y.numpy()
        scores[weight] = [float(hit[y.numpy() == c].mean()) for c in range(3)]
    print(f"in-class share per class after 300 steps: projection alone {scores[0.0]}, with reg.class_loss=1 {scores[1.0]}")
    alone, with_loss = np.mean(scores[0.0]), np.mean(scores[1.0])
    assert with_loss >= 0.6 and with_loss >= alone + 0.25, scores
