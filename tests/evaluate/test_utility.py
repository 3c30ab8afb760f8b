"""The utility benchmark and the pipeline's in-memory expansion it uses."""

from __future__ import annotations

import numpy as np
import pytest

from augmentgan.data import load, save
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError
from augmentgan.utility import minority_classes, score, utility
from augmentgan.pipeline import expand, expand_data, split_holdout


@pytest.fixture(scope="module")
def imbalanced(real3) -> LabeledImages:
    keep = np.concatenate([np.flatnonzero(real3.labels == c)[:n] for c, n in ((0, 30), (1, 12), (2, 8))])
    return real3[keep]


def recipe(tmp_path, mix=None) -> dict:
    return {"seed": 3, "data": {"path": "unused"}, "output": {"path": str(tmp_path / "out")},
            "plan": {"mix": mix or {"classical": 0.5, "smote": 0.5}}}


def test_score_known_answers():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 1, 0, 2])
    out = score(y, p, 3, minority_classes(np.array([40, 10, 5])))
    assert out["per_class_recall"] == {0: 0.75, 1: 1.0, 2: 0.5}
    assert out["minority_recall"] == 0.5 and out["balanced_accuracy"] == pytest.approx(0.75)
    f1 = [2 * 0.75 * 0.75 / 1.5, 2 * (2 / 3) * 1 / (5 / 3), 2 * 1 * 0.5 / 1.5]
    assert out["macro_f1"] == pytest.approx(np.mean(f1))
    assert minority_classes(np.array([5, 1, 9, 1, 7, 3])).tolist() == [1, 3]


def test_utility_reports_every_method_and_the_winner(imbalanced, tmp_path):
    events = []
    result = utility(imbalanced, recipe(tmp_path), seeds=2, steps=30, callback=events.append)
    d = result.to_dict()
    assert list(d["methods"]) == ["none", "ros", "classical", "smote", "recipe"]
    for entry in d["methods"].values():
        for metric in ("macro_f1", "balanced_accuracy", "minority_recall"):
            assert 0 <= entry[metric]["mean"] <= 1 and entry[metric]["std"] >= 0 and len(entry[metric]["values"]) == 2
        assert set(entry["per_class_recall"]) == {"0", "1", "7"}
    assert d["winner"] == max(d["methods"], key=lambda m: d["methods"][m]["macro_f1"]["mean"])
    assert d["minority_classes"] == ["7"]
    # every method but none balances the training part (24/10/6 after a 20% holdout) to 24 per class
    assert d["train_sizes"]["none"] == [40, 40] and d["train_sizes"]["ros"] == d["train_sizes"]["recipe"] == [72, 72]
    assert any(e.stage == "utility" for e in events)
    again = utility(imbalanced, recipe(tmp_path), seeds=2, steps=30, methods=["none", "recipe"])
    assert again.methods["recipe"]["macro_f1"] == result.methods["recipe"]["macro_f1"]  # seeded: the same numbers


def test_utility_records_what_an_auto_mix_chose_per_seed(imbalanced, tmp_path):
    spec = recipe(tmp_path, mix="auto")
    spec["plan"]["auto"] = {"sources": ["copy", "smote"], "steps": 20, "folds": 2, "blends": False}
    result = utility(imbalanced, spec, seeds=2, steps=20, methods=["ros", "recipe"])
    d = result.to_dict()
    assert d["mixes"]["ros"] == [{"copy": 1.0}, {"copy": 1.0}]
    chosen = [m["mix"] for m in d["mix_decisions"]["recipe"]]
    assert len(chosen) == 2 and d["mixes"]["recipe"] == chosen and all(set(m) <= {"copy", "smote"} for m in chosen)


def test_utility_rejects_bad_settings(imbalanced, tmp_path):
    with pytest.raises(ConfigError, match="unknown utility method"):
        utility(imbalanced, recipe(tmp_path), methods=["gan-only"])
    with pytest.raises(ConfigError, match="seeds >= 1"):
        utility(imbalanced, recipe(tmp_path), seeds=0)


def test_expand_writes_what_expand_data_makes_of_its_split(imbalanced, tmp_path):
    path = save(imbalanced, tmp_path / "data.h5")
    spec = {**recipe(tmp_path), "data": {"path": str(path)}}
    written = expand(spec)
    train = load(written.train)
    data = load(path)
    split_seq = np.random.SeedSequence(3).spawn(6)[0]
    train_idx, _, _ = split_holdout(data, 0.2, np.random.default_rng(split_seq))
    made = expand_data(data[train_idx], spec).data
    assert np.array_equal(made.images, train.images) and np.array_equal(made.labels, train.labels)
    assert np.array_equal(made.source, train.source) and np.array_equal(made.parent, train.parent)
    assert set(np.unique(made.source)) == {Source.real, Source.classical, Source.smote}


def test_utility_scores_on_a_given_test_set(imbalanced, other3, tmp_path):
    # trained on all 50 images of `imbalanced`; scored on 90 other images with their labels and with rotated labels
    rotated = LabeledImages(other3.images, (other3.labels + 1) % 3, other3.class_names)
    runs = {name: utility(imbalanced, recipe(tmp_path), seeds=2, steps=30, methods=["none", "ros"], test=t)
            for name, t in (("true", other3), ("rotated", rotated))}
    d = runs["true"].to_dict()
    assert list(d)[:2] == ["methods", "winner"] and list(d["methods"]) == ["none", "ros"]
    assert d["settings"]["scored_on"] == "test" and d["settings"]["test_size"] == 90 and d["settings"]["holdout"] is None
    assert d["train_sizes"]["none"] == [50, 50] and d["train_sizes"]["ros"] == [90, 90]  # no split: all of data, balanced to 30
    assert d["minority_classes"] == ["7"]  # from the data's counts (30/12/8), not the balanced test set
    assert d["seeds"] == utility(imbalanced, recipe(tmp_path), seeds=2, steps=1, methods=["none"]).seeds  # the same seed derivation
    for method in ("none", "ros"):
        true, wrong = (runs[k].methods[method]["macro_f1"]["mean"] for k in ("true", "rotated"))
        assert true > 0.6 and wrong < 0.3, (method, true, wrong)


def test_utility_test_set_must_match_the_data(imbalanced, tmp_path):
    def fails(test, match):
        with pytest.raises(DataError, match=match) as info:
            utility(imbalanced, recipe(tmp_path), seeds=1, steps=1, methods=["none"], test=test)
        assert "\n" not in str(info.value)

    names = LabeledImages(imbalanced.images, imbalanced.labels, ("0", "1", "8"))
    fails(names, r"test set's class names \['0', '1', '8'\] differ from the data's \['0', '1', '7'\]; give a test set with the same classes")
    fails(LabeledImages(imbalanced.images, imbalanced.labels, ("1", "0", "7")), "same classes in the same order")
    fails(LabeledImages(np.repeat(imbalanced.images, 3, axis=-1), imbalanced.labels, imbalanced.class_names),
          r"test set's images are 8x8x3 \(HxWxC\) but the data's are 8x8x1; convert .* --size 8 --channels 1")
    fails(LabeledImages(imbalanced.images[:, :6], imbalanced.labels, imbalanced.class_names), "images are 6x8x1")
    fails(imbalanced[np.zeros(0, np.int64)], "test set has no images")


def test_utility_with_a_test_set_needs_one_image_per_class(imbalanced, tmp_path):
    single = imbalanced[np.concatenate([np.flatnonzero(imbalanced.labels < 2), np.flatnonzero(imbalanced.labels == 2)[:1]])]
    with pytest.raises(DataError, match=r"\['7'\] have fewer than 2 images.*or give a separate test set"):
        utility(single, recipe(tmp_path), seeds=1, steps=1, methods=["none"])
    result = utility(single, recipe(tmp_path), seeds=1, steps=1, methods=["none"], test=imbalanced)
    assert result.sizes["none"] == [43] and result.settings["test_size"] == 50
    empty = single[np.flatnonzero(single.labels < 2)]
    with pytest.raises(DataError, match=r"\['7'\] have no images in the data"):
        utility(empty, recipe(tmp_path), seeds=1, steps=1, methods=["none"], test=imbalanced)


def test_a_recipe_may_not_choose_its_mix_on_the_images_it_is_scored_on(tmp_path):
    data, test = load("builtin:digits-lt"), load("builtin:digits-lt-test")
    auto = {"mix": "auto", "auto": {"sources": ["copy", "classical"], "steps": 10, "folds": 2, "blends": False}}
    base = {"seed": 0, "data": {"path": "unused"}, "output": {"path": str(tmp_path / "out")}}
    on_test = {**base, "plan": {**auto, "auto": {**auto["auto"], "validation": "builtin:digits-lt-test"}}}
    with pytest.raises(DataError, match=r"builtin:digits-lt-test: 280 of its 280 images are also in the test set"):
        utility(data, on_test, seeds=1, steps=10, test=test, methods=["recipe"])
    in_data = {**base, "plan": {**auto, "auto": {**auto["auto"], "validation": "builtin:digits"}}}  # holds every holdout a seed can split off
    with pytest.raises(DataError, match=r"builtin:digits: 517 of its 1797 images are also in the training data"):
        utility(data, in_data, seeds=1, steps=10, methods=["recipe"])
    assert utility(data, on_test, seeds=1, steps=10, test=test, methods=["ros"]).methods["ros"]  # the baselines never read it
