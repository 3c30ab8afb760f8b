"""DiffAugment, PacGAN packing and the EMA of G's weights."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from augmentgan.gan.diffaug import diff_augment, parse_policy
from augmentgan.gan.ema import EMA
from augmentgan.gan.pacgan import pack, pack_labels

ALL = "color,translation,cutout"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(b=8, c=3, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=gen(seed)) * 2 - 1


# --- DiffAugment -----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", ALL])
@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (3, 1, 32, 32), (2, 3, 15, 11)])
def test_diffaug_keeps_shape_and_passes_gradients(policy, shape):
    x = images(*shape).requires_grad_(True)
    out = diff_augment(x, policy, generator=gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    (out * torch.randn(out.shape, generator=gen(1))).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diffaug_is_reproducible_from_the_generator():
    x = images()
    a = diff_augment(x, ALL, generator=gen(5))
    b = diff_augment(x, ALL, generator=gen(5))
    c = diff_augment(x, ALL, generator=gen(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_empty_policy_is_identity_and_unknown_op_is_refused():
    x = images()
    assert diff_augment(x, "") is x
    assert diff_augment(x, " , ") is x
    assert parse_policy(" color , cutout ") == ["color", "cutout"]
    with pytest.raises(ValueError, match="flip"):
        diff_augment(x, "color,flip")


def test_color_ops_follow_the_official_formulas():
    x = images(b=4)
    out = diff_augment(x, "color", generator=gen(3)).numpy()
    # The three factors are drawn per sample in this order: brightness, saturation, contrast.
    draws = torch.rand(3, 4, generator=gen(3)).numpy()
    ref = x.numpy().astype(np.float64)
    ref = ref + (draws[0] - 0.5)[:, None, None, None]
    mean_c = ref.mean(axis=1, keepdims=True)
    ref = (ref - mean_c) * (2 * draws[1])[:, None, None, None] + mean_c
    mean_all = ref.mean(axis=(1, 2, 3), keepdims=True)
    ref = (ref - mean_all) * (draws[2] + 0.5)[:, None, None, None] + mean_all
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_translation_shifts_content_with_zero_padding():
    b, h, w = 32, 16, 16
    x = (torch.arange(b * h * w, dtype=torch.float32).reshape(b, 1, h, w) + 1).requires_grad_(True)
    out = diff_augment(x, "translation", generator=gen(2))
    shift = int(16 * 0.125 + 0.5)  # 2 pixels
    seen = set()
    for k in range(b):
        matches = []
        for tx in range(-shift, shift + 1):
            for ty in range(-shift, shift + 1):
                ref = torch.zeros(h, w)
                src = x[k, 0].detach()
                # output (i, j) = input (i + tx, j + ty), zero outside
                ref[max(0, -tx) : h - max(0, tx), max(0, -ty) : w - max(0, ty)] = src[
                    max(0, tx) : h - max(0, -tx), max(0, ty) : w - max(0, -ty)
                ]
                if torch.equal(out[k, 0].detach(), ref):
                    matches.append((tx, ty))
        assert len(matches) == 1, f"sample {k} is not a zero-padded shift of its input"
        seen.add(matches[0])
    assert len(seen) > 5  # shifts differ across the batch
    out.sum().backward()
    assert set(x.grad.unique().tolist()) <= {0.0, 1.0}  # every kept pixel moved once


def test_cutout_zeroes_one_square_of_half_size():
    b, h, w = 64, 16, 16
    x = torch.ones(b, 3, h, w, requires_grad=True)
    out = diff_augment(x, "cutout", generator=gen(4))
    full = 0
    for k in range(b):
        zero = out[k] == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])  # same hole in every channel
        rows = zero[0].any(dim=1).nonzero().flatten()
        cols = zero[0].any(dim=0).nonzero().flatten()
        height, width = len(rows), len(cols)
        # one axis-aligned rectangle of the 8 x 8 square, clipped at the border to at least 4 x 4
        assert zero[0].sum().item() == height * width
        assert rows.max() - rows.min() + 1 == height and cols.max() - cols.min() + 1 == width
        assert 4 <= height <= 8 and 4 <= width <= 8
        full += height == 8 and width == 8
    assert full > 0
    out.sum().backward()
    assert torch.equal(x.grad, (out != 0).to(x.dtype))  # gradient is the keep-mask


# --- PacGAN ----------------------------------------------------------------------------


def test_pack_stacks_consecutive_samples_on_channels():
    b, c, m = 6, 2, 3
    x = torch.arange(b * c * 2 * 2, dtype=torch.float32).reshape(b, c, 2, 2)
    packed = pack(x, m)
    assert packed.shape == (b // m, m * c, 2, 2)
    for i in range(b // m):
        for j in range(m):
            assert torch.equal(packed[i, j * c : (j + 1) * c], x[i * m + j])
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    assert pack_labels(y, m).tolist() == [[0, 1, 2], [3, 4, 5]]
    assert pack(x, 1).shape == x.shape and pack_labels(y, 1).shape == (6, 1)


def test_pack_rejects_indivisible_batches():
    with pytest.raises(ValueError, match="divisible"):
        pack(torch.zeros(5, 3, 4, 4), 2)
    with pytest.raises(ValueError, match="divisible"):
        pack_labels(torch.zeros(5, dtype=torch.long), 2)
    with pytest.raises(ValueError):
        pack(torch.zeros(4, 3, 4, 4), 0)


# --- EMA -------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.bn = nn.BatchNorm1d(2)


def _fill(model: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(value)


def test_ema_copies_before_start_then_averages():
    model = Tiny()
    _fill(model, 1.0)
    ema = EMA(model, decay=0.9, start=2)
    assert all(not p.requires_grad for p in ema.model.parameters())
    _fill(model, 3.0)
    ema.update(model, step=1)  # before start: a copy
    assert all(torch.all(p == 3.0) for p in ema.model.parameters())
    _fill(model, 1.0)
    ema.update(model, step=2)  # 0.9 * 3 + 0.1 * 1 = 2.8
    _fill(model, 4.0)
    with torch.no_grad():
        model.bn.running_mean.fill_(7.0)
    ema.update(model, step=3)  # 0.9 * 2.8 + 0.1 * 4 = 2.92
    for p in ema.model.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 2.92))
    assert torch.all(ema.model.bn.running_mean == 7.0)  # buffers copied, not averaged
    assert model.fc.weight.requires_grad  # the source model is untouched


def test_ema_state_dict_round_trip():
    model = Tiny()
    ema = EMA(model, decay=0.99, start=5)
    _fill(model, 2.0)
    ema.update(model, step=10)
    buf = io.BytesIO()
    torch.save(ema.state_dict(), buf)
    buf.seek(0)
    other = EMA(Tiny(), decay=0.5)
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert other.decay == 0.99 and other.start == 5
    for a, b in zip(ema.model.state_dict().values(), other.model.state_dict().values()):
        assert torch.equal(a, b)


def test_ema_with_spectral_norm_parametrization():
    torch.manual_seed(0)
    model = nn.Sequential(spectral_norm(nn.Linear(3, 3)))
    ema = EMA(model, decay=0.5)
    original = model[0].parametrizations.weight.original
    start = original.detach().clone()
    with torch.no_grad():
        original.add_(1.0)
    model(torch.randn(2, 3))  # a training-mode forward updates the u/v power-iteration buffers
    ema.update(model, step=0)
    torch.testing.assert_close(ema.model[0].parametrizations.weight.original, start + 0.5)
    assert torch.equal(ema.model[0].parametrizations.weight[0]._u, model[0].parametrizations.weight[0]._u)
    assert torch.equal(ema.model[0].parametrizations.weight[0]._v, model[0].parametrizations.weight[0]._v)


def test_ema_refuses_another_architecture():
    ema = EMA(Tiny(), decay=0.9)
    with pytest.raises(ValueError, match="differ"):
        ema.update(nn.Linear(2, 2), step=0)
    with pytest.raises(ValueError):
        EMA(Tiny(), decay=1.0)


class TinyNet(Tiny):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(x))


def test_standing_stats_are_the_copys_own_batch_statistics():
    """The live model's BatchNorm statistics are copied on update; standing_stats replaces them by the
    mean and variance of the averaged weights' own activations on the draws, and leaves the module as it was."""
    torch.manual_seed(0)
    model = TinyNet()
    ema = EMA(model, decay=0.5)
    _fill(model, 2.0)
    with torch.no_grad():
        model.bn.running_mean.fill_(7.0)
    ema.update(model, step=0)
    assert torch.all(ema.model.bn.running_mean == 7.0) and not ema.stats_fresh
    g = torch.Generator().manual_seed(1)
    draws = [torch.randn(32, 2, generator=g) for _ in range(4)]
    it = iter(draws)
    ema.model.eval()  # as sampling holds it
    assert ema.standing_stats(lambda: (next(it),), batches=4)
    acts = torch.cat([ema.model.fc(x) for x in draws]).detach()
    torch.testing.assert_close(ema.model.bn.running_mean, acts.mean(0))
    # a plain average of the per-batch unbiased variances (momentum=None), as BigGAN's accumulation
    torch.testing.assert_close(ema.model.bn.running_var, torch.stack([ema.model.fc(x).detach().var(0) for x in draws]).mean(0))
    assert ema.model.bn.momentum == 0.1 and "forward" not in vars(ema.model.bn) and not ema.model.training
    assert ema.standing_stats(lambda: pytest.fail("ran twice without an update"))  # once per update
    ema.update(model, step=1)
    assert torch.all(ema.model.bn.running_mean == 7.0) and not ema.stats_fresh
    assert not EMA(nn.Linear(2, 2), decay=0.5).standing_stats(lambda: pytest.fail("no BatchNorm, nothing to run"))
