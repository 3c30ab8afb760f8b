"""`augmentgan evaluate`: JSON and table output, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from augmentgan.cli.main import main
from augmentgan.data import save
from augmentgan.data.types import LabeledImages


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def files(tmp_path, real3, other3):
    return save(real3, tmp_path / "real.h5"), save(other3, tmp_path / "synth.h5")


def test_evaluate_json(capsys, files):
    real, synth = files
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--json", "--cas-steps", "40", "--classifier-steps", "40", "--k", "3")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["per_class"]) == {"0", "1", "7"}
    row = result["per_class"]["7"]
    assert row["n_real"] == row["n_synth"] == 30
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "diversity_ratio", "memorization", "cas_recall"):
        assert isinstance(row[key], float), key
    assert result["settings"]["k"] == 3 and 0.0 <= result["cas"]["accuracy"] <= 1.0


def test_evaluate_table_and_errors(capsys, files, tmp_path):
    real, synth = files
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--no-cas", "--classifier-steps", "40")
    assert code == 0, err
    assert "overall" in out and "FID" in out and "memorized" in out
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--features", "inception", "--inception-weights", tmp_path / "none.pth")
    assert code == 4 and err.strip().startswith("error: Inception-v3 weights not found at") and len(err.strip().splitlines()) == 1


def test_images_that_record_no_provenance_need_all_rows(capsys, files, other3, tmp_path):
    real, _ = files
    plain = tmp_path / "other_generator.npz"  # another tool's output: no provenance, so every row reads as real
    np.savez(plain, x_train=other3.images, y_train=other3.labels, class_names=np.array(other3.class_names))
    code, _, err = run(capsys, "evaluate", plain, "--real", real, "--no-cas", "--classifier-steps", "40")
    assert code == 3 and "every one of its 90 rows is marked real" in err and "or pass --all-rows to evaluate every row" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "evaluate", plain, "--real", real, "--no-cas", "--classifier-steps", "40", "--all-rows", "--json")
    assert code == 0, err
    assert {name: row["n_synth"] for name, row in json.loads(out)["per_class"].items()} == {"0": 30, "1": 30, "7": 30}


def test_the_overall_cas_recall_cell_is_the_mean_recall(capsys, real3, other3, tmp_path):
    keep = np.concatenate([np.flatnonzero(real3.labels == c)[:n] for c, n in ((0, 30), (1, 12), (2, 8))])
    real = save(real3[keep], tmp_path / "imbalanced.h5")  # imbalanced: accuracy and mean recall differ
    labels = other3.labels.copy()
    labels[np.flatnonzero(labels == 2)[::2]] = 1  # half the '7' samples labelled '1': a CAS classifier that errs on real 7s
    synth = save(LabeledImages(other3.images, labels, other3.class_names, other3.source), tmp_path / "synth.h5")
    args = ("evaluate", synth, "--real", real, "--cas-steps", "40", "--classifier-steps", "40")
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    cas = json.loads(out)["cas"]
    assert f"{cas['accuracy']:.3f}" != f"{cas['balanced_accuracy']:.3f}"
    code, out, err = run(capsys, *args)
    overall = [line for line in out.splitlines() if "overall" in line][-1]  # the diversity/CAS table's row
    cells = [c.strip() for c in overall.split("│") if c.strip()]
    assert cells[-2] == f"{cas['balanced_accuracy']:.3f}", (cells, cas)  # CAS recall, then collapse


@pytest.fixture
def utility_files(tmp_path, real3, other3):
    """An NPZ with x_train/y_train (imbalanced 30/12/8) and x_test/y_test (30 per class), and a recipe file."""
    keep = np.concatenate([np.flatnonzero(real3.labels == c)[:n] for c, n in ((0, 30), (1, 12), (2, 8))])
    npz = tmp_path / "lt.npz"
    np.savez(npz, x_train=real3.images[keep, ..., 0], y_train=real3.labels[keep], x_test=other3.images[..., 0], y_test=other3.labels)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"seed": 3, "data": {"path": "unused"}, "output": {"path": str(tmp_path / "out")}}))
    return npz, recipe


def test_utility_cli_scores_on_the_test_split(capsys, utility_files):
    npz, recipe = utility_files
    code, out, err = run(capsys, "utility", npz, "--recipe", recipe, "--test", npz, "--method", "none", "--method", "ros",
                         "--seeds", "1", "--steps", "20", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert list(result["methods"]) == ["none", "ros"] and result["winner"] in ("none", "ros")
    assert result["settings"]["scored_on"] == "test" and result["settings"]["test_size"] == 90 and result["settings"]["holdout"] is None
    assert result["train_sizes"]["none"] == [50]  # all of x_train, no split
    assert result["settings"]["classifiers"] == 1 and result["per_classifier"]["ros"] == [result["methods"]["ros"]["macro_f1"]["values"]]


def test_utility_cli_says_whether_the_recipe_beats_the_best_baseline_beyond_noise(capsys, utility_files, tmp_path):
    npz, recipe = utility_files
    code, out, err = run(capsys, "utility", npz, "--recipe", recipe, "--test", npz, "--method", "ros", "--method", "recipe",
                         "--seeds", "1", "--classifiers", "2", "--steps", "20", "--set", "plan.mix={copy: 1.0}", "--report", tmp_path / "u.html")
    assert code == 0, err
    assert "mean ± std over 1 seed(s) (2 classifiers each, averaged)" in out
    line = "the recipe is level with the best baseline (ros) in macro-F1: +0.000: the same score on every one of the 2 classifiers of one seed"
    assert line in out
    page = (tmp_path / "u.html").read_text()
    assert "1 seed(s), 2 classifiers each" in page and line in page.replace("&#x27;", "'")
    code, out, err = run(capsys, "utility", npz, "--recipe", recipe, "--test", npz, "--method", "ros", "--classifiers", "0", "--steps", "1")
    assert code != 0 and "--classifiers" in err


def test_utility_cli_report_and_holdout_are_checked_before_any_training(capsys, utility_files, tmp_path, monkeypatch):
    import augmentgan.utility

    npz, recipe = utility_files
    monkeypatch.setattr(augmentgan.utility, "utility", lambda *a, **k: pytest.fail("trained before the options were checked"))
    original = recipe.read_bytes()
    (tmp_path / "u.html").write_text("an earlier report")
    (tmp_path / "folder").mkdir()
    base = ("utility", npz, "--recipe", recipe, "--method", "ros", "--seeds", "1", "--steps", "5")
    for extra, code_, part in [
        (("--report", recipe), 4, "is the input"),  # was overwritten with HTML, exit 0
        (("--report", recipe, "--force"), 4, "is the input"),
        (("--report", tmp_path / "u.html"), 5, "already exists; pass --force"),
        (("--report", tmp_path / "folder", "--force"), 4, "is a folder; give an HTML file path"),
        (("--test", npz, "--holdout", "0.5"), 4, "--holdout with --test"),  # was silently unused
    ]:
        code, _, err = run(capsys, *base, *extra)
        assert code == code_ and len(err.strip().splitlines()) == 1 and part in err, err
    assert recipe.read_bytes() == original and (tmp_path / "u.html").read_text() == "an earlier report" and (tmp_path / "folder").is_dir()


def test_utility_cli_table_titles(real3):
    from augmentgan.cli.evaluate import utility_tables
    from augmentgan.utility import UtilityResult

    entry = {m: {"mean": 0.5, "std": 0.0, "values": [0.5]} for m in ("macro_f1", "balanced_accuracy", "minority_recall")}
    for settings, title in (({"scored_on": "holdout", "test_size": 10}, "augmentgan utility: holdout scores, mean ± std over 1 seed(s)"),
                            ({"scored_on": "test", "test_size": 90}, "augmentgan utility: test-set scores (90 images), mean ± std over 1 seed(s)")):
        result = UtilityResult({"none": {**entry, "per_class_recall": {}}}, "none", real3.class_names, ["7"], [1], settings, {"none": [50]})
        assert utility_tables(result)[0].title == title


def test_utility_cli_bad_test_is_a_one_line_error(capsys, utility_files, tmp_path):
    npz, recipe = utility_files
    code, out, err = run(capsys, "utility", npz, "--recipe", recipe, "--test", tmp_path / "missing.npz", "--method", "none", "--steps", "1")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: --test: {tmp_path / 'missing.npz'} does not exist")
    code, out, err = run(capsys, "utility", npz, "--recipe", recipe, "--test", npz, "--test-split", "val", "--method", "none", "--steps", "1")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert "no x/y or images/labels arrays for split 'val'" in err and "(pass --test-split)" in err


def test_reader_hints_name_what_the_command_has(capsys, files, tmp_path):
    # the readers' hints name --skip-bad / --size, which evaluate does not have: they point at convert instead
    from PIL import Image

    _, synth = files
    for c in "ab":
        (tmp_path / "r" / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "r" / c / f"{i}.png")
    (tmp_path / "r" / "a" / "bad.png").write_bytes(b"x")
    code, _, err = run(capsys, "evaluate", synth, "--real", tmp_path / "r")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: --real: cannot read image") and f"augmentgan convert {tmp_path / 'r'} OUT.h5 --skip-bad" in err and "pass --skip-bad" not in err
    np.savez(tmp_path / "s.npz", x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.arange(4) % 2)
    code, _, err = run(capsys, "evaluate", synth, "--real", tmp_path / "s.npz", "--real-split", "nope")
    assert code == 3 and "(pass --real-split)" in err and "or convert it first: augmentgan convert" in err and "pass --keys" not in err
    # utility reads DATA with --split only: its other hints point at convert too
    code, _, err = run(capsys, "utility", tmp_path / "r", "--recipe", "recipes/digits-lt.yaml", "--method", "none", "--steps", "1")
    assert code == 3 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: DATA: cannot read image") and f"augmentgan convert {tmp_path / 'r'} OUT.h5 --skip-bad" in err and "pass --skip-bad" not in err
