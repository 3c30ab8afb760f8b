"""`augmentgan inspect` and `augmentgan convert`: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from augmentgan.cli.main import main
from augmentgan.data import load


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(err, *parts):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0]


def test_inspect_table_and_warnings(capsys):
    code, out, err = run(capsys, "inspect", "builtin:digits-lt")
    assert code == 0
    assert "517 images, 8x8, 1 channel(s), 10 classes, imbalance ratio 18.75" in out
    assert "150" in out and "29.0%" in out
    assert err.count("warning: ") == 1 and "fewer than 20 images" in err and "9 (8)" in err


def test_inspect_json_counts_sources(capsys, tmp_path, small_data):
    from augmentgan.data import save

    path = save(small_data, tmp_path / "d.h5")
    code, out, _ = run(capsys, "inspect", path, "--json")
    result = json.loads(out)
    assert code == 0 and result["count"] == 12 and result["channels"] == 3 and (result["height"], result["width"]) == (6, 5)
    assert [c["count"] for c in result["classes"]] == [4, 4, 4]
    assert result["by_source"] == {"real": 6, "classical": 2, "smote": 1, "gan": 2, "copy": 1, "latent-smote": 0, "pseudo": 0}
    assert result["imbalance_ratio"] == 1.0
    assert any("SMOTE" in w for w in result["warnings"])


def test_convert_round_trip(capsys, tmp_path, image_folder):
    root, _ = image_folder
    code, out, _ = run(capsys, "convert", root, tmp_path / "d.h5", "--json", "--compression", "lzf")
    assert code == 0 and json.loads(out) == {
        "input": str(root), "output": str(tmp_path / "d.h5"), "format": "h5", "count": 9, "num_classes": 3, "height": 8, "width": 8, "channels": 3,
    }
    code, out, _ = run(capsys, "convert", tmp_path / "d.h5", tmp_path / "back", "--size", "4", "--channels", "1")
    assert code == 0 and out.startswith("wrote 9 images (3 classes, 4x4x1)")
    assert load(tmp_path / "back").image_shape == (4, 4, 1)
    np.testing.assert_array_equal(load(tmp_path / "d.h5").images, load(root).images)


def test_convert_keeps_what_an_expansion_carries_beside_the_images(capsys, tmp_path):
    # latent-smote's second parents, pseudo-labels' confidences, the seed, recipe and mix decision were dropped
    from augmentgan.data import save
    from augmentgan.data.hdf5 import read_hdf5_attrs, read_hdf5_extra
    from augmentgan.data.types import LabeledImages

    rng = np.random.default_rng(0)
    data = LabeledImages(rng.integers(0, 256, (6, 4, 4, 1), dtype=np.uint8), np.arange(6) % 2, ("a", "b"),
                         np.array([0, 0, 5, 5, 6, 6], np.uint8), np.array([-1, -1, 0, 1, -1, -1]))
    extra = {"parent2": np.array([-1, -1, 1, 0, -1, -1]), "confidence": np.array([0.0, 0.0, 0.0, 0.0, 0.93, 0.97]), "note": np.array(list("uvwxyz"))}
    save(data, tmp_path / "x.h5", seed=7, recipe_text="seed: 7\n", extra_attrs={"mix_decision": "{}"}, extra=extra)
    assert run(capsys, "convert", tmp_path / "x.h5", tmp_path / "f")[0] == 0
    header = (tmp_path / "f" / "manifest.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["file", "label", "class", "source", "parent"] and set(header[5:]) == set(extra)
    assert run(capsys, "convert", tmp_path / "f", tmp_path / "back.h5")[0] == 0
    back = read_hdf5_extra(tmp_path / "back.h5")
    assert set(back) == set(extra) and all(np.array_equal(back[k], v) for k, v in extra.items())
    attrs = read_hdf5_attrs(tmp_path / "back.h5")
    assert attrs["seed"] == 7 and attrs["recipe"] == "seed: 7\n" and attrs["mix_decision"] == "{}"
    assert (load(tmp_path / "back.h5").parent == data.parent).all()


def test_convert_refuses_an_existing_output_before_reading(capsys, tmp_path):
    (tmp_path / "out.h5").write_text("keep")
    code, _, err = run(capsys, "convert", tmp_path / "missing", tmp_path / "out.h5")
    assert code == 5
    assert_one_line_error(err, "out.h5 already exists", "--force")
    assert (tmp_path / "out.h5").read_text() == "keep"


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_bad_image_exits_3_with_one_line_and_writes_nothing(capsys, tmp_path, image_folder, command):
    root, _ = image_folder
    (root / "eel" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    args = [command, root] + ([tmp_path / "out.h5"] if command == "convert" else [])
    code, out, err = run(capsys, *args)
    assert code == 3 and out == ""
    assert_one_line_error(err, "broken.png", "--skip-bad")
    assert not (tmp_path / "out.h5").exists()
    code, out, err = run(capsys, *args, "--skip-bad")
    assert code == 0 and "warning: skipped 1 unreadable image(s)" in err and "broken.png" in err


def test_error_exit_codes(capsys, tmp_path):
    code, _, err = run(capsys, "inspect", tmp_path / "nope")
    assert code == 3
    assert_one_line_error(err, "nope does not exist")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "convert", tmp_path / "empty", tmp_path / "o.h5")
    assert code == 3
    assert_one_line_error(err, "no class subfolders")
    code, _, err = run(capsys, "inspect", "builtin:digits", "--keys", "a")
    assert code == 4
    assert_one_line_error(err, "keys must be")
    code, _, err = run(capsys, "convert", tmp_path / "empty", tmp_path / "empty", "--force")
    assert code == 4
    assert_one_line_error(err, "is the input", "itself")
    code, _, err = run(capsys, "convert", tmp_path / "empty", tmp_path, "--force")  # a folder holding the input: --force would delete it
    assert code == 4
    assert_one_line_error(err, "holds the input", "write the output to another path")
    assert (tmp_path / "empty").is_dir()
    code, _, err = run(capsys, "convert", tmp_path / "empty", tmp_path / "empty" / "inner")  # read again, it would be a class of images
    assert code == 4
    assert_one_line_error(err, "lies inside the input folder", "write the output outside it")
    assert not (tmp_path / "empty" / "inner").exists()
    code, _, err = run(capsys, "convert", "builtin:digits", tmp_path / "o", "--compression", "lzf")  # silently unused before
    assert code == 4
    assert_one_line_error(err, "--compression applies to HDF5 output", "folder of PNGs")
    code, _, err = run(capsys, "convert", "builtin:digits", tmp_path / "o", "--format", "zip")
    assert code == 2 and "zip" in err
    assert not any(tmp_path.glob("o*"))


def test_installed_entry_point_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "augmentgan", "inspect", str(tmp_path / "missing")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'} does not exist; give a folder of class subfolders, an .h5/.hdf5 or .npz file, or builtin:digits"]


def test_progress_bar_draws_on_a_terminal_for_large_totals(monkeypatch):
    import io

    from rich.console import Console

    from augmentgan.cli import console, data
    from augmentgan.progress import report

    buffer = io.StringIO()
    monkeypatch.setattr(console, "err_console", Console(file=buffer, force_terminal=True, width=100))
    with data.progress_callback() as callback:
        report(callback, "load", 0, 10)  # small: no bar
        report(callback, "write", 0, data.PROGRESS_MIN_TOTAL)
        report(callback, "write", data.PROGRESS_MIN_TOTAL, data.PROGRESS_MIN_TOTAL)
    text = buffer.getvalue()
    assert "write" in text and "load" not in text


def test_convert_keeps_three_gray_channels_and_text_columns_through_a_folder(capsys, tmp_path):
    # h5 -> folder -> h5 turned a 3-channel set of gray images into 1 channel and the text '007' into the number 7
    from augmentgan.data import save
    from augmentgan.data.hdf5 import read_hdf5_extra
    from augmentgan.data.types import LabeledImages

    gray = np.random.default_rng(2).integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    save(LabeledImages(np.repeat(gray, 3, axis=-1), np.array([0, 1, 1]), ("a", "b")), tmp_path / "x.h5", extra={"note": np.array(["007", "1", "2"])})
    assert run(capsys, "convert", tmp_path / "x.h5", tmp_path / "f")[0] == 0
    code, out, _ = run(capsys, "convert", tmp_path / "f", tmp_path / "back.h5")
    assert code == 0 and "4x4x3" in out
    assert read_hdf5_extra(tmp_path / "back.h5")["note"].tolist() == ["007", "1", "2"]
    code, out, _ = run(capsys, "convert", tmp_path / "f", tmp_path / "one.h5", "--channels", "1")
    assert code == 0 and "4x4x1" in out


def test_convert_refuses_outputs_it_cannot_read_back(capsys, tmp_path, small_data):
    from augmentgan.data import save

    save(small_data, tmp_path / "base.h5")
    code, _, err = run(capsys, "convert", tmp_path / "base.h5", tmp_path / "out.npz")
    assert code == 4
    assert_one_line_error(err, "out.npz: NPZ is read only", "write an .h5/.hdf5 file or a folder")
    code, _, err = run(capsys, "convert", tmp_path / "base.h5", tmp_path / "base_f", "--format", "h5")
    assert code == 4
    assert_one_line_error(err, "base_f: HDF5 output needs an .h5 or .hdf5 suffix", "base_f.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.h5"]


def test_inspect_refuses_an_hdf5_file_whose_images_were_cut(capsys, tmp_path, small_data):
    import h5py

    from augmentgan.data import save

    path = save(small_data, tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        f["images"].resize(8, axis=0)
    code, out, err = run(capsys, "inspect", path)
    assert code == 3 and out == ""
    assert_one_line_error(err, "d.h5: 8 images but 12 labels")


def test_inspect_refuses_an_npz_split_it_does_not_have(capsys, tmp_path):
    x = np.zeros((10, 4, 4), np.uint8)
    np.savez(tmp_path / "sp.npz", x=x, y=np.arange(10) % 2, x_test=x[:4], y_test=np.arange(4) % 2)
    code, out, err = run(capsys, "inspect", tmp_path / "sp.npz", "--split", "tset")
    assert code == 3 and out == ""
    assert_one_line_error(err, "split 'tset'", "available splits: test, train (pass --split)")


def test_convert_refuses_a_class_named_like_the_manifest_before_writing(capsys, tmp_path):
    np.savez(tmp_path / "cn.npz", x=np.zeros((4, 4, 4), np.uint8), y=np.array([0, 1, 0, 1]), class_names=np.array(["manifest.csv", "b"]))
    code, _, err = run(capsys, "convert", tmp_path / "cn.npz", tmp_path / "out")
    assert code == 5
    assert_one_line_error(err, "class name 'manifest.csv'", "rename the class")
    assert not (tmp_path / "out").exists()
