"""The pseudo source (plan.mix pseudo): unlabeled real images labeled by the recipe's K+1 GAN fill deficits,
never the holdout, with their provenance and confidence; too few confident images fall back; bad recipes are refused."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from augmentgan.data import load
from augmentgan.data.hdf5 import read_hdf5_extra, write_hdf5
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError
from augmentgan.gan.semi import load_kplus1, pseudo_label
from augmentgan.pipeline import expand

# the smallest semi-supervised GAN: a few steps of a narrow ssgan (fp32: the same labels on every CPU)
TINY_SSGAN = {
    "gan.preset": "ssgan", "gan.steps": 2, "gan.batch": 8, "gan.eval_every": 0, "gan.device": "cpu", "gan.precision": "fp32",
    "gan.overrides.model.g_ch": 4, "gan.overrides.model.d_ch": 4, "gan.overrides.model.z_dim": 8, "gan.overrides.model.embed_dim": 8,
    "gan.overrides.semi.unlabeled_batch": 8,
}


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """labeled.h5: sklearn digits 0, 1, 2 (20, 8, 5 images, 8x8); unlabeled.npz: 18 other digits followed by a
    copy of every labeled image (so the holdout's images are in the unlabeled pool too). Returns (labeled, unlabeled, n fresh)."""
    root = tmp_path_factory.mktemp("pseudo")
    d = load_digits()
    x = (d.images / 16 * 255).round().astype(np.uint8)[..., None]
    labeled = np.concatenate([np.flatnonzero(d.target == c)[:n] for c, n in zip(range(3), (20, 8, 5))])
    fresh = np.concatenate([np.flatnonzero(d.target == c)[30:36] for c in range(3)])
    write_hdf5(LabeledImages(x[labeled], d.target[labeled], ("0", "1", "2")), root / "labeled.h5")
    np.savez(root / "unlabeled.npz", x=np.concatenate([x[fresh], x[labeled]]))
    return root / "labeled.h5", root / "unlabeled.npz", len(fresh)


def _recipe(digits: tuple[Path, Path, int], out: Path, fmt: str = "h5", threshold: float = 0.0) -> dict:
    labeled, unlabeled, _ = digits
    return {
        "seed": 1, "data": {"path": str(labeled), "unlabeled": str(unlabeled)}, "holdout": {"fraction": 0.25},
        "plan": {"mix": {"copy": 0.5, "pseudo": 0.5}, "pseudo_min_confidence": threshold}, "output": {"path": str(out), "format": fmt},
    }


def _rows(images: np.ndarray) -> set[bytes]:
    return {bytes(x) for x in images.reshape(len(images), -1)}


def test_pseudo_rows_carry_the_discriminators_labels_and_confidence_and_never_the_holdout(tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = expand(_recipe(digits, out), overrides=TINY_SSGAN)
    train, holdout = load(out / "train.h5"), load(out / "holdout.h5")
    extra = read_hdf5_extra(out / "train.h5")
    pseudo = np.flatnonzero(train.source == Source.pseudo)
    assert len(pseudo) > 0 and (pseudo == np.arange(len(train) - len(pseudo), len(train))).all()  # the last rows
    assert (train.parent[pseudo] == -1).all()
    # the labels and confidences are the K+1 discriminator's, and every image is used once
    unlabeled = np.load(digits[1])["x"]
    model = load_kplus1(result.lock["pseudo"]["labeled_by"])
    truth = pseudo_label(model.D, unlabeled, model.img_size, fit=model.fit, min_confidence=0.0)
    index = extra["unlabeled_index"][pseudo]
    assert len(set(index.tolist())) == len(index) and (extra["unlabeled_index"][: pseudo[0]] == -1).all()
    assert np.array_equal(train.images[pseudo], unlabeled[index])
    assert np.array_equal(train.labels[pseudo], truth.labels[index])
    assert np.allclose(extra["confidence"][pseudo], truth.confidence[index]) and np.isnan(extra["confidence"][: pseudo[0]]).all()
    # never the holdout: the holdout is real labeled images only, and no pseudo image is a labeled image (all of them were in the pool)
    assert (holdout.source == Source.real).all() and len(holdout) + int((train.source == Source.real).sum()) == 33
    assert not _rows(train.images[pseudo]) & _rows(holdout.images)
    assert not _rows(train.images[pseudo]) & _rows(train.images[train.source == Source.real])
    assert (index < digits[2]).all() and any("33 unlabeled image(s) are identical to a labeled image" in n for n in result.notes)
    # reported apart from the real images: counts.csv, the plan, the lock, the HDF5 attributes and report.html
    rows = {r["class"]: r for r in csv.DictReader((out / "counts.csv").open(encoding="utf-8"))}
    assert sum(int(r["pseudo"]) for r in rows.values()) == len(pseudo) == result.plan.source_total("pseudo") == result.lock["pseudo"]["used"]
    assert all(int(r["real"]) == int(((train.source == Source.real) & (train.labels == int(c))).sum()) for c, r in rows.items())
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Pseudo-labeled images" in html and ">pseudo</th>" in html
    # a class whose confident images do not cover its pseudo quota gets the rest from copy, and the plan says so
    short = [c for c in result.plan.classes if c.shortfall]
    assert short and all(c.add["pseudo"] + c.shortfall["pseudo"] == (c.target - c.real) // 2 and c.add["copy"] + c.add["pseudo"] == c.target - c.real for c in short)
    assert all(any("short of its quota" in n and "copy +" in n for n in c.notes) for c in short)
    counts = np.bincount(truth.labels[: digits[2]], minlength=3)
    for c in result.plan.classes:  # min(quota, confident images) of every class
        assert c.add["pseudo"] == min(counts[c.index], c.add["pseudo"] + c.shortfall.get("pseudo", 0))


def test_threshold_keeps_only_confident_images_and_the_folder_manifest_records_them(tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    first = expand(_recipe(digits, tmp_path / "all"), overrides=TINY_SSGAN)
    model = load_kplus1(first.lock["pseudo"]["labeled_by"])
    fresh = np.load(digits[1])["x"][: digits[2]]
    confidence = pseudo_label(model.D, fresh, model.img_size, fit=model.fit, min_confidence=0.0).confidence
    threshold = float(np.sort(confidence)[len(confidence) // 2])  # half of the fresh images pass
    out = tmp_path / "folder"
    second = expand(_recipe(digits, out, fmt="folder", threshold=threshold), overrides=TINY_SSGAN)
    assert second.gan_cached is True  # the threshold is not part of the GAN: the cached run labels again
    with (out / "train" / "manifest.csv").open(encoding="utf-8") as fh:
        manifest = list(csv.DictReader(fh))
    pseudo = [r for r in manifest if r["source"] == "pseudo"]
    assert pseudo and len(pseudo) == second.plan.source_total("pseudo") <= int((confidence >= threshold).sum())
    assert all(float(r["confidence"]) >= threshold and r["file"].split("/")[-1].startswith("pseudo-") for r in pseudo)
    assert all(r["confidence"] == "nan" and r["unlabeled_index"] == "-1" for r in manifest if r["source"] != "pseudo")
    assert second.lock["pseudo"]["min_confidence"] == threshold and sum(c.shortfall.get("pseudo", 0) for c in second.plan.classes) > 0


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"data.unlabeled": None}, ("plan.mix pseudo needs unlabeled images to label: set data.unlabeled", "--unlabeled")),
        ({"gan.preset": "dcgan"}, ("plan.mix pseudo needs a GAN whose discriminator labels images", "gan.preset 'dcgan'", "ssgan")),
    ],
)
def test_pseudo_without_unlabeled_images_or_a_kplus1_gan_is_refused_before_anything_runs(tmp_path: Path, digits, changes, words) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    for dry_run in (True, False):
        with pytest.raises(ConfigError) as info:
            expand(_recipe(digits, out), overrides={**TINY_SSGAN, **changes}, dry_run=dry_run)
        assert "\n" not in str(info.value) and all(w in str(info.value) for w in words)
    assert not out.exists()


def test_pseudo_errors_are_one_line_with_a_non_zero_exit_from_the_cli(tmp_path: Path, digits, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    import augmentgan.cli.main as cli_main

    if Path(cli_main.__file__).resolve().parent != Path(__file__).resolve().parents[1] / "cli":  # as tests/cli/test_label_cli.py
        pytest.skip("augmentgan.cli is installed from another checkout than these tests")
    main = cli_main.main
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {{path: {digits[0]}}}\noutput: {{path: {tmp_path / 'out'}}}\n", encoding="utf-8")
    for args in (["--set", "plan.mix={copy: 0.5, pseudo: 0.5}"],
                 ["--unlabeled", str(digits[1]), "--set", "gan.preset=sngan", "--set", "plan.mix={copy: 0.5, pseudo: 0.5}", "--dry-run"]):
        with pytest.raises(SystemExit) as info:
            main(["expand", str(recipe), *args])
        err = capsys.readouterr().err
        lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
        assert info.value.code == 4 and len(lines) == 1 and "Traceback" not in err and "plan.mix pseudo" in lines[0], err
    assert not (tmp_path / "out").exists()


def test_dry_run_plans_pseudo_quotas_and_says_they_depend_on_the_labels(tmp_path: Path, digits) -> None:  # noqa: ANN001
    result = expand(_recipe(digits, tmp_path / "out"), overrides=TINY_SSGAN, dry_run=True)
    assert result.plan.source_total("pseudo") > 0 and not (tmp_path / "out").exists()
    assert any(n.startswith("pseudo: the counts above are quotas") and "51 images of data.unlabeled" in n for n in result.notes)


def test_a_given_run_without_a_kplus1_discriminator_is_refused_for_pseudo(tmp_path: Path, digits) -> None:  # noqa: ANN001
    from augmentgan.gan.presets import get_preset
    from augmentgan.gan.trainer import TrainConfig, train

    plain = train(load(digits[0]), get_preset("dcgan", {"model.g_ch": 4, "model.d_ch": 4, "model.z_dim": 8, "model.embed_dim": 8}),
                  TrainConfig(steps=1, batch=8, device="cpu", sample_every=0), tmp_path / "plain")
    out = tmp_path / "out"
    for dry_run in (True, False):
        with pytest.raises(ConfigError) as info:
            expand(_recipe(digits, out), overrides={**TINY_SSGAN, "gan.run": str(tmp_path / "plain")}, dry_run=dry_run)
        assert "\n" not in str(info.value) and "plan.mix pseudo: gan.run" in str(info.value) and "ssgan" in str(info.value)
    assert plain.checkpoint.is_file() and not out.exists()


def test_pseudo_works_without_a_holdout_to_exclude_in_expand_data_and_utility(tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """expand_data (Python API) and the utility benchmark call the pseudo source with no holdout images to
    exclude; it used to fail reshaping the empty exclusion set (ValueError: cannot reshape array of size 0)."""
    from augmentgan.pipeline import expand_data
    from augmentgan.utility import utility

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    data = load(digits[0])
    done = expand_data(data, _recipe(digits, tmp_path / "unused"), overrides=TINY_SSGAN)
    pseudo = done.data.source == Source.pseudo
    assert pseudo.any() and (done.extra["unlabeled_index"][pseudo] >= 0).all()
    result = utility(data, _recipe(digits, tmp_path / "unused"), seeds=1, steps=2, overrides=TINY_SSGAN, methods=["ros", "recipe"])
    assert set(result.methods) == {"ros", "recipe"} and result.mixes["recipe"] == [{"copy": 0.5, "pseudo": 0.5}]


def test_the_gan_never_trains_on_holdout_images_in_the_unlabeled_pool(tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # probe: an unlabeled pool holding the labeled images gave the semi-supervised GAN the holdout's images too
    import yaml

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    result = expand(_recipe(digits, out), overrides=TINY_SSGAN)
    holdout = load(out / "holdout.h5")
    config = yaml.safe_load((Path(result.gan_run) / "config.yaml").read_text())
    pool = len(np.load(digits[1])["x"])
    assert config["data"]["unlabeled"]["n"] == pool - len(holdout)  # every holdout image was in the pool
    assert any(f"data.unlabeled: {len(holdout)} of its {pool} images are identical to holdout or validation images" in n for n in result.notes)
    # the dry run names the run the real one trained (the same unlabeled images in its key)
    dry = expand(_recipe(digits, tmp_path / "dry"), overrides=TINY_SSGAN, dry_run=True)
    assert str(result.gan_run) in dry.estimates["gan_seconds_note"]


def test_utility_never_trains_on_the_images_it_scores_through_pseudo_rows(tmp_path: Path, digits, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # probe: with --test, unlabeled images identical to test images became pseudo training rows (26 of 280)
    from augmentgan import utility as utility_module

    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    labeled, unlabeled, fresh = digits
    pool = np.load(unlabeled)["x"][:fresh]
    d = load_digits()
    test = LabeledImages(pool, d.target[np.concatenate([np.flatnonzero(d.target == c)[30:36] for c in range(3)])], ("0", "1", "2"))
    seen: list[LabeledImages] = []
    real_runs = utility_module.classifier_runs
    monkeypatch.setattr(utility_module, "classifier_runs", lambda train_set, *a, **k: seen.append(train_set) or real_runs(train_set, *a, **k))
    recipe = {**_recipe(digits, tmp_path / "out"), "plan": {"mix": {"copy": 0.5, "pseudo": 0.5}, "pseudo_min_confidence": 0.0}}
    utility_module.utility(load(labeled), recipe, seeds=1, steps=1, methods=["recipe"], test=test, overrides=[f"{k}={v}" for k, v in TINY_SSGAN.items()])
    assert len(seen) == 1 and not _rows(seen[0].images) & _rows(test.images)
