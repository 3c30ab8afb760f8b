"""The EMA generator's BatchNorm statistics ("standing statistics", Brock et al. 2019).

The EMA copy averages G's weights but used to take G's BatchNorm running statistics as they were:
statistics of the live G's activations, applied in eval mode to the averaged weights' activations.
On mnist-lt (800 steps, small-data's GAN) that left 0.12 of class 0's EMA samples of their class
(benchmarks/RESULTS.md, "The EMA generator's BatchNorm statistics"). The copy now re-estimates them
from its own samples before it samples and before it is saved.
"""

from __future__ import annotations

import torch

from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import assert_resumes_bit_identically, bars, tiny


def _gan(**overrides) -> ConditionalGAN:
    cfg = tiny("dcgan", tricks__ema=True, tricks__ema_decay=0.9, **overrides)
    return ConditionalGAN(cfg, img_size=16, channels=1, num_classes=3, class_counts=[20, 5, 2], seed=1)


def _train(gan: ConditionalGAN, steps: int) -> None:
    data = bars((20, 5, 2), size=16)
    x = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(data.labels)
    batch = torch.arange(len(y)) % len(y)
    for _ in range(steps):
        gan.train_iteration(lambda: (x[batch], y[batch]))


def _eval_vs_batch(G: torch.nn.Module, z: torch.Tensor, y: torch.Tensor) -> float:
    """How far eval mode (running statistics) is from normalising the batch by its own statistics."""
    with torch.no_grad():
        G.eval()
        held = G(z, y)
        G.train()
        own = G(z, y)
        G.eval()
    return float((held - own).abs().mean())


def test_ema_samples_are_normalised_with_the_averaged_weights_own_statistics():
    gan = _gan()
    _train(gan, 30)
    g = torch.Generator().manual_seed(5)
    z, y = torch.randn(1024, gan.G.z_dim, generator=g), torch.randint(0, 3, (1024,), generator=g)
    stale = _eval_vs_batch(gan.ema.model, z, y)  # the live G's statistics, as copied by the last update
    G = gan.sampling_generator  # what sampling, the monitor and the sample grids use
    fresh = _eval_vs_batch(G, z, y)
    assert fresh < 0.01 < stale, (fresh, stale)
    # the live G's own statistics fit the live G: the copy's mismatch is the averaging's, not BatchNorm's
    assert _eval_vs_batch(gan.G, z, y) < stale


def test_the_checkpoint_holds_the_standing_statistics_and_training_is_unchanged(tmp_path):
    data = bars((20, 5, 2), size=16)
    cfg = tiny("dcgan", tricks__ema=True, tricks__ema_decay=0.9)
    result = train(data, cfg, TrainConfig(steps=12, batch=16, seed=0, sample_every=0, ckpt_every=4, log_every=4), tmp_path / "run")
    G, info = load_generator(result.checkpoint, ema=True)
    assert info.ema
    g = torch.Generator().manual_seed(5)
    z, y = torch.randn(1024, G.z_dim, generator=g), torch.randint(0, 3, (1024,), generator=g)
    assert _eval_vs_batch(G, z, y) < 0.01
    # saving (step 4, 8) and sampling grids refresh the copy's statistics from a stream of their own:
    # a run that never saves mid-way trains bit-identically
    other = train(data, cfg, TrainConfig(steps=12, batch=16, seed=0, sample_every=0, ckpt_every=12, log_every=4), tmp_path / "other")
    a, b = (torch.load(r.checkpoint, weights_only=True)["state"] for r in (result, other))
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert all(torch.equal(a["G_ema"]["model"][k], b["G_ema"]["model"][k]) for k in a["G_ema"]["model"])


def test_resume_with_ema_stays_bit_identical():
    x = torch.rand(12, 1, 16, 16) * 2 - 1
    y = torch.tensor([0, 1, 2] * 4)
    assert_resumes_bit_identically(_gan, x, y)
