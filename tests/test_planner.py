"""The planner's arithmetic: exact counts, targets, caps, tiny classes, redistribution."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pydantic import ValidationError

from augmentgan.planner import SOURCES, PlanConfig, largest_remainder, make_plan
from augmentgan.errors import ConfigError

NAMES = ("a", "b", "c", "d")


def test_largest_remainder_worked_example() -> None:
    # quotas 3.333.., 3.333.., 3.333.. -> floors 3, 3, 3, the one leftover goes to the first tie
    assert largest_remainder(10, {"x": 1, "y": 1, "z": 1}) == {"x": 4, "y": 3, "z": 3}
    # quotas 4.5, 2.7, 1.8 -> floors 4, 2, 1; leftovers (2) to .8 then .7
    assert largest_remainder(9, {"x": 0.5, "y": 0.3, "z": 0.2}) == {"x": 4, "y": 3, "z": 2}
    assert largest_remainder(0, {"x": 0.5, "y": 0.5}) == {"x": 0, "y": 0}


def test_largest_remainder_is_exact_and_within_one_of_the_quota() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 5))
        w = dict(zip("abcd", rng.dirichlet(np.ones(k)).tolist()))
        total = int(rng.integers(0, 5000))
        parts = largest_remainder(total, w)
        assert sum(parts.values()) == total
        for name, n in parts.items():
            assert abs(n - total * w[name]) < 1 + 1e-9


def test_max_target_split_exactly_by_the_mix() -> None:
    plan = make_plan([100, 40, 7, 100], NAMES, PlanConfig(mix={"gan": 0.5, "classical": 0.3, "smote": 0.2}))
    b = plan.classes[1]
    assert (b.target, b.add) == (100, {"gan": 30, "classical": 18, "smote": 12, "copy": 0, "latent-smote": 0, "pseudo": 0})
    c = plan.classes[2]  # deficit 93: quotas 46.5, 27.9, 18.6 -> 46, 27, 18 + leftovers to .9, .6 -> 46, 28, 19
    assert c.add == {"gan": 46, "classical": 28, "smote": 19, "copy": 0, "latent-smote": 0, "pseudo": 0} and c.target == 100
    assert plan.classes[0].synthetic == 0 and plan.classes[3].synthetic == 0
    assert plan.total == 400


def test_random_counts_always_reach_the_target_exactly() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        counts = rng.integers(0, 60, 4).tolist()
        mix = dict(zip(SOURCES, rng.dirichlet(np.ones(4)).tolist()))
        ratio = [None, 0.5, 2.0][int(rng.integers(3))]
        plan = make_plan(counts, NAMES, PlanConfig(mix=mix, max_synthetic_ratio=ratio))
        for cp, real in zip(plan.classes, counts):
            assert cp.target == real + cp.synthetic
            assert all(n >= 0 for n in cp.add.values())
            assert cp.target <= max(counts)
            if ratio is not None:
                assert cp.synthetic <= ratio * real + 1e-9
            if real == 0:
                assert cp.synthetic == 0
            if real == 1:
                assert cp.add["smote"] == 0
            if ratio is None and real > 0:
                assert cp.target == max(counts)


@pytest.mark.parametrize(
    "target, expected",
    [("max", [50, 50, 50]), (30, [50, 30, 30]), (0.5, [50, 25, 25]), (2.0, [100, 100, 100]), ({"b": 40, 2: 12}, [50, 40, 12]), ({"a": 10}, [50, 20, 8])],
)
def test_targets(target, expected) -> None:  # noqa: ANN001
    plan = make_plan([50, 20, 8], ("a", "b", "c"), PlanConfig(target=target, mix={"copy": 1.0}))
    assert [c.target for c in plan.classes] == expected


def test_undersampling_is_opt_in() -> None:
    cfg = PlanConfig(target=30, mix={"copy": 1.0})
    assert [c.keep for c in make_plan([50, 20], ("a", "b"), cfg).classes] == [50, 20]
    plan = make_plan([50, 20], ("a", "b"), cfg.model_copy(update={"undersample": True}))
    assert [(c.keep, c.target) for c in plan.classes] == [(30, 30), (20, 30)]
    assert "undersampled from 50 to 30" in plan.classes[0].notes[0]


def test_undersampling_never_empties_a_class() -> None:
    for target in (0.001, {"a": 0}):  # a ratio that rounds to no image; a class asked to hold none
        with pytest.raises(ConfigError, match=r"cuts class 'a' \(50 images\) to none; raise the target or set plan.undersample: false"):
            make_plan([50, 20], ("a", "b"), PlanConfig(target=target, mix={"copy": 1.0}, undersample=True))
    assert [c.keep for c in make_plan([50, 20], ("a", "b"), PlanConfig(target={"a": 0}, mix={"copy": 1.0})).classes] == [50, 20]


@pytest.mark.parametrize("key, value", [("target", float("inf")), ("target", float("nan")), ("max_synthetic_ratio", float("inf")), ("max_synthetic_ratio", float("nan"))])
def test_infinite_targets_and_caps_are_refused_when_read(key, value) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="finite number|not a number of images"):
        PlanConfig(**{key: value})


def test_cap_lowers_the_target_and_says_so() -> None:
    plan = make_plan([100, 10], ("a", "b"), PlanConfig(mix={"gan": 0.5, "classical": 0.5}, max_synthetic_ratio=3))
    b = plan.classes[1]
    assert b.synthetic == 30 and b.target == 40 and b.add["gan"] == 15
    assert "lowered from 100 to 40" in b.notes[0]


def test_single_image_class_moves_smote_share_to_the_others() -> None:
    plan = make_plan([21, 1], ("a", "b"), PlanConfig(mix={"gan": 0.25, "classical": 0.25, "smote": 0.5}))
    b = plan.classes[1]
    assert b.add == {"gan": 10, "classical": 10, "smote": 0, "copy": 0, "latent-smote": 0, "pseudo": 0}
    assert any("smote impossible" in n for n in b.notes)
    only = make_plan([21, 1], ("a", "b"), PlanConfig(mix={"smote": 1.0})).classes[1]
    assert only.add["classical"] == 20 and any("classical used instead" in n for n in only.notes)


def test_disabled_source_and_empty_class() -> None:
    plan = make_plan([10, 4, 0], ("a", "b", "c"), PlanConfig(mix={"gan": 0.5, "copy": 0.5}), available_sources=("classical", "smote", "copy"))
    assert plan.classes[1].add == {"gan": 0, "classical": 0, "smote": 0, "copy": 6, "latent-smote": 0, "pseudo": 0}
    assert any("gan is not enabled" in n for n in plan.notes)
    c = plan.classes[2]
    assert c.target == 0 and c.synthetic == 0 and "no source can make samples" in c.notes[0]


@pytest.mark.parametrize(
    "kwargs, word",
    [({"mix": {"gan": 0.5, "classical": 0.4}}, "sum to 1"), ({"mix": {"gans": 1.0}}, "gans"), ({"target": -3}, "> 0"), ({"target": "most"}, "target"), ({"mix": {"gan": 1.2, "copy": -0.2}}, ">= 0")],
)
def test_bad_configs_are_refused(kwargs, word) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match=word):
        PlanConfig(**kwargs)


def test_unknown_class_in_a_dict_target() -> None:
    with pytest.raises(ConfigError, match=r"unknown class 'zebra'.*\['a', 'b'\]"):
        make_plan([5, 3], ("a", "b"), PlanConfig(target={"zebra": 10}))


def test_latent_smote_is_a_source_that_needs_two_images() -> None:
    plan = make_plan([10, 1, 4], ("a", "b", "c"), PlanConfig(mix={"latent-smote": 0.5, "copy": 0.5}))
    assert plan.classes[2].add["latent-smote"] == 3 and plan.classes[2].add["copy"] == 3
    b = plan.classes[1]
    assert b.add["latent-smote"] == 0 and b.add["copy"] == 9 and "latent-smote impossible (1 image, latent-smote needs 2)" in b.notes[0]
    assert plan.to_dict()["per_source"]["latent-smote"] == 3
    assert PlanConfig.model_validate({"mix": {"latent-smote": 1.0}}).mix == {"latent-smote": 1.0}


def test_pseudo_is_off_by_default_and_not_an_auto_candidate() -> None:
    cfg = PlanConfig()
    assert "pseudo" not in cfg.mix and "pseudo" not in cfg.auto.sources and cfg.pseudo_min_confidence == 0.9
    assert make_plan([10, 4], ("a", "b"), cfg).source_total("pseudo") == 0
    with pytest.raises(ValidationError, match="pseudo cannot be scored by plan.mix auto"):
        PlanConfig.model_validate({"mix": "auto", "auto": {"sources": ["copy", "pseudo"]}})
    with pytest.raises(ValidationError, match="pseudo_min_confidence"):
        PlanConfig(pseudo_min_confidence=1.5)


def test_pseudo_shortfall_goes_to_the_other_sources_and_is_recorded() -> None:
    cfg = PlanConfig(mix={"copy": 0.5, "pseudo": 0.5})
    plan = make_plan([20, 10, 10, 4], NAMES, cfg, capacity={1: {"pseudo": 2}, 2: {"pseudo": 50}, 3: {"pseudo": 0}})
    b, c, d = plan.classes[1:]
    assert (b.add["pseudo"], b.add["copy"], b.target, b.shortfall) == (2, 8, 20, {"pseudo": 3})
    assert "pseudo has 2 image(s) for this class, short of its quota by 3: the shortfall goes to copy +3" in b.notes
    assert (c.add["pseudo"], c.add["copy"], c.shortfall, c.notes) == (5, 5, {}, [])  # enough supply: untouched
    assert (d.add["pseudo"], d.add["copy"], d.target, d.shortfall) == (0, 16, 20, {"pseudo": 8})
    assert plan.to_dict()["classes"][1]["shortfall"] == {"pseudo": 3}
    # pseudo alone: the shortfall goes to the fallback (classical), as for any source that cannot serve a class
    alone = make_plan([20, 10], ("a", "b"), PlanConfig(mix={"pseudo": 1.0}), capacity={1: {"pseudo": 4}}).classes[1]
    assert (alone.add["pseudo"], alone.add["classical"], alone.target) == (4, 6, 20)
    assert any("goes to classical +6 (the fallback" in n for n in alone.notes)
    # several sources: the shortfall is split in proportion to the others' shares, counts stay exact
    three = make_plan([40, 10], ("a", "b"), PlanConfig(mix={"pseudo": 0.5, "classical": 0.25, "smote": 0.25}), capacity={1: {"pseudo": 5}}).classes[1]
    assert three.add == {"gan": 0, "classical": 13, "smote": 12, "copy": 0, "latent-smote": 0, "pseudo": 5} and three.target == 40  # 15/8/7, then +5 +5


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"target": "min"}, r"'min' is not a target: use max .*a count .*a ratio .*\{class: count\}"),
        ({"mix": "autox"}, r"'autox' is not a mix: use auto or \{source: fraction\}"),
        # a count written as a float (500.0, or --set plan.target=1e2) was read as 500 x the largest class
        ({"target": 500.0}, r"target 500 is read as a ratio of the largest class \(500 x it\); a ratio is at most 10, and a count of images is "
                            r"written without a decimal point \(e.g. 500\)"),
        ({"mix": {"copy": 0.5, "latent_smote": 0.5}}, r"unknown source\(s\) \['latent_smote'\] in the mix: the sources are gan, classical, smote, copy, latent-smote"),
    ],
)
def test_a_wrong_target_or_mix_gets_one_message_with_the_forms_it_can_take(changes: dict, says: str) -> None:
    # not pydantic's list of why the value is none of the union's types
    with pytest.raises(ValidationError) as err:
        PlanConfig(**changes)
    assert err.value.error_count() == 1 and "Input should be" not in str(err.value)
    assert re.search(says, str(err.value)), str(err.value)
