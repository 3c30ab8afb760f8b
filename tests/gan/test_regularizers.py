"""Penalties and weight regularizers on critics whose gradients are known in closed form."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from augmentgan.gan.regularizers import (
    D_PENALTIES,
    clip_weights_,
    dragan_penalty,
    gradient_penalty,
    orthogonal_reg,
    r1_penalty,
)

B, C, H, W = 4, 2, 3, 3
DIM = C * H * W


class LinearCritic(nn.Module):
    """D(x, y) = <w_y, x> + b: gradient w_y everywhere, whatever the channel count."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(weights.clone())  # [num_classes, DIM]
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) * self.w[y]).sum(1) + self.b


class HalfSquaredNorm(nn.Module):
    """D(x) = 0.5 ||x||^2: gradient x."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * x.flatten(1).pow(2).sum(1)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def _batch(seed: int = 0, shape=(B, C, H, W)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


def test_registry():
    assert D_PENALTIES == {"gp": gradient_penalty, "dragan": dragan_penalty, "r1": r1_penalty}


def test_gp_is_zero_for_unit_gradient_critic():
    w = _unit(torch.randn(1, DIM, generator=torch.Generator().manual_seed(1)))
    real, fake = _batch()
    gp = gradient_penalty(LinearCritic(w), real, fake, torch.zeros(B, dtype=torch.long))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


def test_gp_of_linear_critic_is_norm_minus_one_squared_and_trains_d():
    w = 3.0 * _unit(torch.randn(1, DIM, generator=torch.Generator().manual_seed(2)))
    D = LinearCritic(w)
    real, fake = _batch()
    gp = gradient_penalty(D, real, fake, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((3.0 - 1.0) ** 2, rel=1e-5)
    gp.backward()  # create_graph=True: the penalty has a gradient w.r.t. D's weights
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    torch.testing.assert_close(D.w.grad, 2 * (3.0 - 1.0) * w / 3.0)


def test_gp_uses_each_samples_label():
    w = torch.stack([2.0 * _unit(torch.ones(DIM)), 0.5 * _unit(torch.arange(DIM, dtype=torch.float))])
    y = torch.tensor([0, 1, 1, 1])
    real, fake = _batch()
    gp = gradient_penalty(LinearCritic(w), real, fake, y)
    assert gp.item() == pytest.approx(((2 - 1) ** 2 + 3 * (0.5 - 1) ** 2) / 4, rel=1e-5)


def test_gp_one_epsilon_per_sample_from_the_generator():
    real, fake = _batch(3)
    gp = gradient_penalty(HalfSquaredNorm(), real, fake, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(7))
    eps = torch.rand(B, generator=torch.Generator().manual_seed(7)).view(B, 1, 1, 1)
    x_hat = eps * real + (1 - eps) * fake  # gradient of 0.5||x||^2 at x_hat is x_hat
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expected.item(), rel=1e-5)
    again = gradient_penalty(HalfSquaredNorm(), real, fake, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(7))
    assert again.item() == gp.item()


def test_gp_on_packed_inputs():
    # PacGAN m=2: D sees [B/2, 2C, H, W] and labels [B/2, 2]; the penalty must not care.
    class PackedCritic(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(2.0 * _unit(torch.ones(2 * DIM)))

        def forward(self, x, y):
            assert x.shape[1] == 2 * C and y.shape == (x.shape[0], 2)
            return x.flatten(1) @ self.w

    real, fake = _batch(shape=(B // 2, 2 * C, H, W))
    gp = gradient_penalty(PackedCritic(), real, fake, torch.zeros(B // 2, 2, dtype=torch.long))
    assert gp.item() == pytest.approx(1.0, rel=1e-5)


def test_gp_rejects_unpaired_batches():
    real, fake = _batch()
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(LinearCritic(torch.ones(1, DIM)), real, fake[:2], torch.zeros(B, dtype=torch.long))


def test_dragan_linear_critic_regardless_of_perturbation():
    w = 2.5 * _unit(torch.randn(1, DIM, generator=torch.Generator().manual_seed(4)))
    D = LinearCritic(w)
    real, _ = _batch()
    for seed in range(3):
        pen = dragan_penalty(D, real, torch.zeros(B, dtype=torch.long), generator=torch.Generator().manual_seed(seed))
        assert pen.item() == pytest.approx(1.5**2, rel=1e-5)
    unit = dragan_penalty(LinearCritic(_unit(w)), real, torch.zeros(B, dtype=torch.long))
    assert unit.item() == pytest.approx(0.0, abs=1e-10)


def test_dragan_perturbs_reals_by_half_std_times_uniform():
    real, _ = _batch(5)
    gen = torch.Generator().manual_seed(11)
    pen = dragan_penalty(HalfSquaredNorm(), real, torch.zeros(B, dtype=torch.long), generator=gen)
    # Draws, in order: one U[0,1) per element for x_p, then one alpha per sample.
    ref = torch.Generator().manual_seed(11)
    noise = torch.rand(real.shape, generator=ref)
    alpha = torch.rand(B, generator=ref).view(B, 1, 1, 1)
    x = real + alpha * (0.5 * real.std() * noise)
    expected = ((x.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert pen.item() == pytest.approx(expected.item(), rel=1e-5)


def test_r1_linear_and_quadratic_critics():
    w = 3.0 * _unit(torch.randn(1, DIM, generator=torch.Generator().manual_seed(6)))
    D = LinearCritic(w)
    real, _ = _batch()
    r1 = r1_penalty(D, real, torch.zeros(B, dtype=torch.long))
    assert r1.item() == pytest.approx(9.0, rel=1e-5)
    r1.backward()
    torch.testing.assert_close(D.w.grad, 2 * w)  # d/dw ||w||^2
    quad = r1_penalty(HalfSquaredNorm(), real, torch.zeros(B, dtype=torch.long))
    assert quad.item() == pytest.approx(real.flatten(1).pow(2).sum(1).mean().item(), rel=1e-5)


def test_penalties_do_not_touch_the_inputs_graph():
    real, fake = _batch()
    real.requires_grad_(True)
    fake.requires_grad_(True)
    D = LinearCritic(torch.ones(1, DIM))
    y = torch.zeros(B, dtype=torch.long)
    (gradient_penalty(D, real, fake, y) + dragan_penalty(D, real, y) + r1_penalty(D, real, y)).backward()
    assert real.grad is None and fake.grad is None


def test_clip_weights_keeps_every_weight_in_range():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
    sn = spectral_norm(nn.Linear(5, 5))
    D.append(sn)
    with torch.no_grad():
        for p in D.parameters():
            p.mul_(100.0)
        D[0].bias[0] = 0.004  # inside the range: unchanged
    clip_weights_(D, 0.01)
    for p in D.parameters():
        assert p.abs().max().item() <= 0.01
    assert D[0].bias[0].item() == pytest.approx(0.004)
    assert sn.parametrizations.weight.original.abs().max().item() == pytest.approx(0.01)
    with pytest.raises(ValueError):
        clip_weights_(D, 0.0)


class _Net(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.fc = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(weight)
            self.fc.bias.normal_()  # 1-D: ignored


def test_orthogonal_reg_zero_for_orthogonal_weights():
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=torch.Generator().manual_seed(0)))
    assert orthogonal_reg(_Net(q)).item() == pytest.approx(0.0, abs=1e-10)
    wide = q[:3]  # orthonormal rows, 3 x 6
    assert orthogonal_reg(_Net(wide)).item() == pytest.approx(0.0, abs=1e-10)
    conv = nn.Conv2d(2, 4, 3)  # weight (4, 2, 3, 3) -> (4, 18)
    rows, _ = torch.linalg.qr(torch.randn(18, 4, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        conv.weight.copy_(rows.t().reshape(4, 2, 3, 3))
    assert orthogonal_reg(conv).item() == pytest.approx(0.0, abs=1e-10)
    # the off-diagonal form ignores row norms: scaled orthogonal rows are still penalty-free
    assert orthogonal_reg(_Net(5.0 * q)).item() == pytest.approx(0.0, abs=1e-6)


def test_orthogonal_reg_known_values_and_gradient():
    net = _Net(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # W W^T = [[5, 11], [11, 25]] -> off-diagonal squares 2 * 11^2
    reg = orthogonal_reg(net)
    assert reg.item() == pytest.approx(242.0)
    reg.backward()
    # gradient 4 (W W^T * (1 - I)) W = 4 [[0, 11], [11, 0]] [[1, 2], [3, 4]]
    torch.testing.assert_close(net.fc.weight.grad, torch.tensor([[132.0, 176.0], [44.0, 88.0]]))
    # more rows than columns: W W^T = [[1, 0, 1], [0, 1, 1], [1, 1, 2]] -> four off-diagonal ones
    tall = _Net(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    assert orthogonal_reg(tall).item() == pytest.approx(4.0)


def test_orthogonal_reg_skips_embeddings_and_named_exclusions():
    class G(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Embedding(10, 4)  # BigGAN's shared class embedding: never penalised
            self.body = _Net(torch.eye(4))
            self.extra = _Net(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))

    g = G()
    assert orthogonal_reg(g).item() == pytest.approx(242.0)
    assert orthogonal_reg(g, exclude=["extra"]).item() == pytest.approx(0.0)
    assert orthogonal_reg(g, exclude=lambda name, p: name.startswith("extra.")).item() == pytest.approx(0.0)
    assert orthogonal_reg(g, exclude=["ext"]).item() == pytest.approx(242.0)  # prefixes are whole names


def test_orthogonal_reg_uses_raw_weight_under_spectral_norm():
    net = _Net(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    spectral_norm(net.fc)
    assert orthogonal_reg(net).item() == pytest.approx(242.0)
    assert orthogonal_reg(nn.Sequential(nn.Embedding(3, 3))).item() == 0.0
