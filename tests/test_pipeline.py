"""expand(recipe): exact balanced output, holdout isolation, caching, byte-identical reruns, atomicity."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import augmentgan
from augmentgan import pipeline
from augmentgan.data import load, save
from augmentgan.data.types import Source
from augmentgan.errors import OutputError, OutputExistsError
from augmentgan.pipeline import expand

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
NO_GAN = {
    "seed": 3,
    "data": {"path": "builtin:digits-lt"},
    "holdout": {"fraction": 0.25},
    "classical": {"pipeline": "light"},
    "plan": {"target": "max", "mix": {"classical": 0.5, "smote": 0.3, "copy": 0.2}},
}
# the quick-start recipe, tiny: a few G steps of a narrow GAN
TINY_GAN = ["gan.steps=2", "gan.batch=8", "gan.overrides.model.g_ch=4", "gan.overrides.model.d_ch=4", "gan.overrides.model.z_dim=8", "gan.overrides.model.embed_dim=8", "gan.overrides.optim.n_dis=1"]


def _recipe(out: Path, **changes) -> dict:  # noqa: ANN003
    return {**NO_GAN, "output": {"path": str(out), "format": "h5"}, **changes}


def _rows(images: np.ndarray) -> list[bytes]:
    return sorted(bytes(x) for x in images.reshape(len(images), -1))


def _steps(events: list) -> list[tuple[int, str]]:
    return [(e.done, e.info["name"]) for e in events if e.stage == "expand"]


EVERY_STEP = list(enumerate(pipeline.STAGES, start=1))  # what README "expand()" promises a progress callback: each step once, by name, in order


def test_no_gan_expansion_is_exact_isolated_and_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    events: list = []
    result = expand(_recipe(out), callback=events.append)
    assert _steps(events) == EVERY_STEP and {e.total for e in events if e.stage == "expand"} == {len(pipeline.STAGES)}
    train, holdout = load(out / "train.h5"), load(out / "holdout.h5")
    data = load("builtin:digits-lt")
    # balanced to the largest training class, every class exactly
    counts = train.class_counts()
    assert (counts == counts.max()).all() and counts.max() == result.plan.classes[0].target
    # holdout: stratified share of every class, untouched, and disjoint from the real training rows
    real = train[train.source == Source.real]
    assert (holdout.source == Source.real).all() and (holdout.parent == -1).all()
    assert len(real) + len(holdout) == len(data)
    assert _rows(np.concatenate([real.images, holdout.images])) == _rows(data.images)
    assert (holdout.class_counts() == np.rint(0.25 * data.class_counts()).clip(1)).all()
    # provenance: the real rows come first; every derived sample's parent is a real row of its class
    n_real = len(real)
    assert (train.source[:n_real] == Source.real).all()
    derived = train[n_real:]
    assert set(np.unique(derived.source).tolist()) == {Source.classical, Source.smote, Source.copy}
    has_parent = derived.parent >= 0
    assert has_parent[derived.source != Source.smote].all()
    assert (derived.parent < n_real).all() and (train.labels[derived.parent[has_parent]] == derived.labels[has_parent]).all()
    copies = derived[derived.source == Source.copy]
    assert (copies.images == train.images[copies.parent]).all()
    # the files beside the data
    rows = list(csv.DictReader((out / "counts.csv").open(encoding="utf-8")))
    table = train.counts_by_class_and_source()
    assert [int(r["total"]) for r in rows] == counts.tolist()
    assert [int(r["smote"]) for r in rows] == table[:, Source.smote].tolist()
    lock = json.loads((out / "lock.json").read_text(encoding="utf-8"))
    assert lock["output"]["train.h5"]["arrays_sha256"] == pipeline.arrays_sha256(train)
    assert lock["input"]["fingerprint"] == data.fingerprint() and lock["versions"]["albumentations"] == "2.0.8"
    assert "gan:" in (out / "recipe.yaml").read_text(encoding="utf-8")  # resolved: defaults included
    assert result.gan_cached is None and result.gan_run is None


def test_same_recipe_twice_gives_identical_arrays(tmp_path: Path) -> None:
    expand(_recipe(tmp_path / "a"))
    expand(_recipe(tmp_path / "b"))
    a, b = load(tmp_path / "a" / "train.h5"), load(tmp_path / "b" / "train.h5")
    for name in ("images", "labels", "source", "parent"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    lock_a = json.loads((tmp_path / "a" / "lock.json").read_text(encoding="utf-8"))
    lock_b = json.loads((tmp_path / "b" / "lock.json").read_text(encoding="utf-8"))
    lock_a.pop("recipe_sha256"), lock_b.pop("recipe_sha256")  # the recipes differ in output.path only
    assert lock_a == lock_b
    assert (tmp_path / "a" / "counts.csv").read_bytes() == (tmp_path / "b" / "counts.csv").read_bytes()
    other = expand(_recipe(tmp_path / "c", seed=4))
    assert other.lock["output"]["train.h5"]["arrays_sha256"] != lock_a["output"]["train.h5"]["arrays_sha256"]


def test_a_class_name_no_folder_can_have_is_refused_by_the_dry_run_too(tmp_path: Path) -> None:
    # the dry run passed and the real run failed with exit 5 (after any GAN training) on output.format folder
    np.savez(tmp_path / "ab.npz", x=np.random.default_rng(0).integers(0, 256, (40, 8, 8), dtype=np.uint8), y=np.arange(40) % 2,
             class_names=np.array(["a/b", "c"]))
    recipe = _recipe(tmp_path / "out", data={"path": str(tmp_path / "ab.npz")}, output={"path": str(tmp_path / "out"), "format": "folder"},
                     plan={"target": "max", "mix": {"copy": 1.0}})
    for dry_run in (True, False):
        with pytest.raises(OutputError, match=r"class name 'a/b' cannot be a folder name .*rename the class"):
            expand(recipe, dry_run=dry_run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ab.npz"]
    assert expand({**recipe, "output": {"path": str(tmp_path / "out"), "format": "h5"}}, dry_run=True).dry_run  # HDF5 keeps any name


@pytest.mark.parametrize("stage", ["_smote", "_counts_csv"])  # a compute stage; the last file written
def test_failure_in_the_middle_leaves_no_output(stage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("stage exploded")

    monkeypatch.setattr(pipeline, stage, boom)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="exploded"):
        expand(_recipe(out))
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        expand(_recipe(out))
    result = expand(_recipe(tmp_path / "dry"), dry_run=True)
    assert not (tmp_path / "dry").exists() and result.dry_run and result.train is None
    assert result.estimates["output_bytes_uncompressed"] == (result.plan.total + sum(result.holdout_counts.values())) * 64
    expand(_recipe(out, plan={"target": 20, "mix": {"copy": 1.0}, "undersample": True}), force=True)
    assert not (out / "keep.txt").exists() and (load(out / "train.h5").class_counts() == 20).all()


def test_force_never_replaces_the_input_or_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentgan.data import save
    from augmentgan.errors import ConfigError

    data = tmp_path / "in" / "data"
    save(load("builtin:digits-lt"), data, format="folder")
    (tmp_path / "work" / "deep").mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    monkeypatch.chdir(tmp_path / "work" / "deep")
    for out, why in [(data, "is the input"), (tmp_path / "in", "holds the input"), (tmp_path / "work", "is the current folder or a folder above it"),
                     (Path(""), "is the current folder"), (Path(".."), "is the current folder or a folder above it"),
                     (data / "expanded", "lies inside the input folder .*would take the output for a class of images")]:
        for dry_run in (True, False):  # the dry run refuses what the real run would
            with pytest.raises(ConfigError, match=why):
                expand(_recipe(out, data={"path": str(data)}), force=True, dry_run=dry_run)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_an_expansion_is_not_expanded_again_as_if_it_were_real(tmp_path: Path) -> None:
    first = expand(_recipe(tmp_path / "first"))
    made = first.train
    with pytest.raises(pipeline.DataError, match=r"train\.h5: \d+ of its \d+ images are synthetic \(classical \d+, smote \d+, copy \d+\), an expansion's output"):
        expand(_recipe(tmp_path / "again", data={"path": str(made)}), dry_run=True)
    assert not (tmp_path / "again").exists()
    expand(_recipe(tmp_path / "holdout", data={"path": str(first.holdout)}), dry_run=True)  # its holdout is all real: fine


def test_without_a_holdout_none_is_written_or_named(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "o")
    recipe["holdout"] = {"fraction": 0.0}
    result = expand(recipe)
    assert result.holdout is None and not (tmp_path / "o" / "holdout.h5").exists()
    lock = json.loads((tmp_path / "o" / "lock.json").read_text())
    assert list(lock["output"]) == ["train.h5"]  # it listed a holdout.h5 of 0 samples that was never written


def test_settings_the_run_cannot_use_are_said_not_silently_ignored(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "o")
    recipe["plan"] = {**recipe["plan"], "auto": {"split": 0.3, "folds": 5}}  # a fixed mix: auto never runs
    notes = expand(recipe, dry_run=True).notes
    assert "plan.auto.folds, plan.auto.split: ignored, used only with plan.mix: auto (this recipe's mix is fixed)" in notes
    assert not any("ignored" in n for n in expand(_recipe(tmp_path / "o"), dry_run=True).notes)
    folder = _recipe(tmp_path / "o")
    folder["output"] = {**folder["output"], "format": "folder", "compression": "lzf"}
    assert "output.compression: ignored, it applies to HDF5 output (output.format is folder)" in expand(folder, dry_run=True).notes


def test_single_image_class_stays_in_training_and_is_said(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path / "o", data={"path": "builtin:digits-lt"}, plan={"target": {"9": 8}, "mix": {"smote": 1.0}})
    recipe["holdout"] = {"fraction": 0.9}  # class 9 (8 images) keeps 1 for training: SMOTE cannot serve it
    result = expand(recipe, dry_run=True)
    nine = result.plan.classes[9]
    assert nine.real == 1 and nine.add["classical"] == 7 and nine.add["smote"] == 0
    assert any("smote impossible" in n for n in nine.notes)


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_shipped_recipe_plans(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    result = expand(path, overrides=[f"output.path={tmp_path / 'never'}"], dry_run=True)
    assert result.plan.total > 0 and not (tmp_path / "never").exists()


def test_quick_start_runs_and_caches_the_gan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    quick = next(p for p in RECIPES if p.name == "digits-lt.yaml")
    tiny = [*TINY_GAN, "plan.auto.steps=20", "plan.auto.folds=2"]  # the quick start's plan.mix auto with a cheaper proxy classifier and 2 folds
    events: list = []
    first = augmentgan.expand(quick, overrides=[*tiny, f"output.path={tmp_path / 'a'}", "gan.device=cpu"], callback=events.append)
    assert _steps(events) == EVERY_STEP  # plan.mix auto trains and chooses in step "gan", takes its samples in "generate"
    assert first.gan_cached is False and first.gan_run.parent == tmp_path / "cache" / "runs"
    train = load(tmp_path / "a" / "train.h5")
    assert (train.class_counts() == train.class_counts().max()).all()
    gan = train[train.source == Source.gan]
    assert len(gan) == first.plan.source_total("gan") and (gan.parent == -1).all()
    if len(gan):  # the samples auto took from its pool keep their latents' indexes
        _assert_gan_provenance(tmp_path / "a" / "train.h5")
    # the quick start chooses its mix (plan.mix: auto): the GAN was checked for every class it could grow
    growing = [c.name for c in first.plan.classes if c.target > c.real]
    assert sorted(first.mix_decision.gan) == sorted(growing) and sum(first.mix_decision.mix.values()) == pytest.approx(1.0)
    # same data + GAN settings: training skipped, and it says so; the output is the same
    cmd = [sys.executable, "-m", "augmentgan", "expand", str(quick), "--json", "--set", f"output.path={tmp_path / 'b'}", "--set", "gan.device=cpu"]
    for pair in tiny:
        cmd += ["--set", pair]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "AUGMENTGAN_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    assert second["gan_cached"] is True and any("training skipped" in n for n in second["notes"])
    assert second["lock"]["output"] == first.lock["output"]


def test_generation_and_filter_errors_name_the_recipe_keys_not_generate_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sampler's messages name `augmentgan generate`'s flags (--max-tries, --truncation, --filter);
    # an `expand` user sets recipe keys, and a bad filter is caught when the recipe is read
    from augmentgan.errors import ConfigError, GenerationError

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match=r"generate\.filters: unknown filter 'bogus'.*\(e\.g\. confidence:p=0\.9\)") as bad:
        expand(_recipe(tmp_path / "bad", generate={"filters": ["bogus"]}), overrides=TINY_GAN)
    assert "--filter" not in str(bad.value) and not (tmp_path / "cache").exists()  # refused before any GAN trains
    recipe = _recipe(tmp_path / "out", generate={"filters": ["confidence:p=0.9999"], "max_tries": 1}, plan={"target": 20, "mix": {"gan": 1.0}})
    with pytest.raises(GenerationError) as failed:
        expand(recipe, overrides=[*TINY_GAN, "gan.device=cpu"])
    message = str(failed.value)
    assert "generate.max_tries 1 x" in message and "raise generate.max_tries" in message and "lower generate.truncation" in message
    assert "--" not in message and not (tmp_path / "out").exists()


def test_the_readers_and_the_gan_settings_are_refused_in_recipe_terms_before_any_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # messages written for the commands' flags (--size, --skip-bad, --device...) name the recipe keys in expand,
    # and settings a real run would trip over only when the GAN starts fail the dry run too
    from PIL import Image

    from augmentgan.errors import ConfigError, DataError

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    for name, side in (("a", 8), ("b", 9)):
        (tmp_path / "mixed" / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.zeros((side, side), np.uint8)).save(tmp_path / "mixed" / name / f"{i}.png")
    (tmp_path / "mixed" / "a" / "broken.png").write_bytes(b"not a png")
    labels = np.repeat([0, 1], [12, 4])
    np.savez(tmp_path / "wide.npz", x_train=np.zeros((16, 8, 12), np.uint8), y_train=labels)
    np.savez(tmp_path / "huge.npz", x_train=np.zeros((16, 130, 130), np.uint8), y_train=labels)
    gan = {"target": 20, "mix": {"gan": 1.0}}
    cases = [
        ({"data": {"path": str(tmp_path / "wide.npz"), "keys": "x,y"}}, DataError, r"has no array 'x' .*; set data\.keys: IMAGES,LABELS"),
        ({"data": {"path": str(tmp_path / "wide.npz"), "split": "val"}}, DataError, r"available splits: train \(set data\.split\); or set data\.keys: "),
        ({"data": {"path": str(tmp_path / "wide.npz")}, "plan": gan}, ConfigError, r"8x12, not square; set data\.size: N \(center crop"),
        ({"data": {"path": str(tmp_path / "huge.npz")}, "plan": gan}, ConfigError, r"largest supported size 128; set data\.size: 128 \(center crop"),
        ({"data": {"path": str(tmp_path / "mixed")}}, DataError, r"set data\.skip_bad: true to skip unreadable images"),
        ({"data": {"path": str(tmp_path / "mixed"), "skip_bad": True}}, DataError, r"set data\.size: N to center-crop"),
        ({"gan": {"device": "cuda"}, "plan": gan}, ConfigError, r"set gan\.device: cpu or auto"),
        ({"gan": {"precision": "fp16", "device": "cpu"}, "plan": gan}, ConfigError, r"gan\.precision fp16 needs a CUDA device.*set gan\.precision: auto"),
        ({"gan": {"run": str(tmp_path / "nowhere")}, "plan": gan}, ConfigError, r"gan\.run .*nowhere does not exist.*set gan\.run: null"),
    ]
    for changes, error, message in cases:
        if changes.get("gan", {}).get("device") == "cuda" and torch_cuda():
            continue
        for dry_run in (True, False):
            with pytest.raises(error, match=message) as info:
                expand(_recipe(tmp_path / "out", **changes), dry_run=dry_run)
            assert "--" not in str(info.value), info.value
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_a_truncation_for_a_class_the_data_lacks_is_refused_before_the_gan_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from augmentgan.errors import ConfigError

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path / "out", generate={"truncation": {"99": 0.5}}, plan={"target": 20, "mix": {"gan": 1.0}})
    for dry_run in (True, False):
        with pytest.raises(ConfigError, match=r"^generate\.truncation: unknown class '99'; classes are \['0', '1'"):
            expand(recipe, overrides=[*TINY_GAN, "gan.device=cpu"], dry_run=dry_run)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_expand_data_alone_reports_its_steps_from_first_to_last() -> None:
    # a progress bar built on done / total must start and finish: expand_data's own steps are 1..6 of 6
    events: list = []
    augmentgan.expand_data(load("builtin:digits-lt"), _recipe(Path("unused")), callback=events.append)
    steps = [(e.done, e.total, e.info["name"]) for e in events if e.stage == "expand"]
    assert steps == [(i, 6, name) for i, name in enumerate(("plan", "gan", "generate", "classical", "smote", "copy"), start=1)]


def test_a_folder_holdout_without_a_class_keeps_the_class_numbers_and_warns_with_its_own_path(tmp_path: Path) -> None:
    data = load("builtin:digits-lt")
    keep = np.concatenate([np.flatnonzero(data.labels == 9)[:1], np.flatnonzero(data.labels == 0)[:20], np.flatnonzero(data.labels == 1)[:12]])
    save(augmentgan.LabeledImages(data.images[keep], np.repeat([0, 1, 2], [1, 20, 12]), ("a", "b", "c")), tmp_path / "in.h5")
    recipe = _recipe(tmp_path / "out", data={"path": str(tmp_path / "in.h5")}, plan={"target": "max", "mix": {"copy": 1.0}})
    recipe["output"]["format"] = "folder"
    with pytest.warns(augmentgan.AugmentganWarning, match=r"\['a'\] have no samples and get no folder in (\S*/)?out/holdout;") as caught:
        expand(recipe)
    assert not any(".tmp" in str(w.message) for w in caught)
    holdout, train = load(tmp_path / "out" / "holdout"), load(tmp_path / "out" / "train")
    assert holdout.class_names == train.class_names == ("a", "b", "c") and holdout.class_counts()[0] == 0


def test_expand_data_needs_no_data_or_output_section_and_load_recipe_checks_what_validate_checks(tmp_path: Path) -> None:
    from augmentgan.errors import ConfigError

    done = augmentgan.expand_data(load("builtin:digits-lt"), {"seed": 1, "plan": {"mix": {"classical": 1.0}}})
    assert (done.data.class_counts() == done.data.class_counts().max()).all()
    (tmp_path / "r.yaml").write_text("plan: {mix: {copy: 1.0}}\n", encoding="utf-8")
    assert augmentgan.expand_data(load("builtin:digits-lt"), tmp_path / "r.yaml").plan.total > 0
    for pair, why in (("gan.preset=nope", "unknown GAN preset 'nope'"), ("classical.pipeline=nonesuch", "nonesuch")):
        with pytest.raises(ConfigError, match=why):
            augmentgan.load_recipe(_recipe(tmp_path / "o"), [pair])


def _assert_gan_provenance(path: Path) -> None:
    from augmentgan.data.hdf5 import read_hdf5_extra

    data, extra = load(path), read_hdf5_extra(path)
    gan = data.source == Source.gan
    assert ((extra["z_index"] >= 0) == gan).all() and np.isnan(extra["truncation"][~gan]).all()
    for c in np.unique(data.labels[gan]):  # one latent per sample: no index twice in a class
        z = extra["z_index"][gan & (data.labels == c)]
        assert len(np.unique(z)) == len(z)


def test_gan_rows_keep_their_latent_index_and_truncation_as_generate_writes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    recipe = _recipe(tmp_path / "out", plan={"target": "max", "mix": {"gan": 0.5, "latent-smote": 0.25, "copy": 0.25}}, generate={"truncation": 0.8})
    expand(recipe, overrides=[*TINY_GAN, "gan.device=cpu"])
    _assert_gan_provenance(tmp_path / "out" / "train.h5")
    from augmentgan.data.hdf5 import read_hdf5_extra

    extra, data = read_hdf5_extra(tmp_path / "out" / "train.h5"), load(tmp_path / "out" / "train.h5")
    assert (extra["truncation"][data.source == Source.gan] == np.float32(0.8)).all()
    assert ((extra["parent2"] >= 0) == (data.source == Source.latent_smote)).all()  # latent-smote's column beside them


def test_a_duplicate_image_never_sits_on_both_sides_of_the_holdout(tmp_path: Path) -> None:
    # probe: six identical images of one class and one image in two classes: holdout images the classifier trains on
    digits = load("builtin:digits-lt")
    rows = np.concatenate([np.flatnonzero(digits.labels == c)[:10] for c in range(3)])
    images, labels = digits.images[rows].copy(), digits.labels[rows].copy()
    images[:6] = images[0]  # class 0: six copies of one image
    images[12] = images[25]  # class 1's 3rd image is class 2's 6th
    data = augmentgan.LabeledImages(images, labels, digits.class_names[:3])
    save(data, tmp_path / "dups.h5")
    result = expand(_recipe(tmp_path / "o", data={"path": str(tmp_path / "dups.h5")}, plan={"target": "max", "mix": {"copy": 1.0}},
                            holdout={"fraction": 0.34}))
    train, holdout = load(tmp_path / "o" / "train.h5"), load(tmp_path / "o" / "holdout.h5")
    assert not set(_rows(holdout.images)) & set(_rows(train.images))
    assert len(train[train.source == Source.real]) + len(holdout) == len(data)
    assert any("identical to training images (duplicates in the data) and stay in the training set" in n for n in result.notes)
