"""Adversarial losses against values computed by hand / with numpy from the papers' formulas."""

from __future__ import annotations

import typing

import numpy as np
import pytest
import torch

from augmentgan.errors import ConfigError
from augmentgan.gan.config import LossName
from augmentgan.gan.losses import LOSSES, get_loss

R = np.array([2.0, -1.0, 0.5, 0.25])
F_ = np.array([-0.5, 1.5, 0.0, -2.0])


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def log_sig(x):
    return np.log(sig(x))


def log_one_minus_sig(x):
    return np.log(1.0 - sig(x))


relu = lambda x: np.maximum(x, 0.0)  # noqa: E731
E = np.mean

# name -> (D(r, f, s), G(f, r)), written from the papers' equations (see losses.py docstrings).
REFERENCE = {
    "minimax": (
        lambda r, f, s: E(-((1 - s) * log_sig(r) + s * log_one_minus_sig(r))) - E(log_one_minus_sig(f)),
        lambda f, r: E(log_one_minus_sig(f)),
    ),
    "bce": (
        lambda r, f, s: E(-((1 - s) * log_sig(r) + s * log_one_minus_sig(r))) - E(log_one_minus_sig(f)),
        lambda f, r: -E(log_sig(f)),
    ),
    "lsgan": (
        lambda r, f, s: 0.5 * E((r - (1 - s)) ** 2) + 0.5 * E(f**2),
        lambda f, r: 0.5 * E((f - 1) ** 2),
    ),
    "wasserstein": (lambda r, f, s: E(f) - E(r), lambda f, r: -E(f)),
    "hinge": (lambda r, f, s: E(relu(1 - r)) + E(relu(1 + f)), lambda f, r: -E(f)),
    "rsgan": (lambda r, f, s: -E(log_sig(r - f)), lambda f, r: -E(log_sig(f - r))),
    "ragan": (
        lambda r, f, s: -E(log_sig(r - E(f))) - E(log_one_minus_sig(f - E(r))),
        lambda f, r: -E(log_sig(f - E(r))) - E(log_one_minus_sig(r - E(f))),
    ),
    "ralsgan": (
        lambda r, f, s: E((r - E(f) - 1) ** 2) + E((f - E(r) + 1) ** 2),
        lambda f, r: E((f - E(r) - 1) ** 2) + E((r - E(f) + 1) ** 2),
    ),
    "rahinge": (
        lambda r, f, s: E(relu(1 - (r - E(f)))) + E(relu(1 + (f - E(r)))),
        lambda f, r: E(relu(1 - (f - E(r)))) + E(relu(1 + (r - E(f)))),
    ),
}


def t(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def test_registry_matches_config_names():
    assert set(LOSSES) == set(typing.get_args(LossName)) == set(REFERENCE)
    for name in LOSSES:
        assert get_loss(name).name == name
    assert {n for n, loss in LOSSES.items() if loss.relativistic} == {"rsgan", "ragan", "ralsgan", "rahinge"}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_loss_values_match_formula(name):
    loss = get_loss(name)
    d_ref, g_ref = REFERENCE[name]
    d = loss.d_loss(t(R), t(F_))
    g = loss.g_loss(t(F_), t(R))
    assert d.ndim == 0 and g.ndim == 0
    assert d.item() == pytest.approx(d_ref(R, F_, 0.0), rel=1e-12, abs=1e-12)
    assert g.item() == pytest.approx(g_ref(F_, R), rel=1e-12, abs=1e-12)


def test_hand_computed_values():
    r, f = t(R), t(F_)
    # hinge: relu(1 - r) = [0, 2, .5, .75] -> .8125; relu(1 + f) = [.5, 2.5, 1, 0] -> 1.0
    assert get_loss("hinge").d_loss(r, f).item() == pytest.approx(1.8125)
    # wasserstein: mean f = -0.25, mean r = 0.4375
    assert get_loss("wasserstein").d_loss(r, f).item() == pytest.approx(-0.6875)
    assert get_loss("wasserstein").g_loss(f).item() == pytest.approx(0.25)
    # lsgan G: 0.5 * mean([2.25, .25, 1, 9]) = 1.5625
    assert get_loss("lsgan").g_loss(f).item() == pytest.approx(1.5625)
    # bce on zero logits: log 2 for each side
    z = torch.zeros(3)
    assert get_loss("bce").d_loss(z, z).item() == pytest.approx(2 * np.log(2))
    assert get_loss("minimax").g_loss(z).item() == pytest.approx(-np.log(2))
    # rahinge with r = [1, 3], f = [0, 0]: mean f = 0, mean r = 2
    # D = mean(relu(1 - [1, 3])) + mean(relu(1 + [-2, -2])) = 0; G = mean(relu(1 - [-2, -2])) + mean(relu(1 + [1, 3])) = 3 + 3
    rr, ff = torch.tensor([1.0, 3.0]), torch.zeros(2)
    assert get_loss("rahinge").d_loss(rr, ff).item() == pytest.approx(0.0)
    assert get_loss("rahinge").g_loss(ff, rr).item() == pytest.approx(6.0)


@pytest.mark.parametrize("name", ["bce", "minimax", "lsgan"])
def test_one_sided_label_smoothing(name):
    d_ref, _ = REFERENCE[name]
    loss = get_loss(name)
    smoothed = loss.d_loss(t(R), t(F_), label_smoothing=0.1).item()
    assert smoothed == pytest.approx(d_ref(R, F_, 0.1), rel=1e-12)
    assert smoothed != pytest.approx(d_ref(R, F_, 0.0))
    # one-sided: the fake term is untouched, so with only fakes changing the difference is the same
    delta_s = loss.d_loss(t(R), t(F_ + 1), label_smoothing=0.1).item() - smoothed
    delta_0 = loss.d_loss(t(R), t(F_ + 1)).item() - loss.d_loss(t(R), t(F_)).item()
    assert delta_s == pytest.approx(delta_0, rel=1e-12)


@pytest.mark.parametrize("name", sorted(set(REFERENCE) - {"bce", "minimax", "lsgan"}))
def test_label_smoothing_refused_where_it_does_not_apply(name):
    with pytest.raises(ConfigError, match=name):
        get_loss(name).d_loss(t(R), t(F_), label_smoothing=0.1)


def _numeric_grad(fn, x, h=1e-6):
    grad = np.zeros_like(x)
    for i in range(len(x)):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (fn(up) - fn(down)) / (2 * h)
    return grad


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_gradients_match_formula_for_both_inputs(name):
    """Autograd gradients w.r.t. real and fake logits equal finite differences of the formulas.

    For relativistic losses this checks that G's loss differentiates through real_logits.
    """
    loss = get_loss(name)
    d_ref, g_ref = REFERENCE[name]
    r, f = t(R), t(F_)
    loss.d_loss(r, f).backward()
    np.testing.assert_allclose(r.grad.numpy(), _numeric_grad(lambda x: d_ref(x, F_, 0.0), R), atol=1e-6)
    np.testing.assert_allclose(f.grad.numpy(), _numeric_grad(lambda x: d_ref(R, x, 0.0), F_), atol=1e-6)
    r, f = t(R), t(F_)
    loss.g_loss(f, r).backward()
    np.testing.assert_allclose(f.grad.numpy(), _numeric_grad(lambda x: g_ref(x, R), F_), atol=1e-6)
    if loss.relativistic:
        expected = _numeric_grad(lambda x: g_ref(F_, x), R)
        assert np.abs(expected).max() > 0.01
        np.testing.assert_allclose(r.grad.numpy(), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["rsgan", "ragan", "ralsgan", "rahinge"])
def test_relativistic_g_loss_needs_real_logits(name):
    with pytest.raises(ValueError, match="real_logits"):
        get_loss(name).g_loss(torch.zeros(4))


def test_rsgan_pairs_need_equal_shapes_but_average_losses_do_not():
    with pytest.raises(ValueError, match="same size"):
        get_loss("rsgan").d_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="same size"):
        get_loss("rsgan").g_loss(torch.zeros(3), torch.zeros(4))
    r, f = np.array([1.0, -2.0, 0.5]), np.array([0.25, 3.0])
    d_ref, g_ref = REFERENCE["ragan"]
    assert get_loss("ragan").d_loss(t(r), t(f)).item() == pytest.approx(d_ref(r, f, 0.0), rel=1e-12)
    assert get_loss("ragan").g_loss(t(f), t(r)).item() == pytest.approx(g_ref(f, r), rel=1e-12)


@pytest.mark.parametrize("name", ["bce", "minimax", "rsgan", "ragan"])
def test_sigmoid_losses_are_stable_for_large_logits(name):
    big = torch.tensor([200.0, -200.0], requires_grad=True)
    other = torch.tensor([-200.0, 200.0], requires_grad=True)
    d = get_loss(name).d_loss(big, other)
    g = get_loss(name).g_loss(other, big)
    (d + g).backward()
    assert torch.isfinite(d) and torch.isfinite(g)
    assert torch.isfinite(big.grad).all() and torch.isfinite(other.grad).all()
    # -log sig(-200) = 200 on one of the two real samples
    assert d.item() >= 99.0


def test_unknown_loss_names_valid_ones():
    with pytest.raises(ConfigError) as err:
        get_loss("nonsaturating")
    assert "nonsaturating" in str(err.value) and "hinge" in str(err.value) and "ragan" in str(err.value)
