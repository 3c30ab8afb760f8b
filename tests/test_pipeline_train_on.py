"""``gan.train_on: classical``: the GAN trains on the training split with every class filled up to the
largest by classical.pipeline's samples of the class's own images; the fill is drawn from the GAN's
seed, named in the cache key, and never written to the expansion."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import torch
import yaml

from augmentgan.data import load
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError
from augmentgan.pipeline import expand, gan_training_set
from augmentgan.recipe import Recipe

MIRROR = [{"name": "HorizontalFlip", "params": {"p": 1.0}}]  # every sample is its parent mirrored: checkable pixel by pixel

RECIPE = {
    "seed": 5,
    "data": {"path": "set-by-the-test"},
    "holdout": {"fraction": 0.2},
    "gan": {
        "preset": "dcgan", "steps": 8, "batch": 8, "device": "cpu", "eval_every": 4, "train_on": "classical",
        "overrides": {"model": {"g_ch": 8, "d_ch": 8, "z_dim": 8, "embed_dim": 8}},
    },
    "classical": {"pipeline": MIRROR},
    "plan": {"target": 24, "mix": {"gan": 1.0}},
    "output": {"path": "set-by-the-test", "format": "h5"},
}


@pytest.fixture(autouse=True)
def _one_thread():  # tiny tensors on a shared machine
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(counts: tuple[int, ...], side: int = 8, seed: int = 0) -> LabeledImages:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    images = rng.integers(0, 256, (len(labels), side, side, 1), dtype=np.uint8)  # no image is its own mirror
    return LabeledImages(images, labels, tuple(f"c{i}" for i in range(len(counts))))


def _recipe(**gan: object) -> Recipe:
    return Recipe.model_validate({**RECIPE, "gan": {**RECIPE["gan"], **gan}})


def test_the_fill_brings_every_class_with_images_to_the_largest_from_its_own_images() -> None:
    train = _images((20, 7, 1, 0, 20))
    out = gan_training_set(_recipe(), train, seed=11)
    assert out.class_counts().tolist() == [20, 20, 20, 0, 20]  # an empty class stays empty; a one-image class is filled too
    assert np.array_equal(out.images[:len(train)], train.images) and np.array_equal(out.labels[:len(train)], train.labels)
    assert (out.source == Source.real.value).all()  # handed to the trainer as its training images
    mirrors = {c: {train.images[i, :, ::-1].tobytes() for i in np.flatnonzero(train.labels == c)} for c in range(5)}
    fill = range(len(train), len(out))
    assert all(out.images[i].tobytes() in mirrors[int(out.labels[i])] for i in fill)  # each one a mirror of a real image of its own class
    rows_7 = [out.images[i].tobytes() for i in fill if out.labels[i] == 1]
    assert len(set(rows_7)) == 7  # the 13 samples of the 7-image class use every one of its images


def test_the_fill_follows_the_gan_seed_and_real_leaves_the_split_as_it_is() -> None:
    train = _images((12, 3))
    strokes = _recipe().model_copy(update={"classical": _recipe().classical.model_copy(update={"pipeline": "strokes"})})
    a, b, c = (gan_training_set(strokes, train, seed=s).images for s in (1, 1, 2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert gan_training_set(_recipe(train_on="real"), train, seed=1) is train


def _recipe_file(tmp_path: Path, counts: tuple[int, ...] = (20, 12, 8), sections: Optional[dict] = None, **gan: object) -> Path:
    """Images of ``counts`` as data.npz and a recipe reading them (a new file per call): RECIPE with
    ``gan`` keys and whole ``sections`` replaced."""
    train = _images(counts, seed=3)
    np.savez(tmp_path / "data.npz", x=train.images[..., 0], y=train.labels)
    recipe = {**RECIPE, "gan": {**RECIPE["gan"], **gan}, "data": {"path": str(tmp_path / "data.npz")}, "output": {"path": str(tmp_path / "out"), "format": "h5"},
              **(sections or {})}
    path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*')))}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_expand_trains_the_gan_on_the_filled_split_caches_it_under_its_own_key_and_writes_no_fill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _recipe_file(tmp_path)
    dry = expand(recipe, dry_run=True)
    assert "gan.train_on classical: the GAN trains on 32 real images and 16 samples of classical.pipeline filling every class to 16" in dry.notes
    first = expand(recipe)
    run = Path(first.gan_run)
    data = torch.load(run / "checkpoints" / "final.pt", weights_only=True)["data"]
    assert data["class_counts"] == [16, 16, 16]  # the split (16 / 10 / 6 after the holdout) filled to its largest class
    assert any("gan.train_on classical" in n for n in first.notes)
    assert not any("other data" in n for n in first.notes)  # its own run: the fill is not "other data"
    written = load(tmp_path / "out" / "train.h5")
    assert sorted(np.unique(written.source).tolist()) == [Source.real.value, Source.gan.value]  # the fill trains the GAN, it is not exported

    def no_fill(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached run drew its fill again")

    with monkeypatch.context() as patched:
        patched.setattr("augmentgan.pipeline.gan_training_set", no_fill)
        again = expand(recipe, overrides=["output.path=" + str(tmp_path / "out2")])
    assert again.gan_cached and Path(again.gan_run) == run
    real = expand(_recipe_file(tmp_path, train_on="real"), overrides=["output.path=" + str(tmp_path / "out3")])
    assert Path(real.gan_run) != run  # the same split on the real images alone is another run


def test_a_reused_run_ignores_train_on_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    run = expand(_recipe_file(tmp_path, train_on="real")).gan_run
    reused = expand(_recipe_file(tmp_path, run=str(run), train_on="classical"), overrides=["output.path=" + str(tmp_path / "out2")])
    assert any("gan.train_on" in n and "ignored" in n for n in reused.notes), reused.notes


def test_an_unknown_train_on_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="gan.train_on"):
        from augmentgan.recipe import resolve_recipe

        resolve_recipe({**RECIPE, "gan": {**RECIPE["gan"], "train_on": "synthetic"}}, (), in_memory=True)


@pytest.mark.parametrize("mix", ["{gan: 1.0}", "auto"])
def test_filters_judge_a_filled_runs_samples_against_the_real_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mix: str) -> None:
    """The run's data is the split plus its fill: the filters' classifier and memorization check use the
    real split (as for a fold's part), not a refusal that the real images are not the run's data."""
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    sets = ["generate.filters=[memorization]", f"plan.mix={mix}", "plan.auto.steps=20", "plan.auto.sources=[gan, copy]"]
    result = expand(_recipe_file(tmp_path), overrides=sets)
    assert sum(result.counts["2"].values()) == 24  # npz classes are named by their label
    if mix != "auto":
        assert result.counts["2"]["gan"] == 18


def _balanced_or_skewed(tmp_path: Path, counts: tuple[int, ...], **gan: object) -> Path:
    """No holdout (the split is the whole file), no quality monitor, every class up to the largest by the GAN."""
    gan = {"eval_every": 0, **gan}
    return _recipe_file(tmp_path, counts, {"holdout": {"fraction": 0.0}, "plan": {"target": "max", "mix": {"gan": 1.0}}}, **gan)


def test_generate_judges_a_filled_run_against_its_real_images_and_names_them_when_others_are_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from augmentgan.errors import DataError
    from augmentgan.generate.generation import sample_rows

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _balanced_or_skewed(tmp_path, (20, 12, 8))
    run = Path(expand(recipe).gan_run)
    real = load(tmp_path / "data.npz")  # no holdout: the split is the whole file
    samples, _, _ = sample_rows(run, per_class=3, filters=["memorization"], real=real, device="cpu")
    assert samples.class_counts().tolist() == [3, 3, 3]
    with pytest.raises(DataError, match="classical fill"):
        sample_rows(run, per_class=3, filters=["memorization"], real=real[np.arange(30)], device="cpu")
    reused = expand(recipe, overrides=[f"gan.run={run}", "output.path=" + str(tmp_path / "out2")])
    assert not any("other data" in n for n in reused.notes), reused.notes  # its real images are the split: nothing unseen was seen


def test_diffaug_auto_is_decided_by_the_real_counts_not_the_filled_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _balanced_or_skewed(tmp_path, (1000, 20), steps=2, overrides={**RECIPE["gan"]["overrides"], "tricks": {"diffaug": "auto"}})
    run = Path(expand(recipe).gan_run)
    config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert config["gan"]["tricks"]["diffaug"] == "color,translation,cutout"  # 20 images in the smallest real class: on, though filled to 1,000


def test_a_split_with_nothing_to_fill_reuses_the_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    real = expand(_balanced_or_skewed(tmp_path, (10, 10), train_on="real"), overrides=["plan.target=14"])
    filled = expand(_balanced_or_skewed(tmp_path, (10, 10)), overrides=["plan.target=14", "output.path=" + str(tmp_path / "out2")])
    assert filled.gan_cached and Path(filled.gan_run) == Path(real.gan_run)
