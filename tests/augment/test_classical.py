"""Classical augmentation: strict albumentations pipelines, seeding, parents, grayscale."""

from __future__ import annotations

import numpy as np
import pytest

from augmentgan.augment.classical import NAMED_PIPELINES, augment_class, build_pipeline
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError


def _data(channels: int) -> LabeledImages:
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (9, 12, 12, channels), dtype=np.uint8)
    return LabeledImages(images, np.array([0, 0, 0, 0, 0, 1, 1, 1, 2]), ("a", "b", "c"))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(NAMED_PIPELINES))
def test_named_pipelines_keep_shape_and_provenance(name: str, channels: int) -> None:
    data = _data(channels)
    out = augment_class(data, 1, 7, build_pipeline(name, seed=0), np.random.default_rng(0))
    assert out.images.shape == (7, 12, 12, channels) and out.images.dtype == np.uint8
    assert (out.labels == 1).all() and (out.source == Source.classical).all()
    # round-robin over the 3 members of class 1: each used 2 or 3 times, parents are class-1 indices
    assert sorted(np.bincount(out.parent, minlength=9)[5:8].tolist()) == [2, 2, 3]
    assert set(out.parent.tolist()) <= {5, 6, 7}


def test_same_seed_gives_identical_bytes_and_other_seed_differs() -> None:
    data = _data(3)
    a = augment_class(data, 0, 10, build_pipeline("geometric+photometric", seed=1), np.random.default_rng(5))
    b = augment_class(data, 0, 10, build_pipeline("geometric+photometric", seed=1), np.random.default_rng(5))
    c = augment_class(data, 0, 10, build_pipeline("geometric+photometric", seed=1), np.random.default_rng(6))
    assert a.images.tobytes() == b.images.tobytes() and (a.parent == b.parent).all()
    assert a.images.tobytes() != c.images.tobytes()
    # the result depends on rng only, not on what the pipeline did before
    used = build_pipeline("geometric+photometric", seed=1)
    augment_class(data, 1, 4, used, np.random.default_rng(9))
    d = augment_class(data, 0, 10, used, np.random.default_rng(5))
    assert d.images.tobytes() == a.images.tobytes()


def test_augmented_images_differ_from_their_parents() -> None:
    data = _data(1)
    out = augment_class(data, 0, 10, build_pipeline([{"name": "Affine", "params": {"rotate": [20, 30], "p": 1.0}}], seed=0), np.random.default_rng(0))
    assert all(not np.array_equal(out.images[i], data.images[p]) for i, p in enumerate(out.parent))


def test_flips_mirrors_each_way_independently() -> None:
    """Every transform draws from one shared stream: HorizontalFlip and VerticalFlip (p=0.5 each) were
    seeded alike and always fired together (a 180-degree turn, never a mirror)."""
    x = np.arange(64, dtype=np.uint8).reshape(8, 8, 1)
    data = LabeledImages(x[None], np.zeros(1, np.int64), ("a",))
    out = augment_class(data, 0, 800, build_pipeline("flips", seed=0), np.random.default_rng(0)).images
    kinds = [next(k for k, v in (("h", x[:, ::-1]), ("v", x[::-1]), ("hv", x[::-1, ::-1]), ("id", x)) if np.array_equal(o, v)) for o in out]
    shares = {k: kinds.count(k) / len(kinds) for k in ("h", "v", "hv", "id")}
    # none unchanged (redrawn); mirrors each way and the turn about a third each
    assert shares["id"] == 0 and all(0.25 < shares[k] < 0.42 for k in ("h", "v", "hv")), shares


def test_an_unchanged_output_is_drawn_again() -> None:
    """strokes on 8x8 digits: nearest-neighbour resampling of a small rotation often gives back the
    parent's exact pixels (36% of class 9's samples before); those are redrawn."""
    from augmentgan.data.builtin import digits_lt

    data = digits_lt()
    out = augment_class(data, 9, 200, build_pipeline("strokes", seed=0), np.random.default_rng(0))
    assert not any(np.array_equal(out.images[i], data.images[p]) for i, p in enumerate(out.parent))
    # an image no transform can change (a blank one, flipped) is kept after the redraws, not looped on
    blank = LabeledImages(np.zeros((2, 8, 8, 1), np.uint8), np.zeros(2, np.int64), ("a",))
    assert (augment_class(blank, 0, 3, build_pipeline("flips", seed=0), np.random.default_rng(0)).images == 0).all()


@pytest.mark.parametrize(
    "spec, words",
    [
        ([{"name": "GaussNoise", "params": {"var_limit": [10, 50]}}], ["GaussNoise", "var_limit", "std_range"]),
        ({"transform": {"__class_fullname__": "Compose", "transforms": [{"__class_fullname__": "CoarseDropout", "max_holes": 4, "p": 1}]}}, ["CoarseDropout", "max_holes"]),
        ([{"name": "Affine", "params": {"rotate": "lots"}}], ["Affine", "rotate"]),
        ([{"name": "NoSuchTransform"}], ["NoSuchTransform"]),
        ([{"name": "Affine", "parameters": {}}], ["name", "params"]),
        ("heavy", ["heavy", "light"]),
    ],
)
def test_bad_specs_fail_loudly_in_one_line(spec, words) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError) as info:
        build_pipeline(spec, seed=0)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_serialized_form_round_trips_with_seed() -> None:
    import albumentations as A

    compose = A.Compose([A.Affine(rotate=(-20, 20), p=1.0), A.OneOf([A.Blur(p=1), A.RandomGamma(p=1)], p=0.5)])
    spec = A.to_dict(compose)
    data = _data(3)
    a = augment_class(data, 0, 6, build_pipeline(spec, seed=2), np.random.default_rng(1))
    b = augment_class(data, 0, 6, build_pipeline(spec["transform"], seed=2), np.random.default_rng(1))
    assert a.images.tobytes() == b.images.tobytes()


def test_size_changing_pipeline_is_refused() -> None:
    data = _data(3)
    with pytest.raises(ConfigError, match="keep the size"):
        augment_class(data, 0, 2, build_pipeline([{"name": "Resize", "params": {"height": 6, "width": 6}}], seed=0), np.random.default_rng(0))


def test_strokes_resamples_without_new_gray_levels() -> None:
    # strokes uses nearest-neighbour resampling: every output pixel is a parent's pixel or the zero
    # fill, so augmented digits stay as sharp as the real ones; linear resampling (light) blends
    # neighbours into new gray levels, which is what strokes exists to avoid
    rng = np.random.default_rng(4)
    images = (rng.integers(0, 2, (6, 16, 16, 1)) * 200 + 40).astype(np.uint8)  # two gray levels: 40 and 240
    data = LabeledImages(images, np.zeros(6, np.int64), ("a",))
    sharp = augment_class(data, 0, 12, build_pipeline("strokes", seed=0), np.random.default_rng(0))
    assert set(np.unique(sharp.images).tolist()) <= {0, 40, 240}
    assert sum(not np.array_equal(sharp.images[i], images[p]) for i, p in enumerate(sharp.parent)) >= 11
    blurred = augment_class(data, 0, 12, build_pipeline("light", seed=0), np.random.default_rng(0))
    assert not set(np.unique(blurred.images).tolist()) <= {0, 40, 240}
