"""evaluate(): per-class and overall metrics on tiny digit sets with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError
from augmentgan.evaluate.evaluation import evaluate
from augmentgan.domain.features import find_inception_weights

FAST = dict(classifier_steps=60, cas_steps=80)


def as_synthetic(data: LabeledImages, source: Source = Source.gan) -> LabeledImages:
    return LabeledImages(data.images, data.labels, data.class_names, np.full(len(data), source.value, np.uint8))


def test_copies_of_the_real_data_are_perfect_and_fully_memorized(real3):
    result = evaluate(as_synthetic(real3, Source.copy), real3, cas=False, **FAST)
    for name, row in result.per_class.items():
        assert row["fid"] == pytest.approx(0.0, abs=1e-6), name
        assert row["precision"] == row["recall"] == row["coverage"] == 1.0
        assert row["memorization"] == 1.0 and row["diversity_ratio"] == pytest.approx(1.0) and row["mode_collapse"] is False
    assert result.overall["memorization"] == 1.0 and result.overall["mode_collapse_classes"] == []
    assert result.cas is None


def test_new_samples_of_the_real_distribution_are_not_memorized(real3, other3):
    result = evaluate(other3, real3, cas=False, **FAST)
    assert result.overall["memorization"] < 0.15
    assert result.overall["precision"] > 0.5 and result.overall["fid"] > 0


def test_a_collapsed_class_is_flagged(real3, other3):
    images = other3.images.copy()
    ones = np.flatnonzero(other3.labels == 1)
    images[ones] = images[ones[0]]  # class "1": one image repeated
    result = evaluate(LabeledImages(images, other3.labels, other3.class_names, other3.source), real3, cas=False, **FAST)
    assert result.per_class["1"]["mode_collapse"] is True and result.per_class["1"]["diversity_ratio"] < 1e-4  # one image: features equal up to float32 kernel noise (1e-7 on AVX-512 bf16 CPUs)
    assert result.per_class["0"]["mode_collapse"] is False
    assert result.overall["mode_collapse_classes"] == ["1"]


def test_cas_is_high_for_good_labels_and_low_for_shuffled_ones(real3, other3):
    good = evaluate(other3, real3, **FAST)
    shuffled_labels = np.random.default_rng(0).permutation(other3.labels)
    bad = evaluate(LabeledImages(other3.images, shuffled_labels, other3.class_names, other3.source), real3, **FAST)
    assert good.cas["accuracy"] > 0.85 and bad.cas["accuracy"] < 0.6
    assert set(good.cas["per_class_recall"]) == {"0", "1", "7"}
    assert good.overall["cas_accuracy"] == good.cas["accuracy"]


def test_real_rows_are_left_out_and_classes_matched_by_name(real3, other3):
    # an expanded set: real rows first, then synthetic ones; class order differs from the real data
    expanded = LabeledImages.concatenate([LabeledImages(real3.images, real3.labels, real3.class_names), other3])
    order = np.array([2, 0, 1])  # "0"->index 2 ...
    renamed = LabeledImages(expanded.images, order[expanded.labels], ("1", "7", "0"), expanded.source)
    result = evaluate(renamed, real3, cas=False, **FAST)
    assert any("90 real rows" in n for n in result.notes)
    assert {n: r["n_synth"] for n, r in result.per_class.items()} == {"0": 30, "1": 30, "7": 30}


def test_synthetic_images_are_resized_to_the_real_size(real3, other3):
    big = LabeledImages(np.repeat(np.repeat(other3.images, 2, axis=1), 2, axis=2), other3.labels, other3.class_names, other3.source)
    result = evaluate(big, real3, cas=False, **FAST)
    assert any("resized from 16x16x1" in n for n in result.notes)


def test_errors_name_the_problem(real3):
    with pytest.raises(DataError, match=rf"no synthetic samples \(every one of its {len(real3)} rows is marked real\).*, or pass --all-rows to evaluate every row"):
        evaluate(real3, real3, cas=False, **FAST)
    with pytest.raises(DataError, match=r"no synthetic samples \(it holds no images\)"):  # an empty generate output is not "all real"
        evaluate(real3[np.arange(0)], real3, cas=False, **FAST)
    strange = LabeledImages(real3.images, real3.labels, ("0", "1", "9"), np.full(len(real3), 3, np.uint8))
    with pytest.raises(DataError, match=r"\['9'\] are not in the real data"):
        evaluate(strange, real3, cas=False, **FAST)


def test_inception_without_local_weights_says_what_to_do(tmp_path, monkeypatch, real3):
    # with weights the Inception path cannot be tested offline (they would have to be downloaded)
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match=r"Inception-v3 weights not found at .*inception_v3_google-\*\.pth; download them yourself"):
        find_inception_weights()
    with pytest.raises(ConfigError, match="not found at .*missing.pth; download them yourself or use --features domain"):
        evaluate(as_synthetic(real3), real3, features="inception", inception_weights=tmp_path / "missing.pth", cas=False)


def test_a_real_set_without_some_classes_is_scored_on_those_it_has(real3, other3):
    # README: evaluate an expansion against its holdout, which has no image of a 1-image class
    holdout = real3.select_classes([0, 1])  # class '7' keeps its name and has no image
    result = evaluate(as_synthetic(other3), holdout, cas=False, **FAST)
    assert set(result.per_class) == {"0", "1"}
    assert any("class '7' has synthetic samples but no real images" in n for n in result.notes)


def test_all_rows_evaluates_images_that_record_no_provenance(real3, other3):
    # another generator's images (or a real split, the README's sanity check) read as real: --all-rows takes them all
    plain = LabeledImages(other3.images, other3.labels, other3.class_names)  # no provenance: every row "real"
    result = evaluate(plain, real3, cas=False, all_rows=True, **FAST)
    assert {n: r["n_synth"] for n, r in result.per_class.items()} == {"0": 30, "1": 30, "7": 30}
    assert result.overall["recall"] > 0.5 and result.overall["mode_collapse_classes"] == []


def test_a_class_the_synthetic_set_lacks_lowers_overall_recall_and_coverage(real3, other3):
    full = evaluate(as_synthetic(other3), real3, cas=False, **FAST)
    one = as_synthetic(other3)[np.flatnonzero(other3.labels == 0)]  # samples of class '0' only
    lacking = evaluate(one, real3, cas=False, **FAST)
    assert set(lacking.per_class) == {"0"}
    # two of three classes missed: overall recall and coverage fall to about a third of the full set's
    assert lacking.overall["recall"] < 0.5 * full.overall["recall"] and lacking.overall["coverage"] < 0.5 * full.overall["coverage"]
    assert lacking.overall["n_real"] == len(real3)
    assert any("count the 60 real images of 2 class(es) without synthetic samples as missed" in n for n in lacking.notes)
