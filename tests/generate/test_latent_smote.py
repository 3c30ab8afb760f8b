"""The latent-smote source: parents recovered from imbalanced-learn's output, provenance in HDF5 and folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentgan.data import load
from augmentgan.data.hdf5 import read_hdf5_extra
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError
from augmentgan.generate.encode import EncodeSettings
from augmentgan.generate.latent_smote import DEFAULT_STEP, anchor_residual, latent_smote, parent_quantile, partner_step, segment_parents
from augmentgan.recipe import load_recipe
from augmentgan.pipeline import expand

FAST = EncodeSettings(encoder_steps=60, refine_steps=60, feature_weight=0.0, seed=1)


def test_segment_parents_finds_both_ends() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    y = np.repeat([0, 1], 10)
    a, b = np.array([0, 3, 12, 15]), np.array([4, 7, 18, 11])
    lam = np.array([0.2, 0.9, 0.5, 0.35])
    new = X[a] + lam[:, None] * (X[b] - X[a])
    p1, p2 = segment_parents(X, y, new, y[a])
    near = np.where(lam <= 0.5, a, b)
    far = np.where(lam <= 0.5, b, a)
    assert (p1 == near).all() and (p2 == far).all()
    off = X[0] + 3.0  # on no segment: nearest parent of its class, no second one
    p1, p2 = segment_parents(X, y, off[None], np.array([0]))
    assert p2[0] == -1 and y[p1[0]] == 0


def test_latent_smote_parents_are_of_the_class_and_reconstructed_well(run_dir: Path, real: LabeledImages) -> None:
    result = latent_smote(run_dir, real, {1: 10, 2: 20}, seed=2, quantile=0.8, settings=FAST)
    s = result.samples
    assert np.bincount(s.labels, minlength=3).tolist() == [0, 10, 20] and (s.source == Source.latent_smote).all()
    assert (real.labels[s.parent] == s.labels).all() and (result.parent2 >= 0).all()
    assert (real.labels[result.parent2] == s.labels).all() and (s.parent != result.parent2).all()
    # parents come from the better-reconstructed images of their class only
    for c, name in ((1, "one"), (2, "two")):
        used = np.union1d(s.parent[s.labels == c], result.parent2[s.labels == c])
        assert (result.codes.error[used] <= result.thresholds[name] + 1e-7).all()
        assert result.excluded[name] >= 1
    assert np.isnan(result.codes.error[real.labels == 0]).all()  # plain SMOTE: a class that does not grow is not encoded
    with pytest.raises(DataError, match="needs at least 2"):
        latent_smote(run_dir, real[np.r_[0:40, 40:64, 64]], {2: 3}, seed=0, settings=FAST)


def test_residual_anchor_keeps_the_real_parent_and_takes_only_the_change_from_g(run_dir: Path, real: LabeledImages) -> None:
    counts = {1: 10, 2: 20}
    plain = latent_smote(run_dir, real, counts, seed=2, quantile=0.9, settings=FAST, anchor="none")
    anchored = latent_smote(run_dir, real, counts, seed=2, quantile=0.9, settings=FAST)  # residual: the default
    p = anchored.samples.parent
    # the same codes, parents and labels: anchoring changes pixels only
    assert np.array_equal(p, plain.samples.parent) and np.array_equal(anchored.parent2, plain.parent2)
    assert np.array_equal(anchored.samples.labels, plain.samples.labels) and (real.labels[p] == anchored.samples.labels).all()
    # sample = real parent + (G(new code) - G(parent's code)), clipped
    rec = anchored.codes.reconstructions[p].astype(np.int32)
    want = np.clip(real.images[p].astype(np.int32) + plain.samples.images.astype(np.int32) - rec, 0, 255)
    assert np.array_equal(anchored.samples.images, want.astype(np.uint8))
    # anchored to real images: this barely trained G draws its parents badly (its reconstruction error),
    # so its own decodings are far from the parents; the anchored samples differ from them only by G's
    # change along the segment
    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(len(a), -1).mean(axis=1))

    near, far = dist(anchored.samples.images, real.images[p]), dist(plain.samples.images, real.images[p])
    assert near.mean() < 0.6 * far.mean(), (near.mean(), far.mean())
    assert not np.array_equal(anchored.samples.images, real.images[p])  # not copies: G's change is there
    with pytest.raises(ConfigError, match="latent_smote.anchor 'pixels'"):
        latent_smote(run_dir, real, counts, seed=2, settings=FAST, anchor="pixels")


def test_the_parents_quantile_defaults_to_every_image_with_the_residual_anchor(tmp_path: Path) -> None:
    # residual keeps the parent's real pixels, so a badly reconstructed image is still a good parent;
    # G's decoding alone leaves out each class's worst-reconstructed tenth
    assert parent_quantile(None, "residual") == 1.0 and parent_quantile(None, "none") == 0.9 and parent_quantile(0.5, "residual") == 0.5
    with pytest.raises(ConfigError, match="latent_smote.quantile 1.5"):
        parent_quantile(1.5, "none")
    path = tmp_path / "r.yaml"
    path.write_text("data: {path: builtin:digits-lt}\noutput: {path: out}\n")
    ls = load_recipe(path).latent_smote
    assert ls.anchor == "residual" and ls.quantile is None
    with pytest.raises(ConfigError, match="anchor"):
        load_recipe(path, ["latent_smote.anchor=pixels"])


def test_anchor_residual_clips_and_works_in_chunks() -> None:
    rng = np.random.default_rng(0)
    shape = (2500, 3, 2, 1)  # more rows than one chunk
    decoded, parents, rec = (rng.integers(0, 256, shape).astype(np.uint8) for _ in range(3))
    out = anchor_residual(decoded, parents, rec)
    want = np.clip(parents.astype(int) + decoded.astype(int) - rec.astype(int), 0, 255)
    assert out.dtype == np.uint8 and np.array_equal(out, want) and out.min() == 0 and out.max() == 255
    assert np.array_equal(anchor_residual(rec, parents, rec), parents)  # no change in G: the parent itself


def test_partners_all_moves_each_real_parent_a_bounded_step_towards_another_class(run_dir: Path, real: LabeledImages) -> None:
    counts = {1: 10, 2: 20}

    def run(step: float, anchor: str = "residual", seed: int = 2):
        return latent_smote(run_dir, real, counts, seed=seed, partners="all", step=step, settings=FAST, anchor=anchor)

    wide = run(1.0)
    s = wide.samples
    assert np.bincount(s.labels, minlength=3).tolist() == [0, 10, 20] and (s.source == Source.latent_smote).all()
    # the parent is of the sample's class, the partner of another one; every class was encoded (class 0 only gives partners)
    assert (real.labels[s.parent] == s.labels).all() and (real.labels[wide.parent2] != s.labels).all()
    assert not np.isnan(wide.codes.error).any() and (real.labels[wide.parent2] == 0).any()
    assert any("partners all" in n for n in wide.notes)
    # the same draws at a tenth of the step: the same parents and partners, samples closer to their parents,
    # and a step near 0 gives the parents themselves (residual anchor: parent + G's change, which vanishes)
    narrow, still = run(0.1), run(1e-6)
    assert np.array_equal(narrow.samples.parent, s.parent) and np.array_equal(narrow.parent2, wide.parent2)

    def moved(r) -> float:
        return float(np.abs(r.samples.images.astype(np.int32) - real.images[r.samples.parent].astype(np.int32)).mean())

    assert moved(wide) > 2 * moved(narrow) > 0, (moved(wide), moved(narrow))
    assert moved(still) < 0.05 * moved(wide), (moved(still), moved(wide))
    # G's own decoding at the partner's end (step 1, anchor none) is pulled towards the partner's class:
    # closer to the partner's reconstruction than at step 0.1
    far, near = run(1.0, "none"), run(0.1, "none")
    rec = wide.codes.reconstructions[wide.parent2].astype(np.float64)
    assert np.abs(far.samples.images - rec).mean() < np.abs(near.samples.images - rec).mean()
    # one seed, one draw; another seed, other parents
    assert np.array_equal(run(1.0).samples.images, s.images) and not np.array_equal(run(1.0, seed=3).samples.parent, s.parent)


def test_the_step_belongs_to_partners_all(tmp_path: Path) -> None:
    assert partner_step("all", None) == DEFAULT_STEP and partner_step("all", 0.2) == 0.2 and partner_step("class", None) == 1.0
    with pytest.raises(ConfigError, match="applies to partners all only"):
        partner_step("class", 0.3)
    with pytest.raises(ConfigError, match="latent_smote.step 1.5"):
        partner_step("all", 1.5)
    with pytest.raises(ConfigError, match="latent_smote.partners 'any'"):
        partner_step("any", None)
    path = tmp_path / "r.yaml"
    path.write_text("data: {path: builtin:digits-lt}\noutput: {path: out}\nlatent_smote: {step: 0.3}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml.*latent_smote\.step applies to partners all only"):
        load_recipe(path)
    ls = load_recipe(path, ["latent_smote.partners=all"]).latent_smote
    assert ls.partners == "all" and ls.step == 0.3


def test_expand_with_partners_all_records_the_other_class_as_second_parent(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = {
        "seed": 1, "data": {"path": str(run_dir.parent / "real.h5")}, "holdout": {"fraction": 0.0}, "gan": {"run": str(run_dir)},
        "latent_smote": {"encoder_steps": 30, "refine_steps": 10, "feature_weight": 0.0, "partners": "all", "step": 0.5},
        "output": {"path": str(out)},
    }
    result = expand(recipe, overrides=["plan.mix={latent-smote: 1.0}"])
    train = load(out / "train.h5")
    n_real = int((train.source == Source.real).sum())
    derived, p2 = train[n_real:], read_hdf5_extra(out / "train.h5")["parent2"][n_real:]
    assert (derived.source == Source.latent_smote).all() and (train.class_counts() == 40).all()
    assert (train.labels[derived.parent] == derived.labels).all() and (train.labels[p2] != derived.labels).all() and (p2 < n_real).all()
    assert any("partners all" in n for n in result.notes)
    assert load_recipe(out / "recipe.yaml").latent_smote.partners == "all"


@pytest.mark.parametrize("fmt", ["h5", "folder"])
def test_expand_with_latent_smote_alone_records_both_parents(fmt: str, run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = {
        "seed": 1, "data": {"path": str(run_dir.parent / "real.h5")}, "holdout": {"fraction": 0.0},
        "gan": {"run": str(run_dir)}, "latent_smote": {"encoder_steps": 30, "refine_steps": 10, "feature_weight": 0.0},
        "output": {"path": str(out), "format": fmt},
    }
    result = expand(recipe, overrides=["plan.mix={latent-smote: 1.0}"])
    assert result.plan.mix == {"latent-smote": 1.0}
    train = load(out / ("train.h5" if fmt == "h5" else "train"))
    n_real = int((train.source == Source.real).sum())
    derived = train[n_real:]
    assert (derived.source == Source.latent_smote).all() and (train.class_counts() == 40).all()
    if fmt == "h5":
        parent2 = read_hdf5_extra(out / "train.h5")["parent2"]
    else:
        rows = list(csv.DictReader((out / "train" / "manifest.csv").open(encoding="utf-8")))
        assert {r["source"] for r in rows} == {"real", "latent-smote"}
        assert all(r["file"].split("/")[1].startswith(r["source"] + "-") for r in rows)
        order = {r["file"]: i for i, r in enumerate(rows)}
        parent2 = np.array([int(r["parent2"]) for r in sorted(rows, key=lambda r: order[r["file"]])])
    assert (parent2[:n_real] == -1).all()
    p2 = parent2[n_real:]
    assert (train.labels[derived.parent] == derived.labels).all() and (train.labels[p2] == derived.labels).all()
    assert (derived.parent < n_real).all() and (p2 < n_real).all() and (derived.parent != p2).all()
    counts = list(csv.DictReader((out / "counts.csv").open(encoding="utf-8")))
    assert [int(r["latent-smote"]) for r in counts] == [0, 16, 28]
    assert any("latent-smote:" in n and "quantile" in n for n in result.notes)
    assert "latent-smote samples between their parents" in (out / "report.html").read_text(encoding="utf-8")


def test_latent_smote_classical_passes_each_sample_through_the_pipeline_and_keeps_the_draws(run_dir: Path, tmp_path: Path) -> None:
    # a pipeline whose effect is known exactly (a mirror, every time): with latent_smote.classical the
    # latent-smote rows are the plain run's rows mirrored - same parents, same second parents - in the
    # fixed mix and in plan.mix auto's export alike; the real rows are untouched
    flip = [{"name": "HorizontalFlip", "params": {"p": 1.0}}]

    def run(name: str, mix: object, on: bool) -> tuple[LabeledImages, np.ndarray]:
        recipe = {**_auto_recipe(run_dir, tmp_path / name, ["latent-smote"]), "classical": {"pipeline": flip}}
        recipe["latent_smote"] = {**recipe["latent_smote"], "classical": on}
        recipe["plan"] = {**recipe["plan"], "mix": mix}
        notes = expand(recipe).notes
        assert any("passed once through classical.pipeline" in n for n in notes) == on
        return load(tmp_path / name / "train.h5"), read_hdf5_extra(tmp_path / name / "train.h5")["parent2"]

    plain, p2_plain = run("plain", {"latent-smote": 1.0}, False)
    fixed, p2_fixed = run("fixed", {"latent-smote": 1.0}, True)
    auto, p2_auto = run("auto", "auto", True)
    synthetic = plain.source == Source.latent_smote
    assert synthetic.sum() == 44
    for got, p2 in ((fixed, p2_fixed), (auto, p2_auto)):
        assert np.array_equal(got.source, plain.source) and np.array_equal(got.parent, plain.parent) and np.array_equal(p2, p2_plain)
        assert np.array_equal(got.images[~synthetic], plain.images[~synthetic])
        assert np.array_equal(got.images[synthetic], plain.images[synthetic][:, :, ::-1])
    assert not np.array_equal(fixed.images[synthetic], plain.images[synthetic])  # the samples are not mirror-symmetric
    assert load_recipe(tmp_path / "fixed" / "recipe.yaml").latent_smote.classical is True


def _auto_recipe(run_dir: Path, out: Path, sources: list[str]) -> dict:
    return {
        "seed": 1, "data": {"path": str(run_dir.parent / "real.h5")}, "holdout": {"fraction": 0.0}, "gan": {"run": str(run_dir)},
        "latent_smote": {"encoder_steps": 30, "refine_steps": 10, "feature_weight": 0.0},
        "plan": {"mix": "auto", "auto": {"sources": sources, "steps": 20, "folds": 2}}, "output": {"path": str(out)},
    }


def test_auto_mix_scores_latent_smote_and_exports_it_without_encoding_again(run_dir: Path, tmp_path: Path) -> None:
    # scored beside copy: a candidate with a score per fold, and whatever wins is exported
    scored = expand(_auto_recipe(run_dir, tmp_path / "scored", ["copy", "latent-smote"]))
    names = [c.name for c in scored.mix_decision.candidates]
    assert names[:2] == ["copy", "latent-smote"] and all(len(c.fold_scores) == 2 for c in scored.mix_decision.candidates)
    # auto with latent-smote alone exports the same rows as the fixed mix {latent-smote: 1}: the codes
    # found for the auto mix are the ones the fixed mix finds (same images, settings and seed)
    alone = expand(_auto_recipe(run_dir, tmp_path / "auto", ["latent-smote"]))
    assert alone.mix_decision.mix == {"latent-smote": 1.0}
    fixed = expand({**_auto_recipe(run_dir, tmp_path / "fixed", ["copy"]), "plan": {"mix": {"latent-smote": 1.0}}})
    a, b = load(tmp_path / "auto" / "train.h5"), load(tmp_path / "fixed" / "train.h5")
    assert (a.source == Source.latent_smote).sum() == 44 and np.array_equal(a.images, b.images) and np.array_equal(a.parent, b.parent)
    assert np.array_equal(read_hdf5_extra(tmp_path / "auto" / "train.h5")["parent2"], read_hdf5_extra(tmp_path / "fixed" / "train.h5")["parent2"])


def test_auto_mix_latent_smote_of_a_fold_interpolates_only_its_training_part(run_dir: Path, real: LabeledImages, monkeypatch) -> None:
    """The fold's validation images must not be parents: their codes would carry them into the fold's training set."""
    import augmentgan.generate.latent_smote as module
    from augmentgan.automix import choose_mix
    from augmentgan.gan.checkpoint import open_generator
    from augmentgan.pipeline import _LatentCodes, fold_builder
    from augmentgan.planner import AutoMixConfig
    from augmentgan.recipe import load_recipe

    recipe = load_recipe({"seed": 0, "data": {"path": "unused"}, "output": {"path": "unused"}, "plan": {"mix": "auto"}})
    cpu = torch.device("cpu")
    G, info = open_generator(run_dir).generator(ema=True, device=cpu)
    codes = module.encode_for_smote(G, info, real, {1: 1, 2: 1}, settings=FAST, device=cpu)
    latent = _LatentCodes(G, info, cpu, codes)
    decoded: list[tuple[np.ndarray, np.ndarray]] = []
    real_decode = module.decode
    monkeypatch.setattr(module, "decode", lambda G, z, y, *a: decoded.append((z, y)) or real_decode(G, z, y, *a))
    on_part_segments: list[bool] = []

    def factory(part_rows: np.ndarray):
        fn = latent.source(recipe, real)(part_rows)

        def checked(keep, counts, seed):
            out = fn(keep, counts, seed)
            z, y = decoded[-1]  # every new code lies between two codes of the part's images of its class
            X, labels = codes.codes[part_rows], real.labels[part_rows]
            encoded = ~np.isnan(X[:, 0])
            _, p2 = module.segment_parents(X[encoded].astype(np.float64), labels[encoded], z.astype(np.float64), y)
            on_part_segments.append(bool(len(z) and (p2 >= 0).all()))
            return out

        return checked

    decision = choose_mix(real, AutoMixConfig(sources=["copy", "latent-smote"], steps=10, blends=False, folds=2), fold_builder(recipe), seed=0,
                          latent=factory, latent_classes=latent.classes)
    assert len(on_part_segments) == 2 and all(on_part_segments) and [c.name for c in decision.candidates] == ["copy", "latent-smote"]
    assert "latent-smote" in decision.unavailable[0]  # class 0 was not encoded: ruled out with a reason


def test_auto_split_latent_smote_interpolates_only_between_images_the_gan_trained_on(run_dir: Path, tmp_path: Path, monkeypatch) -> None:
    """plan.auto.split: the codes are of every training image, the scored candidates may use only those of the GAN's part."""
    import augmentgan.automix as automix
    from augmentgan.pipeline import _LatentCodes

    held: list[LabeledImages] = []
    bases: list[LabeledImages] = []
    real_choose, real_smote = automix.choose_mix, _LatentCodes.smote

    def choose(fit, cfg, build, **kw):
        held.append(kw["validation"])
        return real_choose(fit, cfg, build, **kw)

    def smote(self, recipe, train, rows, counts, seed, callback=None):
        bases.append(train if rows is None else train[rows])
        return real_smote(self, recipe, train, rows, counts, seed, callback)

    monkeypatch.setattr(automix, "choose_mix", choose)
    monkeypatch.setattr(_LatentCodes, "smote", smote)
    recipe = _auto_recipe(run_dir, tmp_path / "out", ["copy", "latent-smote"])
    recipe["plan"]["auto"]["split"] = 0.25
    result = expand(recipe)
    (validation,) = held
    keys = lambda d: {bytes(x) for x in d.images.reshape(len(d), -1)}  # noqa: E731
    scored = 2 * sum("latent-smote" in c.mix for c in result.mix_decision.candidates)  # 2 proxy seeds per candidate with it
    exported = result.mix_decision.mix.get("latent-smote", 0) > 0
    assert validation.class_counts().tolist() == [10, 6, 3] and scored >= 2 and len(bases) == scored + exported
    for base in bases[:scored]:  # scored: the GAN's part only, every image of it
        assert len(base) == 57 and not keys(base) & keys(validation)
    if exported:
        assert len(bases[-1]) == 76  # the export interpolates between the codes of all training images


def test_latent_smote_with_the_joint_encoder_through_a_recipe(run_dir: Path, bigan_run_dir: Path, tmp_path: Path) -> None:
    recipe = {
        "seed": 1, "data": {"path": str(run_dir.parent / "real.h5")}, "holdout": {"fraction": 0.0},
        "gan": {"run": str(bigan_run_dir)}, "latent_smote": {"encoder": "joint", "refine_steps": 5, "feature_weight": 0.0},
        "output": {"path": str(tmp_path / "out")},
    }
    result = expand(recipe, overrides=["plan.mix={latent-smote: 1.0}"])
    train = load(tmp_path / "out" / "train.h5")
    assert (train.class_counts() == 40).all() and (train.source == Source.latent_smote).sum() == 44
    assert any("latent-smote:" in n for n in result.notes)
    with pytest.raises(ConfigError, match=f"run {run_dir}.* has no jointly trained encoder.*bigan.weight=1"):
        expand({**recipe, "gan": {"run": str(run_dir)}, "output": {"path": str(tmp_path / "plain")}}, overrides=["plan.mix={latent-smote: 1.0}"])
    assert not (tmp_path / "plain" / "train.h5").exists()
