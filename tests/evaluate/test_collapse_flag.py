"""The collapse flag of ``evaluate`` is right both ways, and the training monitor ranks collapse below diversity.

- Real images the metrics never saw (a held-out split of the same classes) are never flagged,
  whatever their number, even against the 8 images of the rarest class.
- A generator that returns one image per class (whatever the latent) is always flagged, in every class.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augmentgan.data import load
from augmentgan.data.types import LabeledImages, Source
from augmentgan.evaluate import metrics as M
from augmentgan.evaluate.evaluation import evaluate
from augmentgan.evaluate.monitor import fidelity, kid_all, quality_monitor, quality_score
from augmentgan.gan.monitoring import sample_fn

FAST = dict(classifier_steps=60, cas=False)


@pytest.fixture(scope="module")
def train_lt() -> LabeledImages:
    return load("builtin:digits-lt")  # 150 down to 8 images per class


@pytest.fixture(scope="module")
def heldout() -> LabeledImages:
    return load("builtin:digits-lt-test")  # 28 per class, disjoint from digits-lt


def as_gan(data: LabeledImages) -> LabeledImages:
    return LabeledImages(data.images, data.labels, data.class_names, np.full(len(data), Source.gan.value, np.uint8))


class OnePerClass(torch.nn.Module):
    """A "generator" that ignores z: one fixed image per class, in [-1, 1]."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("templates", torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.templates[y]


def draw(G: torch.nn.Module, num_classes: int, per_class: int, size: tuple[int, int]) -> LabeledImages:
    images, labels = sample_fn(lambda z, y: G(z, y), seed=1, num_classes=num_classes, z_dim=4, data_size=size, fit="resize")(per_class)
    return LabeledImages(images, labels, tuple(str(i) for i in range(num_classes)), np.full(len(labels), Source.gan.value, np.uint8))


@pytest.mark.parametrize("per_class,seed", [(28, 0), (12, 1), (8, 2)])
def test_a_heldout_split_of_real_images_is_never_flagged(train_lt, heldout, per_class, seed):
    rng = np.random.default_rng(seed)
    keep = np.concatenate([rng.choice(np.flatnonzero(heldout.labels == c), per_class, replace=False) for c in range(heldout.num_classes)])
    result = evaluate(as_gan(heldout[np.sort(keep)]), train_lt, **FAST)
    assert result.overall["mode_collapse_classes"] == []
    ratios = [row["diversity_ratio"] for row in result.per_class.values()]
    assert len(ratios) == 10 and min(ratios) > 0.7  # far from the 0.5 flag, the 8-image class included


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_generator_of_one_image_per_class_is_always_flagged(train_lt, heldout, seed):
    rng = np.random.default_rng(seed)
    pick = [rng.choice(np.flatnonzero(heldout.labels == c)) for c in range(heldout.num_classes)]
    synth = draw(OnePerClass(heldout.images[pick]), heldout.num_classes, 16, (8, 8))
    result = evaluate(synth, train_lt, **FAST)
    assert sorted(result.overall["mode_collapse_classes"]) == sorted(train_lt.class_names)
    assert all(row["mode_collapse"] is True for row in result.per_class.values())


def test_the_monitor_scores_collapse_and_garbage_low_and_a_heldout_split_near_the_top(train_lt, heldout):
    monitor = quality_monitor(train_lt, per_class=16, classifier_steps=60)

    def real_sampler(data: LabeledImages):  # "samples" that are real images the classifier never saw
        def sample(n: int):
            idx = np.concatenate([np.flatnonzero(data.labels == c)[:n] for c in range(data.num_classes)])
            return data.images[idx], data.labels[idx]
        return sample

    diverse = monitor(10, real_sampler(heldout))
    pick = [np.flatnonzero(heldout.labels == c)[0] for c in range(heldout.num_classes)]
    collapsed = monitor(10, sample_fn(OnePerClass(heldout.images[pick]), seed=0, num_classes=10, z_dim=4, data_size=(8, 8), fit="resize"))
    noise = np.random.default_rng(0).integers(0, 256, (160, 8, 8, 1), dtype=np.uint8)
    garbage = monitor(10, lambda n: (noise[: 10 * n], np.repeat(np.arange(10), n)))  # diverse, but no digit
    assert garbage["diversity_min"] > 1.0 and garbage["score"] < 0.3
    assert diverse["collapsed"] == 0 and collapsed["collapsed"] == 10
    assert collapsed["diversity_mean"] < 1e-3  # one image per class: zero up to float32 kernel noise
    assert diverse["score"] > 0.75 and collapsed["score"] < 0.05 and diverse["score"] - collapsed["score"] > 0.7
    assert set(diverse) >= {"score", "kid", "diversity_mean", "diversity_min", "diversity/8", "kid/8"}
    # deterministic: the same samples score the same (no random draw anywhere)
    assert monitor(20, real_sampler(heldout)) == diverse


def test_score_and_kid_definitions():
    assert fidelity(np.array([0.0, 0.01, 0.03, -0.01, 0.01]), np.array([0.02, 0.02, 0.02, 0.02, np.nan])).tolist()[:4] == [1.0, 0.5, 0.0, 1.0]
    assert np.isnan(fidelity(np.array([0.01]), np.array([np.nan]))[0])
    assert quality_score(np.array([1.4, 0.5, np.nan, 0.2]), np.array([0.5, 1.0, 1.0, np.nan])) == pytest.approx((0.5 + 0.5 + 0.2) / 3)
    x = torch.rand(40, 6, generator=torch.Generator().manual_seed(0))
    # equal sizes: the full-set estimate is KID's estimate on one subset holding every row
    assert kid_all(x[:20], x[20:]) == pytest.approx(M.kid(x[:20], x[20:], subsets=1, subset_size=20)[0], rel=1e-9)
    assert kid_all(x[:20], x[20:]) < kid_all(x[:20], x[20:] + 0.5)
