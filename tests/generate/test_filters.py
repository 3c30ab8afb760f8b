"""Quality filters on constructed candidates: each rejects what it should, composes, parses."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from augmentgan.errors import ConfigError
from augmentgan.generate.filters import Chunk, FilterContext, FilterPipeline, FilterSpec, build_filters, uniforms


def context(real=None, classifier=None, **kw) -> FilterContext:
    names = real.class_names if real is not None else ("a", "b", "c")
    return FilterContext(seed=0, class_names=names, classifier=classifier, real=real, **kw)


def chunk(ctx: FilterContext, images: np.ndarray, cls: int, start: int = 0, x: torch.Tensor | None = None) -> Chunk:
    x = torch.zeros(len(images), 1, 4, 4) if x is None else x
    return Chunk(cls=cls, start=start, x=x, images=torch.from_numpy(np.ascontiguousarray(images)), context=ctx)


def run(filters, ctx, *chunks, cls=None):
    pipeline = FilterPipeline(build_filters(filters), ctx)
    pipeline.start_class(chunks[0].cls if cls is None else cls)
    return [pipeline.run(c) for c in chunks]


# --- classifier-based filters ----------------------------------------------------------------------
def test_confidence_rejects_samples_of_the_wrong_class(real, heldout, classifier):
    ctx = context(real, classifier)
    right = heldout.images[heldout.labels == 0][:10]
    wrong = heldout.images[heldout.labels == 1][:10]
    (rejected,) = run(["confidence:p=0.5"], ctx, chunk(ctx, np.concatenate([right, wrong]), cls=0))
    assert (rejected[10:] == 0).all(), "a 'one' conditioned as 'zero' must be rejected"
    assert (rejected[:10] == -1).sum() >= 8, "most unseen zeros are kept"


def test_memorization_catches_an_exact_copy_of_a_training_image(real, heldout, classifier):
    ctx = context(real, classifier)
    copies = real.images[real.labels == 2][[0, 5]]
    fresh = heldout.images[heldout.labels == 2][:10]
    images = np.concatenate([fresh[:4], copies[:1], fresh[4:], copies[1:]])
    (rejected,) = run(["memorization:q=0.01"], ctx, chunk(ctx, images, cls=2))
    assert rejected[4] == 0 and rejected[-1] == 0, "pixel-identical copies are near-copies"
    assert (rejected[[0, 1, 2, 3, 5, 6, 7, 8, 9, 10]] == -1).sum() >= 8


def test_dedup_rejects_repeats_in_index_order_within_and_across_chunks(real, classifier):
    ctx = context(real, classifier)
    a, b, c, d = real.images[real.labels == 0][:4]
    first, second = chunk(ctx, np.stack([a, a, b, a, c]), 0), chunk(ctx, np.stack([b, d, d]), 0, start=5)
    r1, r2 = run(["dedup"], ctx, first, second)
    np.testing.assert_array_equal(r1, [-1, 0, -1, 0, -1])
    np.testing.assert_array_equal(r2, [0, -1, 0]), "b was kept in the first chunk; the second d repeats the first"
    (r,) = run(["dedup:d=3"], ctx, chunk(ctx, np.stack([a, b, c, d]), 0))  # features lie within distance 2
    np.testing.assert_array_equal(r, [-1, 0, 0, 0])


def test_filters_compose_and_each_rejection_is_counted_once(real, heldout, classifier):
    """A wrong-class copy is rejected by the first filter that sees it; dedup runs last whatever the order."""
    ctx = context(real, classifier)
    zero = heldout.images[heldout.labels == 0][:2]
    one = real.images[real.labels == 1][:1]
    images = np.concatenate([zero[:1], one, zero[:1], zero[1:]])
    filters = build_filters(["dedup", "confidence", "memorization"])
    assert [f.name for f in filters] == ["confidence", "memorization", "dedup"]
    (rejected,) = run(["dedup", "confidence", "memorization"], ctx, chunk(ctx, images, 0))
    np.testing.assert_array_equal(rejected, [-1, 0, 2, -1])


# --- discriminator ---------------------------------------------------------------------------------
class Brightness(nn.Module):
    """A stand-in D: the logit is 10 x the mean pixel (so a candidate's score is chosen by its pixels)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 10 * x.mean(dim=(1, 2, 3))


def scored(ctx, scores, start=0) -> Chunk:
    x = torch.as_tensor(np.asarray(scores, np.float64) / 10).float().reshape(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    return chunk(ctx, np.zeros((len(scores), 4, 4, 1), np.uint8), 0, start, x)


def test_harmful_rejects_samples_of_another_class_and_noise(real, heldout, classifier):
    ctx = context(real, classifier)
    right = heldout.images[heldout.labels == 0][:10]
    other = heldout.images[heldout.labels == 1][:10]
    (rejected,) = run(["harmful:k=5"], ctx, chunk(ctx, np.concatenate([right, other]), cls=0))
    assert (rejected[10:] == 0).all(), "a 'one' among the 'zeros' sits in another class's neighbourhood"
    assert (rejected[:10] == -1).sum() >= 8, "unseen zeros are kept"


def test_harmful_keeps_a_sample_whose_neighbours_are_half_its_class():
    """probe: with an even k, a sample with exactly half of its k nearest real images of its class was
    rejected, though the filter calls a sample harmful when fewer than half are."""
    from augmentgan.generate.filters import build_filter

    f = build_filter("harmful:k=2")
    f._bank = (torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]), np.array([0, 1, 1]))  # real features and labels

    class Two:  # both judged class 0 by the classifier
        cls = 0

        def probs(self) -> np.ndarray:
            return np.array([[0.9, 0.1], [0.9, 0.1]])

        def features(self) -> torch.Tensor:  # nearest two: (class 0, class 1) and (class 1, class 1)
            return torch.tensor([[0.8, 0.6], [-0.6, 0.8]])

    assert f.keep(Two(), np.ones(2, bool)).tolist() == [True, False]


def test_informative_keeps_the_most_uncertain_in_class_fraction(real, heldout, classifier):
    ctx = context(real, classifier)
    images = np.concatenate([heldout.images[heldout.labels == 0][:12], heldout.images[heldout.labels == 1][:4]])
    c = chunk(ctx, images, cls=0)
    (rejected,) = run(["informative:keep=0.5"], ctx, c)
    probs = c.probs()
    in_class = probs.argmax(axis=1) == 0
    kept = rejected == -1
    assert kept.sum() == int(np.ceil(0.5 * in_class.sum())) and not kept[~in_class].any()
    entropy = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(axis=1)
    assert entropy[kept].min() >= entropy[in_class & ~kept].max(), "the kept ones are the most uncertain"


def test_discriminator_top_keeps_scores_above_the_burn_in_quantile():
    burn = np.linspace(-5, 5, 101)
    ctx = context(discriminator=Brightness(), loss="hinge", burn_in=lambda cls, n: burn[:n])
    scores = [-4.0, 0.5, 1.5, 2.5, 4.8]
    (rejected,) = run(["discriminator:keep=0.3,burn=101"], ctx, scored(ctx, scores))
    np.testing.assert_array_equal(rejected == -1, np.asarray(scores) >= 2.0 - 1e-6)  # the 70% quantile of burn is 2


def test_drs_accepts_with_the_azadi_probability():
    rng = np.random.default_rng(0)
    burn = rng.normal(0.0, 1.0, 500)
    ctx = context(discriminator=Brightness(), loss="bce", burn_in=lambda cls, n: burn[:n])
    d_max = burn.max()
    f_burn = burn - d_max - np.log(1 - np.exp(burn - d_max - 1e-6))
    gamma = np.percentile(f_burn, 80)
    for s in (d_max - 3.0, d_max - 0.5):
        n = 4000
        (rejected,) = run(["discriminator:percentile=80,burn=500"], ctx, scored(ctx, np.full(n, s), start=0))
        p = 1 / (1 + np.exp(-(s - d_max - np.log(1 - np.exp(s - d_max - 1e-6)) - gamma)))
        assert abs(np.mean(rejected == -1) - p) < 0.03, (s, p)


def test_drs_needs_a_bce_discriminator_and_keys_must_fit_the_mode():
    ctx = context(discriminator=Brightness(), loss="hinge", burn_in=lambda cls, n: np.zeros(n))
    with pytest.raises(ConfigError, match="bce or minimax.*keep"):
        FilterPipeline(build_filters(["discriminator:mode=drs"]), ctx)
    with pytest.raises(ConfigError, match="percentile does not apply to mode=top"):
        FilterPipeline(build_filters(["discriminator:mode=top,percentile=90"]), ctx)
    (auto,) = build_filters(["discriminator"])
    FilterPipeline([auto], ctx)
    assert auto.describe()["mode"] == "top"


def test_uniforms_are_per_candidate_and_uniform():
    u = uniforms(3, 1, 0, 20000)
    np.testing.assert_array_equal(uniforms(3, 1, 37, 13), u[37:50])
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    assert not np.array_equal(uniforms(3, 2, 0, 100), u[:100]) and not np.array_equal(uniforms(4, 1, 0, 100), u[:100])


# --- parsing ---------------------------------------------------------------------------------------
def test_filter_syntax():
    assert FilterSpec.parse("confidence:p=0.9") == FilterSpec("confidence", {"p": 0.9})
    (f,) = build_filters(["discriminator:keep=0.5,burn=64"])
    assert (f.params.keep, f.params.burn) == (0.5, 64)
    (f,) = build_filters([{"name": "dedup", "d": 0.1}])
    assert (f.params.d, f.params.r) == (0.1, None)
    (f,) = build_filters(["dedup"])
    assert (f.params.d, f.params.r) == (None, 0.1)
    for bad, message in [
        ("nope", "unknown filter 'nope'; use one of confidence, memorization, dedup, discriminator"),
        ("confidence:x=1", "unknown key(s) ['x']; valid keys: p"),
        ("confidence:p=2", "filter confidence: p"),
        ("dedup:r=0.1,d=0.2", "give r or d, not both"),
        ("confidence:p", "NAME:KEY=VALUE"),
    ]:
        with pytest.raises(ConfigError) as err:
            build_filters([bad])
        assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="more than once"):
        build_filters(["dedup", "dedup:r=0.5"])
