"""The utility benchmark and the pipeline's in-memory expansion it uses."""

from __future__ import annotations

import numpy as np
import pytest

from augmentgan.data import load, save
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError
from augmentgan.utility import UtilityResult, classifier_seeds, minority_classes, score, utility, verdict
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
    with pytest.raises(ConfigError, match="classifiers >= 1"):
        utility(imbalanced, recipe(tmp_path), classifiers=0)


def test_test_images_that_are_training_images_are_not_scored(imbalanced, other3, tmp_path):
    """probe: `utility DATA --test DATA` scored on the training images without a word (ros recall 1.000
    on the rare classes)."""
    with pytest.raises(DataError, match=r"all 50 test images are also in the data .* give a test set the data does not hold"):
        utility(imbalanced, recipe(tmp_path), seeds=1, steps=10, methods=["none"], test=imbalanced)
    mixed = LabeledImages(np.concatenate([other3.images, imbalanced.images[:7]]), np.concatenate([other3.labels, imbalanced.labels[:7]]), other3.class_names)
    result = utility(imbalanced, recipe(tmp_path), seeds=1, steps=10, methods=["none"], test=mixed)
    assert result.settings["test_size"] == len(other3)
    assert f"7 of {len(mixed)} test images are identical to images in the data and were left out of scoring" in " ".join(result.notes)


def test_more_classifiers_average_per_seed_and_keep_the_first_one(imbalanced, other3, tmp_path):
    one = utility(imbalanced, recipe(tmp_path), seeds=2, steps=30, methods=["none", "ros"], test=other3)
    three = utility(imbalanced, recipe(tmp_path), seeds=2, steps=30, methods=["none", "ros"], test=other3, classifiers=3)
    assert three.settings["classifiers"] == 3 and one.settings["classifiers"] == 1
    for method in ("none", "ros"):
        runs = np.array(three.per_classifier[method])
        assert runs.shape == (2, 3)
        # the first classifier of every seed is the one a single-classifier run trains, and the seed's score is the mean of its three
        assert runs[:, 0].tolist() == one.methods[method]["macro_f1"]["values"]
        assert three.methods[method]["macro_f1"]["values"] == pytest.approx(runs.mean(axis=1).tolist())
        assert len(set(runs[0].tolist())) > 1  # different classifier seeds, different classifiers
    assert classifier_seeds(7, 3)[0] == 7 and len(set(classifier_seeds(7, 3))) == 3


def test_the_recipe_is_paired_with_its_baseline_by_seed_and_classifier(imbalanced, other3, tmp_path):
    # a recipe that builds what ros builds trains the same classifiers: every paired difference is 0
    same = utility(imbalanced, recipe(tmp_path, mix={"copy": 1.0}), seeds=2, steps=20, methods=["ros", "recipe"], test=other3, classifiers=2)
    d = same.to_dict()["recipe_minus_best_baseline"]
    assert d["baseline"] == "ros" and d["macro_f1"] == 0.0 and d["stderr"] == 0.0 and d["over"] == "seeds" and d["n"] == 2
    assert d["verdict"] == "is level with" and "the same score on every one of 2 seeds" in same.comparison()
    assert same.to_dict()["per_classifier"]["recipe"] == same.to_dict()["per_classifier"]["ros"]


def test_the_difference_and_its_standard_error():
    entry = {m: {"mean": 0.0, "std": 0.0, "values": []} for m in ("macro_f1", "balanced_accuracy", "minority_recall")}

    def result(recipe_runs, ros_runs, none_runs):
        methods = {m: {**entry, "macro_f1": {"mean": float(np.mean(r)), "std": 0.0, "values": []}, "per_class_recall": {}}
                   for m, r in (("none", none_runs), ("ros", ros_runs), ("recipe", recipe_runs))}
        return UtilityResult(methods, "recipe", ("a", "b"), ["b"], [1], {"classifiers": len(ros_runs[0])}, {},
                             per_classifier={"none": none_runs, "ros": ros_runs, "recipe": recipe_runs})

    # three seeds, two classifiers: the standard error is over the seeds' mean differences (0.02, 0.03, 0.04)
    r = result([[0.92, 0.94], [0.93, 0.95], [0.95, 0.95]], [[0.90, 0.92], [0.90, 0.92], [0.91, 0.91]], [[0.5, 0.5]] * 3)
    diff = r.difference()
    assert diff["baseline"] == "ros" and diff["over"] == "seeds" and diff["n"] == 3
    assert diff["macro_f1"] == pytest.approx(0.03) and diff["stderr"] == pytest.approx(0.01 / np.sqrt(3))
    assert diff["verdict"] == "beats" and r.comparison().startswith("the recipe beats the best baseline (ros) in macro-F1: +0.030")
    assert r.difference(baseline="none")["macro_f1"] == pytest.approx(0.44)
    # one seed: over its classifiers, and the line says what that leaves out
    r = result([[0.90, 0.93, 0.91, 0.94]], [[0.91, 0.91, 0.92, 0.92]], [[0.5] * 4])
    diff = r.difference()
    assert diff["over"] == "classifiers" and diff["n"] == 4 and diff["macro_f1"] == pytest.approx(0.005)
    assert diff["stderr"] == pytest.approx(np.std([-0.01, 0.02, -0.01, 0.02], ddof=1) / 2)
    assert diff["verdict"] == "is level with" and "leave out the expansion's own randomness" in r.comparison()
    # one seed, one classifier: only the sign
    r = result([[0.90]], [[0.91]], [[0.5]])
    assert r.difference()["stderr"] is None and r.difference()["verdict"] == "does not beat" and "no standard error" in r.comparison()
    assert result([[0.9]], [[0.9]], [[0.5]]).difference("smote") is None  # a method that was not run
    # the same scores on every seed (e.g. auto chose copies, which is ros): no number of runs tells them apart
    line = result([[0.90], [0.92]], [[0.90], [0.92]], [[0.5], [0.5]]).comparison()
    assert "the same score on every one of 2 seeds" in line and "can tell them apart" not in line


@pytest.mark.parametrize("difference, stderr, expected", [
    (0.02, 0.005, "beats"), (0.01, 0.005, "is level with"), (-0.01, 0.005, "is level with"), (-0.011, 0.005, "is below"),
    (0.0, 0.0, "is level with"), (0.001, 0.0, "beats"), (0.01, None, "beats"), (0.0, None, "does not beat"), (-0.01, None, "does not beat"),
])
def test_verdict(difference, stderr, expected):
    assert verdict(difference, stderr) == expected


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


def test_a_method_named_twice_runs_once(imbalanced, tmp_path):
    d = utility(imbalanced, recipe(tmp_path), seeds=1, steps=1, methods=["ros", "ros", "none"]).to_dict()
    assert list(d["methods"]) == ["ros", "none"] and len(d["methods"]["ros"]["macro_f1"]["values"]) == 1 and len(d["train_sizes"]["ros"]) == 1


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


def test_utility_with_a_test_set_needs_one_image_per_class(imbalanced, other3, tmp_path):
    single = imbalanced[np.concatenate([np.flatnonzero(imbalanced.labels < 2), np.flatnonzero(imbalanced.labels == 2)[:1]])]
    with pytest.raises(DataError, match=r"\['7'\] have fewer than 2 images.*or give a separate test set"):
        utility(single, recipe(tmp_path), seeds=1, steps=1, methods=["none"])
    result = utility(single, recipe(tmp_path), seeds=1, steps=1, methods=["none"], test=other3)
    assert result.sizes["none"] == [43] and result.settings["test_size"] == 90 and not result.notes
    empty = single[np.flatnonzero(single.labels < 2)]
    with pytest.raises(DataError, match=r"\['7'\] have no images in the data"):
        utility(empty, recipe(tmp_path), seeds=1, steps=1, methods=["none"], test=other3)


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


def test_a_score_the_test_set_cannot_give_is_null_in_json(imbalanced, other3, tmp_path):
    # a test set without the minority class ('7', 8 images): minority recall has no value; JSON has no NaN
    import json

    test = other3[np.flatnonzero(other3.labels != 2)]
    d = utility(imbalanced, recipe(tmp_path), seeds=2, steps=1, methods=["none", "ros"], test=test).to_dict()
    text = json.dumps(d, allow_nan=False)  # raises on NaN
    assert json.loads(text)["methods"]["ros"]["minority_recall"]["mean"] is None
    assert d["methods"]["ros"]["macro_f1"]["mean"] is not None


def test_expand_data_refuses_an_expansions_output_as_expand_does(imbalanced, tmp_path):
    # probe: expanding an expansion's rows again relabelled its classical/SMOTE/copy rows as real, parents lost
    first = expand_data(imbalanced, recipe(tmp_path)).data
    with pytest.raises(DataError, match=r"expand_data's images: \d+ of its \d+ images are synthetic \(classical \d+, smote \d+\), an expansion's output"):
        expand_data(first, recipe(tmp_path, mix={"copy": 1.0}))
