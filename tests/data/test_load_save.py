"""load/save dispatch, option checks, lossless folder <-> HDF5 round trips, inspect summaries."""

from __future__ import annotations

import numpy as np
import pytest
from image_files import save_image

from augmentgan.data import load, save, summarize
from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError, DataError, OutputExistsError


def assert_same(a: LabeledImages, b: LabeledImages) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.source, b.source)
    np.testing.assert_array_equal(a.parent, b.parent)
    assert a.class_names == b.class_names


def test_folder_to_hdf5_to_folder_is_lossless(tmp_path, image_folder):
    root, _ = image_folder
    original = load(root)
    h5 = save(original, tmp_path / "a.h5")
    folder = save(load(h5), tmp_path / "b")
    assert_same(load(folder), original)
    assert_same(load(save(load(folder), tmp_path / "c.hdf5")), original)


def test_provenance_survives_both_formats(tmp_path, small_data):
    assert_same(load(save(load(save(small_data, tmp_path / "x")), tmp_path / "x.h5")), small_data)


def test_dispatch_and_bad_specs(tmp_path, small_data):
    np.savez(tmp_path / "d.npz", x=small_data.images, y=small_data.labels)
    assert len(load(tmp_path / "d.npz")) == 12
    with pytest.raises(DataError, match=r"missing\.h5 does not exist"):
        load(tmp_path / "missing.h5")
    (tmp_path / "data.csv").write_text("a,b")
    with pytest.raises(DataError, match=r"data\.csv: unknown data format '\.csv'"):
        load(tmp_path / "data.csv")
    (tmp_path / "folder" / "a").mkdir(parents=True)
    save_image(tmp_path / "folder" / "a" / "x.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(ConfigError, match="keys apply to HDF5 and NPZ"):
        load(tmp_path / "folder", keys="x,y")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"channels": 2}, "channels must be auto, 1 or 3"), ({"size": 0}, "size must be"), ({"size": 2.5}, "size must be"), ({"keys": "onlyone"}, "keys must be")],
)
def test_bad_options_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        load("builtin:digits", **kwargs)


def test_array_sources_are_resized_and_channel_converted(tmp_path, small_data):
    path = save(small_data, tmp_path / "d.h5")
    data = load(path, size=4, channels=1)
    assert data.image_shape == (4, 4, 1)
    assert_same(load(path, channels="3"), small_data)  # already 3 channels: unchanged


def test_save_infers_the_format_and_refuses_existing_outputs(tmp_path, small_data):
    assert save(small_data, tmp_path / "d.H5").is_file()
    assert save(small_data, tmp_path / "d.h5x").is_dir()
    assert save(small_data, tmp_path / "as.hdf5", format="hdf5").is_file()
    with pytest.raises(OutputExistsError):
        save(small_data, tmp_path / "d.H5")
    with pytest.raises(ConfigError, match="output format"):
        save(small_data, tmp_path / "z", format="zip")


def test_summary_counts_ratio_and_thresholds():
    counts = [40, 20, 19, 6, 5]
    labels = np.repeat(np.arange(5), counts)
    source = np.zeros(len(labels), np.uint8)
    source[:10] = 3
    data = LabeledImages(np.zeros((len(labels), 2, 2, 1), np.uint8), labels, ["a", "b", "c", "d", "e"], source)
    s = summarize(data)
    assert [c["count"] for c in s["classes"]] == counts and s["imbalance_ratio"] == 8.0
    assert s["by_source"]["gan"] == 10 and s["classes"][0]["by_source"]["real"] == 30
    smote, gan = s["warnings"]
    assert "SMOTE" in smote and "e (5)" in smote and "d (6)" not in smote
    assert "GAN" in gan and "c (19)" in gan and "d (6)" in gan and "b (20)" not in gan
    empty = LabeledImages(np.zeros((1, 2, 2, 1), np.uint8), [0], ["a", "b"])
    assert summarize(empty)["warnings"][0] == "classes with no images: b"


def test_describe_summarises_big_hdf5_files_without_loading_images(tmp_path, small_data, monkeypatch):
    import augmentgan.data.summary as summary

    path = save(small_data, tmp_path / "d.h5")
    expected = summarize(small_data)
    monkeypatch.setattr(summary, "load", lambda *a, **k: pytest.fail("images were loaded"))
    assert summary.describe(path) == expected
    monkeypatch.undo()
    assert summary.describe(path, size=3)["height"] == 3


def test_a_resize_that_cannot_fit_in_memory_is_a_config_error(monkeypatch):
    import augmentgan.data.images as images_module

    real_empty = np.empty

    def no_memory(shape, dtype=float, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if np.prod(shape) > 10**9:
            raise MemoryError(f"Unable to allocate {np.prod(shape)} bytes")
        return real_empty(shape, dtype, *args, **kwargs)

    monkeypatch.setattr(images_module.np, "empty", no_memory)
    with pytest.raises(ConfigError, match=r"resizing 1797 images to 8192x8192 needs 120\.6 GB of memory, .*choose a smaller size"):
        load("builtin:digits", size=8192)


def test_outputs_no_reader_would_read_back_are_refused_before_writing(tmp_path, small_data):
    # an .npz output became a folder named x.npz; HDF5 to a path without .h5 was unreadable ("unknown data format ''")
    with pytest.raises(ConfigError, match=r"out\.npz: NPZ is read only; write an \.h5/\.hdf5 file or a folder"):
        save(small_data, tmp_path / "out.npz")
    with pytest.raises(ConfigError, match=r"NPZ is read only"):
        save(small_data, tmp_path / "out.NPZ", format="folder")
    with pytest.raises(ConfigError, match=r"as_h5: HDF5 output needs an \.h5 or \.hdf5 suffix.*name it .*as_h5\.h5"):
        save(small_data, tmp_path / "as_h5", format="h5")
    assert not list(tmp_path.iterdir())
    assert len(load(save(small_data, tmp_path / "as.h5", format="h5"))) == 12
