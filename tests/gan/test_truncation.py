"""The truncated latent sampler: exact, deterministic, independent of how it is sliced."""

import pytest
import torch
from scipy import stats

from augmentgan.gan.truncation import BLOCK, class_latents, truncated_normal_


@pytest.mark.parametrize("threshold", [0.5, 1.0, 2.0])
def test_truncated_values_follow_scipy_truncnorm(threshold):
    gen = torch.Generator().manual_seed(0)
    z = truncated_normal_(torch.empty(20000), threshold, gen)
    assert z.abs().max() <= threshold
    ks = stats.kstest(z.numpy(), stats.truncnorm(-threshold, threshold).cdf)
    assert ks.pvalue > 0.01, ks
    # a plain normal clipped to [-T, T] would put mass at the edges and fail the same test
    clipped = torch.randn(20000, generator=torch.Generator().manual_seed(0)).clamp(-threshold, threshold)
    assert stats.kstest(clipped.numpy(), stats.truncnorm(-threshold, threshold).cdf).pvalue < 1e-6


def test_tiny_threshold_still_exact():
    z = truncated_normal_(torch.empty(3000), 0.04, torch.Generator().manual_seed(1))
    assert z.abs().max() <= 0.04
    # truncnorm at a small T is close to uniform on [-T, T]
    assert stats.kstest(z.numpy(), stats.truncnorm(-0.04, 0.04).cdf).pvalue > 0.01


def test_no_threshold_is_standard_normal():
    z = truncated_normal_(torch.empty(20000), None, torch.Generator().manual_seed(2))
    assert stats.kstest(z.numpy(), "norm").pvalue > 0.01
    with pytest.raises(ValueError):
        truncated_normal_(torch.empty(3), 0.0, torch.Generator())


def test_sample_i_of_class_c_does_not_depend_on_slicing():
    whole = class_latents(seed=7, class_index=3, start=0, count=2 * BLOCK + 50, z_dim=8, threshold=1.0)
    parts = torch.cat([class_latents(7, 3, s, n, 8, 1.0) for s, n in [(0, 100), (100, 300), (400, 2 * BLOCK + 50 - 400)]])
    assert torch.equal(whole, parts)
    assert torch.equal(class_latents(7, 3, BLOCK - 1, 2, 8, 1.0), whole[BLOCK - 1 : BLOCK + 1])
    assert class_latents(7, 3, 5, 0, 8).shape == (0, 8)


def test_streams_differ_by_seed_class_and_threshold():
    a = class_latents(0, 0, 0, 16, 4, 1.0)
    assert not torch.equal(a, class_latents(1, 0, 0, 16, 4, 1.0))
    assert not torch.equal(a, class_latents(0, 1, 0, 16, 4, 1.0))
    assert torch.equal(a, class_latents(0, 0, 0, 16, 4, 1.0))


def test_a_threshold_that_would_take_forever_to_draw_is_refused():
    from augmentgan.errors import ConfigError
    from augmentgan.generate.sampler import parse_threshold
    from augmentgan.gan.truncation import MIN_THRESHOLD

    with pytest.raises(ValueError, match="must be >= 0.01"):
        truncated_normal_(torch.empty(4), 1e-9, torch.Generator().manual_seed(0))  # redrawn until |z| <= 1e-9: never
    with pytest.raises(ConfigError, match="--truncation: threshold '1e-9' is below 0.01"):
        parse_threshold("1e-9", "--truncation")
    with pytest.raises(ConfigError, match="--truncation 9: auto chooses the threshold of every class at once"):
        parse_threshold("auto", "--truncation 9")
    assert parse_threshold(str(MIN_THRESHOLD), "x") == MIN_THRESHOLD
