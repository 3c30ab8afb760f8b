"""Layers of the model zoo: spectral-norm factories, init, conditional BN, self-attention, residual blocks."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from augmentgan.gan.layers import (
    ConditionalBatchNorm2d,
    DBlock,
    GBlock,
    SelfAttention,
    conv_factory,
    embedding_factory,
    linear_factory,
    raw_weight,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP spinning on a shared 2-core
    machine made this module over 10x slower; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def out_dim(module: nn.Module) -> int:
    """The output-channel dimension of the weight (1 for transposed convs)."""
    return 1 if isinstance(module, nn.ConvTranspose2d) else 0


def sigma_max(module: nn.Module) -> float:
    """Largest singular value of the weight the module computes with, reshaped to (out, -1)."""
    mat = module.weight.detach().movedim(out_dim(module), 0).flatten(1)
    return torch.linalg.matrix_norm(mat, ord=2).item()


SN_LAYERS = {
    "conv": (lambda: conv_factory(True, "xavier")(6, 16, 3, padding=1), lambda: torch.randn(2, 6, 8, 8)),
    "conv_transposed": (
        lambda: conv_factory(True, "normal", transposed=True)(16, 6, 4, 2, 1),
        lambda: torch.randn(2, 16, 4, 4),
    ),
    "linear": (lambda: linear_factory(True, "ortho")(20, 12), lambda: torch.randn(2, 20)),
    "embedding": (lambda: embedding_factory(True, "xavier")(10, 32), lambda: torch.randint(0, 10, (4,))),
}


@pytest.mark.parametrize("kind", sorted(SN_LAYERS))
def test_spectral_norm_factory_normalises_largest_singular_value(kind):
    torch.manual_seed(0)
    make, make_input = SN_LAYERS[kind]
    layer = make()
    assert parametrize.is_parametrized(layer, "weight")
    dim = out_dim(layer)
    with torch.no_grad():  # move the weight away from the stored singular vectors, then to sigma = 3
        w = raw_weight(layer)
        w.add_(0.3 * torch.randn_like(w) * w.std())
        w.mul_(3.0 / torch.linalg.matrix_norm(w.movedim(dim, 0).flatten(1), ord=2))
    layer.train()
    for _ in range(40):  # power iterations happen once per training forward
        layer(make_input())
    layer.eval()
    assert sigma_max(layer) == pytest.approx(1.0, abs=3e-2)


@pytest.mark.parametrize("factory", [conv_factory, linear_factory, embedding_factory])
def test_factory_without_sn_has_no_parametrization(factory):
    layer = factory(False, "default")(8, 4) if factory is not conv_factory else factory(False)(8, 4, 3)
    assert not parametrize.is_parametrized(layer)
    assert raw_weight(layer) is layer.weight


def test_init_schemes():
    torch.manual_seed(0)
    normal = conv_factory(False, "normal")(64, 128, 4)
    assert normal.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(normal.weight.mean().item()) < 2e-3
    ortho = linear_factory(True, "ortho")(256, 64)  # weight 64 x 256: orthonormal rows
    w = raw_weight(ortho).detach()
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-4)
    gain = math.sqrt(2.0)
    xavier = conv_factory(False, "xavier")(32, 32, 3, gain=gain)
    bound = gain * math.sqrt(6.0 / (32 * 9 + 32 * 9))
    assert xavier.weight.abs().max().item() <= bound
    assert xavier.weight.abs().max().item() > 0.9 * bound


def test_conditional_bn_class_mode_matches_formula():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(5, num_classes=3)
    with torch.no_grad():
        cbn.gain.weight.normal_()
        cbn.bias.weight.normal_()
    x = torch.randn(6, 5, 4, 4) * 3 + 1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    out = cbn.train()(x, y)
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    g = 1 + cbn.gain.weight[y][:, :, None, None]
    b = cbn.bias.weight[y][:, :, None, None]
    expected = (x - mean) / torch.sqrt(var + 1e-5) * g + b
    assert torch.allclose(out, expected, atol=1e-5)
    # eval mode uses the running statistics, not the batch
    cbn.eval()
    rm, rv = cbn.bn.running_mean[None, :, None, None], cbn.bn.running_var[None, :, None, None]
    assert torch.allclose(cbn(x, y), (x - rm) / torch.sqrt(rv + 1e-5) * g + b, atol=1e-5)


def test_conditional_bn_class_mode_starts_near_identity_but_class_dependent():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(8, num_classes=4).eval()
    x = torch.randn(1, 8, 4, 4)
    out = [cbn(x, torch.tensor([c])) for c in range(4)]
    assert torch.allclose(out[0], x / math.sqrt(1 + 1e-5), atol=0.2)  # gain ~ 1 + N(0, 0.02), bias 0
    assert not torch.allclose(out[0], out[1], atol=1e-4)


def test_conditional_bn_vector_mode_gain_is_one_plus_linear():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, cond_dim=6, linear=linear_factory(False, "ortho")).eval()
    x, c = torch.randn(3, 4, 2, 2), torch.randn(3, 6)
    gain = 1 + c @ cbn.gain.weight.T
    bias = c @ cbn.bias.weight.T
    assert cbn.gain.bias is None and cbn.bias.bias is None
    expected = x / math.sqrt(1 + 1e-5) * gain[:, :, None, None] + bias[:, :, None, None]
    assert torch.allclose(cbn(x, c), expected, atol=1e-5)
    with pytest.raises(ValueError):
        ConditionalBatchNorm2d(4, num_classes=3, cond_dim=6)


def test_self_attention_identity_at_init_and_matches_reference():
    torch.manual_seed(0)
    attn = SelfAttention(16)
    x = torch.randn(2, 16, 8, 8)
    assert torch.equal(attn(x), x)  # gamma starts at 0
    assert (attn.theta.out_channels, attn.phi.out_channels, attn.g.out_channels) == (2, 2, 8)
    with torch.no_grad():
        attn.gamma.fill_(0.7)
    # reference: every query position attends over the 2x2-max-pooled key/value positions
    theta = torch.einsum("oc,bchw->bohw", attn.theta.weight[:, :, 0, 0], x).flatten(2)
    phi = F.max_pool2d(torch.einsum("oc,bchw->bohw", attn.phi.weight[:, :, 0, 0], x), 2).flatten(2)
    g = F.max_pool2d(torch.einsum("oc,bchw->bohw", attn.g.weight[:, :, 0, 0], x), 2).flatten(2)
    scores = torch.einsum("bkq,bkp->bqp", theta, phi)  # [B, 64 queries, 16 pooled keys]
    weights = scores.softmax(dim=-1)
    mixed = torch.einsum("bqp,bvp->bvq", weights, g).reshape(2, 8, 8, 8)
    expected = x + 0.7 * torch.einsum("ov,bvhw->bohw", attn.o.weight[:, :, 0, 0], mixed)
    assert torch.allclose(attn(x), expected, atol=1e-5)


def test_self_attention_mixes_positions():
    torch.manual_seed(0)
    attn = SelfAttention(16)
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    x = torch.randn(1, 16, 8, 8)
    x2 = x.clone()
    x2[..., 7, 7] += 5.0  # a change far away from position (0, 0)
    assert not torch.allclose(attn(x)[..., 0, 0], attn(x2)[..., 0, 0], atol=1e-4)


def _bn(num_classes):
    return functools.partial(ConditionalBatchNorm2d, num_classes=num_classes)


def test_gblock_upsamples_and_learns_shortcut_only_when_needed():
    conv = conv_factory(False, "xavier")
    block = GBlock(8, 4, conv=conv, bn=_bn(3))
    out = block(torch.randn(2, 8, 4, 4), torch.tensor([0, 2]))
    assert out.shape == (2, 4, 8, 8)
    assert block.shortcut is not None
    same = GBlock(8, 8, conv=conv, bn=_bn(3), upsample=False)
    assert same.shortcut is None
    x = torch.randn(2, 8, 4, 4)
    with torch.no_grad():  # zero residual branch: the block is the identity shortcut
        same.conv2.weight.zero_()
        same.conv2.bias.zero_()
    assert torch.allclose(same(x, torch.tensor([0, 1])), x)


def test_dblock_widths_and_shortcut():
    conv = conv_factory(True, "xavier")
    first = DBlock(3, 16, conv=conv, downsample=True, preactivation=False, wide=False)
    assert first.conv1.out_channels == 16  # SNGAN optimized block: hidden = out
    skinny = DBlock(16, 32, conv=conv, downsample=True, preactivation=True, wide=False)
    wide = DBlock(16, 32, conv=conv, downsample=True, preactivation=True, wide=True)
    assert (skinny.conv1.out_channels, wide.conv1.out_channels) == (16, 32)
    plain = DBlock(32, 32, conv=conv, downsample=False, preactivation=True)
    assert plain.shortcut is None
    x = torch.randn(2, 3, 16, 16)
    h = first(x)
    assert h.shape == (2, 16, 8, 8)
    assert wide(h).shape == (2, 32, 4, 4)
