"""HDF5: the documented layout, round trips, the streaming writer, foreign files and bad input."""

from __future__ import annotations

from datetime import datetime

import h5py
import numpy as np
import pytest

from augmentgan import __version__
from augmentgan.data.hdf5 import H5Writer, read_hdf5, read_hdf5_attrs, read_hdf5_extra, write_hdf5
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError, OutputError, OutputExistsError


def assert_same(a: LabeledImages, b: LabeledImages) -> None:
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.source, b.source)
    np.testing.assert_array_equal(a.parent, b.parent)
    assert a.class_names == b.class_names


def test_layout_matches_the_documentation(tmp_path, small_data):
    recipe = "# recipe\n" + "x: 1\n" * 20000  # > 64 KiB
    path = write_hdf5(small_data, tmp_path / "d.h5", seed=3, recipe_text=recipe, extra_attrs={"note": "hi", "sizes": [1, 2]})
    with h5py.File(path, "r") as f:
        images = f["images"]
        assert images.dtype == np.uint8 and images.shape == (12, 6, 5, 3)
        assert images.chunks == (1, 6, 5, 3) and images.compression == "gzip"
        assert f["labels"].dtype == np.int64 and f["parent"].dtype == np.int64
        assert h5py.check_enum_dtype(f["source"].dtype) == {"real": 0, "classical": 1, "smote": 2, "gan": 3, "copy": 4, "latent-smote": 5, "pseudo": 6}
        assert f["class_names"].asstr()[()].tolist() == ["ant", "bee", "Kühe"]
        attrs = dict(f.attrs)
    assert attrs["format"] == "augmentgan-hdf5" and attrs["format_version"] == 1
    assert attrs["augmentgan_version"] == __version__ and attrs["seed"] == 3 and attrs["recipe"] == recipe
    assert datetime.fromisoformat(attrs["created"]).tzinfo is not None
    assert read_hdf5_attrs(path)["sizes"] == [1, 2] and read_hdf5_attrs(path)["note"] == "hi"


@pytest.mark.parametrize("compression", ["gzip", "lzf", None])
def test_round_trip_is_lossless(tmp_path, small_data, compression):
    path = write_hdf5(small_data, tmp_path / "d.hdf5", compression=compression, batch=5)
    assert_same(read_hdf5(path), small_data)


def test_bad_compression_is_a_config_error(tmp_path, small_data):
    with pytest.raises(ConfigError, match="gzip, lzf or none"):
        write_hdf5(small_data, tmp_path / "d.h5", compression="zstd")


def test_streaming_writer_appends_batches_and_extras(tmp_path, small_data):
    path = tmp_path / "s.h5"
    with H5Writer(path, class_names=small_data.class_names, image_shape=(6, 5, 3), extra_dtypes={"truncation": "f4", "ckpt": str}) as w:
        for start, stop in ((0, 5), (5, 5), (5, 12)):
            part = small_data[np.arange(start, stop)]
            w.append(part.images, part.labels, part.source, part.parent, {"truncation": np.full(stop - start, 0.5), "ckpt": ["abc"] * (stop - start)})
            assert not path.exists()  # only the temporary file exists until close
        assert w.count == 12
    assert_same(read_hdf5(path), small_data)
    extra = read_hdf5_extra(path)
    assert extra["truncation"].dtype == np.float32 and (extra["truncation"] == 0.5).all()
    assert extra["ckpt"].tolist() == ["abc"] * 12


def test_streaming_writer_failure_leaves_nothing(tmp_path, small_data):
    with pytest.raises(RuntimeError):
        with H5Writer(tmp_path / "s.h5", class_names=small_data.class_names, image_shape=(6, 5, 3)) as w:
            w.append(small_data.images, small_data.labels)
            raise RuntimeError("generator crashed")
    assert list(tmp_path.iterdir()) == []


def test_append_validates_batches(tmp_path, small_data):
    with pytest.raises(DataError):
        with H5Writer(tmp_path / "s.h5", class_names=small_data.class_names, image_shape=(6, 5, 3), extra_dtypes={"t": "f4"}) as w:
            with pytest.raises(DataError, match="shape"):
                w.append(small_data.images[:, :4], small_data.labels)
            with pytest.raises(DataError, match="labels must be in 0..2"):
                w.append(small_data.images, small_data.labels + 1, extra={"t": np.zeros(12)})
            w.append(small_data.images, small_data.labels)  # missing extra: raises and aborts
    assert list(tmp_path.iterdir()) == []


def test_reserved_attributes_are_refused(tmp_path, small_data):
    with pytest.raises(OutputError, match="reserved"):
        write_hdf5(small_data, tmp_path / "d.h5", extra_attrs={"seed": 1})
    assert list(tmp_path.iterdir()) == []


def test_existing_file_needs_force(tmp_path, small_data):
    path = tmp_path / "d.h5"
    path.write_bytes(b"old")
    with pytest.raises(OutputExistsError):
        write_hdf5(small_data, path)
    assert path.read_bytes() == b"old"
    write_hdf5(small_data, path, force=True)
    assert_same(read_hdf5(path), small_data)
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]


def test_failure_midway_leaves_nothing(tmp_path, small_data, monkeypatch):
    original = H5Writer.append
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(H5Writer, "append", flaky)
    with pytest.raises(OutputError, match=r"cannot write .*d\.h5: disk full; nothing was left"):  # one line, not a bare OSError
        write_hdf5(small_data, tmp_path / "d.h5", batch=4)
    assert list(tmp_path.iterdir()) == []


def test_foreign_file_with_keys(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((5, 3, 4, 4)).astype(np.float32)  # NCHW floats in [0, 1]
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["group/pixels"] = x
        f["group/targets"] = np.array([3, 7, 3, 7, 7])
    data = read_hdf5(tmp_path / "f.h5", keys=("group/pixels", "group/targets"))
    np.testing.assert_array_equal(data.images, np.rint(x.transpose(0, 2, 3, 1) * 255).astype(np.uint8))
    assert data.class_names == ("3", "7") and data.labels.tolist() == [0, 1, 0, 1, 1]


def test_foreign_default_keys_and_class_names(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["images"] = np.zeros((3, 4, 4), np.uint8)
        f["labels"] = np.array([0, 1, 1])
        f.create_dataset("class_names", data=["no", "yes"], dtype=h5py.string_dtype())
    data = read_hdf5(tmp_path / "f.h5")
    assert data.class_names == ("no", "yes") and data.image_shape == (4, 4, 1)


def test_missing_keys_name_the_file_and_the_datasets(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["x"] = np.zeros((2, 4, 4), np.uint8)
        f["y"] = np.zeros(2)
    with pytest.raises(DataError, match=r"f\.h5 has no images dataset 'images' \(datasets: x, y\); pass --keys"):
        read_hdf5(tmp_path / "f.h5")
    with pytest.raises(DataError, match="labels dataset 'nope'"):
        read_hdf5(tmp_path / "f.h5", keys=("x", "nope"))
    assert len(read_hdf5(tmp_path / "f.h5", keys=("x", "y"))) == 2


def test_label_count_mismatch(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["images"] = np.zeros((3, 4, 4), np.uint8)
        f["labels"] = np.array([0, 1])
    with pytest.raises(DataError, match=r"f\.h5:labels: 2 labels for 3 images"):
        read_hdf5(tmp_path / "f.h5")


def test_a_summary_refuses_a_file_whose_images_and_labels_disagree(tmp_path, small_data):
    # inspect reported 12 images for a file whose images were cut to 8 rows; convert then failed
    from augmentgan.data.hdf5 import read_hdf5_index

    path = write_hdf5(small_data, tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        f["images"].resize(8, axis=0)
    with pytest.raises(DataError, match=r"d\.h5: 8 images but 12 labels .*damaged, rewrite it"):
        read_hdf5_index(path)


def test_not_hdf5_and_newer_versions_are_refused(tmp_path, small_data):
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(DataError, match=r"junk\.h5 is not a readable HDF5 file"):
        read_hdf5(tmp_path / "junk.h5")
    path = write_hdf5(small_data, tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(DataError, match="version 99.*upgrade"):
        read_hdf5(path)
