"""The model zoo: shapes at every size, conditioning, spectral norm, attention, BigGAN's z, parameter counts."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from augmentgan.errors import AugmentganWarning, ConfigError
from augmentgan.gan.config import ModelConfig
from augmentgan.gan.layers import SelfAttention, raw_weight
from augmentgan.gan.models import (
    IMG_SIZES,
    MODELS,
    attention_sizes,
    build_discriminator,
    build_generator,
)

ARCHS = sorted(MODELS)
K = 3  # classes in the small tests


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and OpenMP spinning on a shared 2-core
    machine made this module over 10x slower; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(arch: str, **kw) -> ModelConfig:
    """Tiny widths; spectral norm in G for sagan/biggan as their presets do."""
    fields = dict(arch=arch, g_ch=8, d_ch=8, z_dim=32, embed_dim=16, g_sn=arch in ("sagan", "biggan"))
    fields.update(kw)
    return ModelConfig(**fields)


def build(cfg: ModelConfig, img_size: int = 32, channels: int = 3, **d_kw):
    torch.manual_seed(0)
    G = build_generator(cfg, img_size=img_size, channels=channels, num_classes=K)
    D = build_discriminator(cfg, img_size=img_size, channels=channels, num_classes=K, **d_kw)
    return G, D


def sn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]


# --- every model at every size and channel count -------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("img_size", IMG_SIZES)
@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_range_and_finiteness(arch, img_size, channels):
    cfg = tiny(arch)
    G, D = build(cfg, img_size, channels)
    assert (G.z_dim, G.num_classes) == (cfg.z_dim, K)
    z, y = torch.randn(2, cfg.z_dim), torch.tensor([0, K - 1])
    x = G(z, y)
    assert x.shape == (2, channels, img_size, img_size)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0
    logits = D(x, y)
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    G.eval()
    assert torch.equal(G(z, y), G(z, y))  # deterministic forward


@pytest.mark.parametrize("arch", ARCHS)
def test_class_input_changes_generator_output(arch):
    G, _ = build(tiny(arch))
    G.eval()
    z = torch.randn(2, G.z_dim)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1]))
    assert (a - b).abs().mean() > 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_projection_term_is_the_only_class_path(arch):
    _, D = build(tiny(arch, d_sn=False))
    D.eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    ys = [torch.full((2,), c) for c in range(K)]
    assert not torch.allclose(D(x, ys[0]), D(x, ys[1]), atol=1e-5)
    with torch.no_grad():
        D.embed.weight.zero_()
    base = D(x, ys[0])
    for y in ys[1:]:
        assert torch.allclose(D(x, y), base)


@pytest.mark.parametrize("arch", ARCHS)
def test_projection_matches_formula_with_spectral_norm(arch):
    """D(x, y) = psi(phi(x)) + <embed(y), sum_hw phi(x)>; with pac = 2 the two embeddings are averaged."""
    _, D = build(tiny(arch, d_sn=True), pac=2)
    D.eval()
    x = torch.rand(2, 6, 32, 32) * 2 - 1
    h = D.features(x)
    pooled, psi = h.sum(dim=(2, 3)), D.output(h)
    E = D.embed.weight  # spectrally normalised embedding
    y = torch.tensor([[0, 1], [2, 2]])
    expected = psi + (((E[y[:, 0]] + E[y[:, 1]]) / 2) * pooled).sum(1)
    assert torch.allclose(D(x, y), expected, atol=1e-4)
    assert torch.allclose(D(x, y), D(x, y.flip(1)), atol=1e-5)  # order inside a pack does not matter
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        D(x, torch.tensor([0, 1]))


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_label_channels_conditioning(arch):
    cfg = tiny(arch, d_cond="channels")
    _, D = build(cfg, pac=2)
    assert D.embed is None
    assert D.in_channels == 3 * 2 + K * 2  # pac label maps on top of the pac images
    D.eval()
    x = torch.rand(2, 6, 32, 32)
    assert not torch.allclose(D(x, torch.tensor([[0, 0], [0, 0]])), D(x, torch.tensor([[0, 1], [0, 1]])), atol=1e-6)


# --- normalisation and spectral norm -------------------------------------------------------------


def _mixes_samples(D: nn.Module, channels: int = 3) -> bool:
    """Does sample 0's logit depend on the other samples of the batch (training mode)?"""
    D.train()
    for m in sn_modules(D):  # freeze the power iteration so that the two calls use the same weights
        m.parametrizations.weight[0].eval()
    x = torch.rand(4, channels, 32, 32)
    y = torch.tensor([0, 1, 2, 0])
    x2 = x.clone()
    x2[1:] = torch.rand(3, channels, 32, 32)
    return not torch.allclose(D(x, y)[0], D(x2, y)[0], atol=1e-5)


def test_dcgan_critic_without_batchnorm_for_per_sample_penalties():
    cfg = tiny("dcgan", d_sn=False)
    _, D_bn = build(cfg, per_sample_grad=False)
    _, D_gp = build(cfg, per_sample_grad=True)
    assert any(isinstance(m, nn.BatchNorm2d) for m in D_bn.modules())
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in D_gp.modules())
    assert _mixes_samples(D_bn)
    assert not _mixes_samples(D_gp)
    _, D_ln = build(tiny("dcgan", d_norm="layer"), per_sample_grad=True)
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in D_ln.modules())
    assert not _mixes_samples(D_ln)
    with pytest.warns(AugmentganWarning, match="d_norm"):
        build(tiny("dcgan", d_norm="batch"), per_sample_grad=True)


@pytest.mark.parametrize("arch", ["resnet", "sagan", "biggan"])
def test_residual_discriminators_are_per_sample(arch):
    _, D = build(tiny(arch))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
    assert not _mixes_samples(D)


@pytest.mark.parametrize("arch", ARCHS)
def test_spectral_norm_in_models(arch):
    G, D = build(tiny(arch, g_sn=True, d_sn=True))
    for model, make_input in ((G, lambda: (torch.randn(4, G.z_dim), torch.arange(4) % K)),
                              (D, lambda: (torch.rand(4, 3, 32, 32), torch.arange(4) % K))):
        layers = sn_modules(model)
        convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
        assert layers and all(parametrize.is_parametrized(m) for m in convs)
        if model is D:  # and the projection embedding (G's class embeddings stay plain, as in BigGAN)
            assert D.embed in layers
        with torch.no_grad():
            for m in layers:
                raw_weight(m).mul_(2.5)
        model.train()
        for _ in range(40):
            model(*make_input())
        for m in layers:
            w = m.weight.detach().movedim(1 if isinstance(m, nn.ConvTranspose2d) else 0, 0).flatten(1)
            assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=5e-2), m


@pytest.mark.parametrize("arch", ARCHS)
def test_sn_flags_are_respected(arch):
    G, D = build(tiny(arch, g_sn=False, d_sn=False))
    assert not sn_modules(G) and not sn_modules(D)


# --- attention --------------------------------------------------------------------------------


def _attention_input_sizes(model: nn.Module, *inputs) -> list[int]:
    seen: list[int] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[-1]))
             for m in model.modules() if isinstance(m, SelfAttention)]
    model(*inputs)
    for hook in hooks:
        hook.remove()
    return seen


@pytest.mark.parametrize("arch", ARCHS)
def test_attention_at_requested_feature_map_size(arch):
    for img_size in (16, 64):
        for attn in attention_sizes(arch, img_size):
            G, D = build(tiny(arch, attn_res=attn), img_size)
            y = torch.tensor([0, 1])
            x = G(torch.randn(2, G.z_dim), y)
            assert _attention_input_sizes(G, torch.randn(2, G.z_dim), y) == [attn]
            assert _attention_input_sizes(D, x, y) == [attn]


def test_attention_defaults_and_errors():
    for img_size, default in ((16, 8), (32, 16), (64, 32), (128, 32)):
        G, _ = build(tiny("sagan"), img_size)
        y = torch.tensor([0, 1])
        assert _attention_input_sizes(G, torch.randn(2, G.z_dim), y) == [default]
    G, D = build(tiny("biggan"))
    assert not any(isinstance(m, SelfAttention) for m in [*G.modules(), *D.modules()])
    with pytest.raises(ConfigError, match=r"attn_res=32 .*\[8, 16\]"):
        build(tiny("resnet", attn_res=32))


# --- BigGAN specifics -------------------------------------------------------------------------


def test_biggan_hierarchical_z_feeds_every_block():
    G, _ = build(tiny("biggan", z_dim=20))  # 32x32: 3 blocks -> 4 chunks of 5
    G.eval()
    y = torch.tensor([0, 1])
    z = torch.randn(2, 20)
    assert G.linear.in_features == 5
    base = G(z, y)
    for chunk in range(4):
        z2 = z.clone()
        z2[:, chunk * 5 : (chunk + 1) * 5] += 1.0
        assert not torch.allclose(G(z2, y), base, atol=1e-5), chunk
    # truncation: small-norm and zero z are valid inputs
    assert torch.isfinite(G(torch.zeros(2, 20), y)).all()
    assert torch.isfinite(G(z.clamp(-0.5, 0.5), y)).all()


def test_biggan_uneven_z_split_and_errors():
    G, _ = build(tiny("biggan", z_dim=22))  # 4 chunks: 6, 6, 5, 5
    assert G.linear.in_features == 6
    assert [b.bn1.gain.in_features - 16 for b in G.blocks] == [6, 5, 5]
    assert G(torch.randn(2, 22), torch.tensor([0, 1])).shape == (2, 3, 32, 32)
    flat, _ = build(tiny("biggan", z_dim=3, hier=False))
    assert flat.linear.in_features == 3
    with pytest.raises(ConfigError, match="z_dim"):
        build(tiny("biggan", z_dim=3))


def test_biggan_orthogonal_init():
    G, _ = build(tiny("biggan"))
    w = raw_weight(G.blocks[0].conv1).detach().flatten(1)  # 32 x 288: orthonormal rows
    assert torch.allclose(w @ w.T, torch.eye(w.shape[0]), atol=1e-4)


# --- init, reproducibility, checkpoints, precision -------------------------------------------


def test_init_uses_global_rng_only():
    cfg = tiny("biggan")
    a, _ = build(cfg)
    b, _ = build(cfg)
    torch.manual_seed(1)
    c = build_generator(cfg, img_size=32, channels=3, num_classes=K)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_dcgan_normal_init():
    _, D = build(ModelConfig(arch="dcgan", g_ch=16, d_ch=16, d_sn=False))
    w = D.net[2].weight  # second conv (the first carries a bias and sees the image)
    assert w.std().item() == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_roundtrip_and_deepcopy(arch):
    G, D = build(tiny(arch, d_sn=True))
    G.eval(), D.eval()
    buf = io.BytesIO()
    torch.save({"G": G.state_dict(), "D": D.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    torch.manual_seed(123)
    G2 = build_generator(tiny(arch, d_sn=True), img_size=32, channels=3, num_classes=K).eval()
    D2 = build_discriminator(tiny(arch, d_sn=True), img_size=32, channels=3, num_classes=K).eval()
    G2.load_state_dict(state["G"])
    D2.load_state_dict(state["D"])
    z, y = torch.randn(2, G.z_dim), torch.tensor([0, 2])
    assert torch.equal(G(z, y), G2(z, y))
    x = G(z, y)
    assert torch.equal(D(x, y), D2(x, y))
    G3 = copy.deepcopy(G)
    assert torch.equal(G(z, y), G3(z, y))


@pytest.mark.parametrize("arch", ["dcgan", "sagan"])
def test_double_backward_for_gradient_penalties(arch):
    _, D = build(tiny(arch, attn_res=16), per_sample_grad=True)
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    (grad,) = torch.autograd.grad(D(x, torch.tensor([0, 1])).sum(), x, create_graph=True)
    penalty = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    penalty.backward()
    assert all(p.grad is not None for p in D.parameters() if p.requires_grad and p.dim() > 1)


def test_bf16_autocast_and_channels_last():
    G, D = build(tiny("biggan", attn_res=16))
    G = G.to(memory_format=torch.channels_last)
    D = D.to(memory_format=torch.channels_last)
    z, y = torch.randn(2, G.z_dim), torch.tensor([0, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x = G(z, y)
        logits = D(x.contiguous(memory_format=torch.channels_last), y)
    assert x.shape == (2, 3, 32, 32) and torch.isfinite(x).all()
    assert logits.shape == (2,) and torch.isfinite(logits).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("arch", ARCHS)
def test_cuda_forward(arch):
    G, D = build(tiny(arch, attn_res=16))
    G, D = G.cuda(), D.cuda()
    y = torch.tensor([0, 1], device="cuda")
    logits = D(G(torch.randn(2, G.z_dim, device="cuda"), y), y)
    assert logits.device.type == "cuda" and torch.isfinite(logits).all()


def test_unsupported_data_is_a_config_error():
    cfg = tiny("resnet")
    with pytest.raises(ConfigError, match="48"):
        build_generator(cfg, img_size=48, channels=3, num_classes=K)
    with pytest.raises(ConfigError, match="channels"):
        build_discriminator(cfg, img_size=32, channels=4, num_classes=K)


# --- parameter counts at 32x32 against the published models ----------------------------------

# Each reference was counted layer by layer from the cited code (10 classes, 3 channels):
#  - resnet: SNGAN / cGAN-PD CIFAR-10 (Miyato et al. 2018 appendix B.4; kwotsin/mimicry
#    torch_mimicry/nets/cgan_pd/cgan_pd_32.py, ngf=256, ndf=128): G 4,304,387, D 1,055,105.
#  - biggan: ajbrock/BigGAN-PyTorch BigGAN.py G_arch/D_arch[32] at ch=64, as in its CIFAR script
#    (no shared embedding, no hier): G 4,304,387, D 4,207,361. Ours uses the shared embedding and
#    hierarchical z (the BigGAN paper's G), whose cBN linears replace the per-class tables: +1.6%.
#  - dcgan: no conditional 32x32 DCGAN count is published; the reference is Radford et al.'s
#    architecture at the same base width, the PyTorch DCGAN example (pytorch/examples dcgan/main.py,
#    ngf=ndf=64, 64x64): G 3,576,704, D 2,765,568. At 32x32 D drops its 64-channel stage (-4%) and
#    G's first layer also reads the 128-d class embedding (+1.05M, about +30%).
REFERENCES = {
    # arch: (G reference, G range as ratios, D reference, D range as ratios)
    "resnet": (4_304_387, (0.95, 1.05), 1_055_105, (0.95, 1.05)),
    "biggan": (4_304_387, (0.95, 1.05), 4_207_361, (0.95, 1.05)),
    "dcgan": (3_576_704, (1.15, 1.45), 2_765_568, (0.90, 1.00)),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", sorted(REFERENCES))
def test_parameter_counts_at_32x32_match_published_models(arch, record_property):
    cfg = ModelConfig(arch=arch, g_sn=arch == "biggan", d_sn=arch != "dcgan")  # default widths
    G = build_generator(cfg, img_size=32, channels=3, num_classes=10)
    D = build_discriminator(cfg, img_size=32, channels=3, num_classes=10)
    g_ref, (g_lo, g_hi), d_ref, (d_lo, d_hi) = REFERENCES[arch]
    g, d = n_params(G), n_params(D)
    print(f"{arch:7s} 32x32: G {g:>10,d} ({g / g_ref:.3f} x {g_ref:,d})  D {d:>10,d} ({d / d_ref:.3f} x {d_ref:,d})")
    record_property(f"{arch}_G_params", g)
    record_property(f"{arch}_D_params", d)
    assert g_lo * g_ref <= g <= g_hi * g_ref
    assert d_lo * d_ref <= d <= d_hi * d_ref


def test_dcgan_at_64x64_is_the_radford_architecture():
    """At 64x64 the DCGAN D is the PyTorch example's plus the projection embedding; G adds the label input."""
    cfg = ModelConfig(arch="dcgan", z_dim=100, embed_dim=128, d_sn=False)
    G = build_generator(cfg, img_size=64, channels=3, num_classes=10)
    D = build_discriminator(cfg, img_size=64, channels=3, num_classes=10)
    label_input = 10 * 128 + 128 * 512 * 4 * 4  # embedding table + its rows in the first layer
    assert n_params(G) == pytest.approx(3_576_704 + label_input, abs=10)  # + output bias
    assert n_params(D) == pytest.approx(2_765_568 + 10 * 512, abs=100)  # + first/last conv biases
