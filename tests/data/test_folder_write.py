"""Writing ImageFolder trees: lossless round trip, manifest, safe names, torchvision, atomic writes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from augmentgan.data.folder import MANIFEST_COLUMNS, class_dirnames, read_folder, safe_dirname, write_folder
from augmentgan.data.types import LabeledImages
from augmentgan.errors import AugmentganWarning, OutputError, OutputExistsError


def assert_same(a: LabeledImages, b: LabeledImages) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.source, b.source)
    np.testing.assert_array_equal(a.parent, b.parent)
    assert a.class_names == b.class_names


def test_round_trip_restores_everything_through_the_manifest(tmp_path, small_data):
    out = write_folder(small_data, tmp_path / "out", seed=7, recipe_text="seed: 7\n", extra={"truncation": np.linspace(0, 1, 12)})
    assert_same(read_folder(out), small_data)
    with open(out / "manifest.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == MANIFEST_COLUMNS + ("truncation",)
    assert rows[8] == {"file": "Kühe/gan-00008.png", "label": "2", "class": "Kühe", "source": "gan", "parent": str(small_data.parent[8]), "truncation": str(8 / 11)}
    assert all((out / r["file"]).is_file() for r in rows)
    meta = json.loads((out / "augmentgan.json").read_text(encoding="utf-8"))
    assert meta["format"] == "augmentgan-folder" and meta["seed"] == 7 and meta["recipe"] == "seed: 7\n"


def test_gray_images_are_written_as_8bit_gray_png(tmp_path):
    data = LabeledImages(np.arange(32, dtype=np.uint8).reshape(2, 4, 4, 1), [0, 1], ["a", "b"])
    out = write_folder(data, tmp_path / "g")
    with Image.open(out / "a" / "real-00000.png") as im:
        assert im.mode == "L"
    assert_same(read_folder(out), data)


def test_torchvision_imagefolder_sees_the_same_classes_and_pixels(tmp_path, small_data):
    from torchvision.datasets import ImageFolder

    out = write_folder(small_data, tmp_path / "tv")
    ds = ImageFolder(str(out))
    assert ds.classes == sorted(small_data.class_names)
    assert len(ds) == len(small_data)
    for path, target in ds.samples:
        index = int(path.rsplit("-", 1)[1].split(".")[0])
        assert ds.classes[target] == small_data.class_names[small_data.labels[index]]
        np.testing.assert_array_equal(np.asarray(ds.loader(path)), small_data.images[index])


def test_without_manifest_folders_are_classes_and_samples_real(tmp_path, small_data):
    out = write_folder(small_data, tmp_path / "o")
    (out / "manifest.csv").unlink()
    data = read_folder(out)
    assert data.class_names == ("Kühe", "ant", "bee")  # sorted folder names
    assert (data.source == 0).all() and len(data) == 12


def test_stale_manifest_is_ignored_with_a_warning(tmp_path, small_data):
    out = write_folder(small_data, tmp_path / "o")
    next(out.glob("ant/*.png")).unlink()
    with pytest.warns(AugmentganWarning, match="manifest.csv ignored"):
        data = read_folder(out)
    assert len(data) == 11 and (data.source == 0).all()


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "/etc", "..\\x", "nul\x00byte"])
def test_names_that_could_escape_are_refused(tmp_path, small_data, name):
    with pytest.raises(OutputError, match="cannot be a folder name"):
        safe_dirname(name)
    data = LabeledImages(small_data.images, small_data.labels, ("ant", "bee", name))
    with pytest.raises(OutputError):
        write_folder(data, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "safe"),
    [("a:b", "a_b"), ("what?*", "what__"), (".hidden", "_hidden"), ("end.", "end_"), ("CON", "CON_"), ("nul.txt", "nul.txt_"), ("tab\there", "tab_here"), ("ünï", "ünï")],
)
def test_names_are_made_portable(name, safe):
    assert safe_dirname(name) == safe


def test_names_sharing_a_folder_are_refused():
    with pytest.raises(OutputError, match="same folder"):
        class_dirnames(["a:b", "a?b"])
    with pytest.raises(OutputError, match="case-insensitive"):
        class_dirnames(["Cat", "cat"])


def test_unsafe_characters_round_trip_through_the_manifest(tmp_path):
    data = LabeledImages(np.zeros((2, 2, 2, 1), np.uint8), [0, 1], ["x:y", ".dot"])
    out = write_folder(data, tmp_path / "o")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["_dot", "x_y"]
    assert read_folder(out).class_names == ("x:y", ".dot")


def test_empty_class_gets_no_folder_and_a_warning(tmp_path):
    data = LabeledImages(np.zeros((2, 2, 2, 1), np.uint8), [0, 0], ["full", "empty"])
    with pytest.warns(AugmentganWarning, match="empty.*torchvision's ImageFolder numbers the folders it finds"):
        out = write_folder(data, tmp_path / "o")
    assert not (out / "empty").exists()


def test_a_class_without_samples_keeps_every_class_number_through_the_folder(tmp_path):
    # a holdout without the 1-image class 'a': the other classes keep their numbers, and it survives folder -> h5
    from augmentgan.data import load, save

    data = LabeledImages(np.arange(4 * 16, dtype=np.uint8).reshape(4, 4, 4, 1), [1, 2, 2, 1], ["a", "b", "c"])
    with pytest.warns(AugmentganWarning, match=r"\['a'\] have no samples"):
        out = write_folder(data, tmp_path / "holdout")
    assert_same(read_folder(out), data)
    with pytest.warns(AugmentganWarning):
        save(read_folder(out), tmp_path / "again")
    back = save(load(tmp_path / "again"), tmp_path / "back.h5")
    assert_same(load(back), data)
    assert json.loads((out / "augmentgan.json").read_text(encoding="utf-8"))["class_names"] == ["a", "b", "c"]
    (out / "augmentgan.json").write_text("{}", encoding="utf-8")  # written without the names (or by an older version): numbered as found
    assert read_folder(out).class_names == ("b", "c")


def test_existing_output_needs_force(tmp_path, small_data):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--force"):
        write_folder(small_data, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    write_folder(small_data, out, force=True)
    assert not (out / "keep.txt").exists() and (out / "manifest.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]  # no temporary or old copies left


def test_failure_midway_leaves_nothing_and_keeps_the_old_output(tmp_path, small_data, monkeypatch):
    original = Image.Image.save
    calls = []

    def flaky_save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    with pytest.raises(OutputError, match=r"cannot write .*new: disk full; nothing was left"):  # one line, not a bare OSError
        write_folder(small_data, tmp_path / "new", workers=1)
    assert list(tmp_path.iterdir()) == []

    old = tmp_path / "old"
    old.mkdir()
    (old / "keep.txt").write_text("old")
    calls.clear()
    with pytest.raises(OutputError, match="disk full"):
        write_folder(small_data, old, force=True, workers=1)
    assert [p.name for p in tmp_path.iterdir()] == ["old"] and [p.name for p in old.iterdir()] == ["keep.txt"]


def test_three_channel_gray_images_keep_three_channels_through_a_folder(tmp_path):
    # RGB PNGs with R=G=B read as 1 channel under channels=auto: folder -> HDF5 turned 3-channel sets into 1-channel ones
    gray = np.random.default_rng(4).integers(0, 256, (4, 5, 5, 1), dtype=np.uint8)
    data = LabeledImages(np.repeat(gray, 3, axis=-1), np.array([0, 1, 0, 1]), ("a", "b"))
    write_folder(data, tmp_path / "f")
    assert json.loads((tmp_path / "f" / "augmentgan.json").read_text())["channels"] == 3
    back = read_folder(tmp_path / "f")
    assert_same(back, data)
    assert read_folder(tmp_path / "f", channels=1).image_shape == (5, 5, 1)  # an explicit choice still wins
    gray_data = LabeledImages(gray, np.array([0, 1, 0, 1]), ("a", "b"))
    write_folder(gray_data, tmp_path / "g")
    assert_same(read_folder(tmp_path / "g"), gray_data)


def test_streamed_folders_record_their_channels_and_column_types(tmp_path):
    from augmentgan.data.folder import FolderWriter, read_folder_extra

    gray = np.random.default_rng(5).integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    with FolderWriter(tmp_path / "f", class_names=("a", "b"), extra_columns=("note", "truncation")) as writer:
        writer.append(np.repeat(gray, 3, axis=-1), np.array([0, 1, 1]), extra={"note": np.array(["007", "1", "2"]), "truncation": np.array([1.0, 2.0, 0.5], np.float32)})
    assert read_folder(tmp_path / "f").image_shape == (4, 4, 3)
    extra, _ = read_folder_extra(tmp_path / "f")
    assert extra["note"].tolist() == ["007", "1", "2"] and extra["truncation"].dtype == np.float32


def test_extra_columns_keep_their_types_through_a_folder(tmp_path, small_data):
    from augmentgan.data.folder import read_folder_extra

    n = len(small_data)
    extra = {
        "note": np.array(["007", "1", "2"] * (n // 3)),  # text that looks like numbers: read back as 7, 1, 2 before
        "z_index": np.arange(n, dtype=np.int32),
        "truncation": np.linspace(0, 1, n).astype(np.float32),
        "whole": np.arange(n, dtype=np.float64),  # floats that look whole: read back as integers before
        "flag": np.arange(n) % 2 == 0,
    }
    write_folder(small_data, tmp_path / "f", extra=extra)
    back, _ = read_folder_extra(tmp_path / "f")
    for name, values in extra.items():
        assert back[name].dtype == values.dtype and back[name].tolist() == values.tolist(), name
    meta_path = tmp_path / "f" / "augmentgan.json"  # a folder without the record (older, or hand-made) keeps the guessing
    meta = json.loads(meta_path.read_text())
    del meta["extra_dtypes"]
    meta_path.write_text(json.dumps(meta))
    assert read_folder_extra(tmp_path / "f")[0]["note"].tolist() == [7, 1, 2] * (n // 3)


@pytest.mark.parametrize("name", ["manifest.csv", "augmentgan.json", "Manifest.CSV"])
def test_class_names_that_are_the_folders_own_files_are_refused_up_front(tmp_path, small_data, name):
    data = LabeledImages(small_data.images, small_data.labels, ("ant", name, "bee"))
    with pytest.raises(OutputError, match=f"class name '{name}' .*clashes with the {name.lower()} file.*rename the class"):
        write_folder(data, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())
