"""NPZ archives and the foreign-array rules (layouts, value ranges, labels)."""

from __future__ import annotations

import numpy as np
import pytest

from augmentgan.data.npz import read_npz
from augmentgan.errors import DataError


def savez(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(("img_key", "lab_key"), [("x", "y"), ("images", "labels"), ("X", "y")])
def test_plain_keys(tmp_path, img_key, lab_key):
    x = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = read_npz(savez(tmp_path / "d.npz", **{img_key: x, lab_key: np.array([1, 0])}))
    np.testing.assert_array_equal(data.images[..., 0], x)
    assert data.labels.tolist() == [1, 0] and data.class_names == ("0", "1")


def test_split_keys_and_unknown_split(tmp_path):
    x = np.zeros((2, 4, 4), np.uint8)
    path = savez(tmp_path / "d.npz", x_train=x, y_train=[0, 1], x_test=x[:1] + 5, y_test=[1])
    assert len(read_npz(path)) == 2
    test = read_npz(path, split="test")
    assert len(test) == 1 and test.images.max() == 5
    with pytest.raises(DataError, match=r"split 'val'.*available splits: test, train"):
        read_npz(path, split="val")


def test_a_split_the_archive_lacks_is_an_error_even_beside_plain_arrays(tmp_path):
    # x/y beside split arrays: an unknown --split (a typo, or x_val without y_val) read x/y silently
    x = np.zeros((10, 4, 4), np.uint8)
    path = savez(tmp_path / "sp.npz", x=x, y=np.arange(10) % 2, x_test=x[:4], y_test=np.arange(4) % 2, x_val=x[:3], labels_val=np.arange(3) % 2)
    for split in ("tset", "val"):
        with pytest.raises(DataError, match=rf"sp\.npz has no x/y or images/labels arrays for split '{split}' .*available splits: test, train"):
            read_npz(path, split=split)
    assert len(read_npz(path)) == len(read_npz(path, split="train")) == 10  # x/y are the train split
    assert len(read_npz(path, split="test")) == 4
    plain = savez(tmp_path / "plain.npz", x=x, y=np.arange(10) % 2)  # no splits at all: its one set, whatever the split (--test-split test)
    assert len(read_npz(plain, split="test")) == 10


def test_explicit_keys_and_class_names(tmp_path):
    path = savez(tmp_path / "d.npz", pix=np.zeros((3, 2, 2, 3), np.uint8), lab=[2, 0, 2], class_names=np.array(["a", "b", "c"]), other=["x", "y", "z"])
    data = read_npz(path, keys=("pix", "lab"))
    assert data.class_names == ("a", "b", "c") and data.labels.tolist() == [2, 0, 2]
    assert read_npz(path, keys=("pix", "lab", "other")).class_names == ("x", "y", "z")
    with pytest.raises(DataError, match="no array 'nope'"):
        read_npz(path, keys=("pix", "nope"))
    with pytest.raises(DataError, match=r"labels range 0\.\.2 but there are 2 class names"):
        read_npz(savez(tmp_path / "e.npz", x=np.zeros((2, 2, 2), np.uint8), y=[0, 2], class_names=np.array(["a", "b"])))


def test_non_contiguous_labels_are_remapped_keeping_the_values_as_names(tmp_path):
    data = read_npz(savez(tmp_path / "d.npz", x=np.zeros((4, 2, 2), np.uint8), y=np.array([7.0, 3.0, 7.0, 12.0])))
    assert data.class_names == ("3", "7", "12") and data.labels.tolist() == [1, 0, 1, 2]


def test_one_hot_and_column_labels(tmp_path):
    x = np.zeros((3, 2, 2), np.uint8)
    one_hot = np.eye(3, dtype=np.float32)[[2, 0, 1]]
    assert read_npz(savez(tmp_path / "a.npz", x=x, y=one_hot)).labels.tolist() == [2, 0, 1]
    assert read_npz(savez(tmp_path / "b.npz", x=x, y=[[1], [0], [1]])).labels.tolist() == [1, 0, 1]
    with pytest.raises(DataError, match="not one-hot"):
        read_npz(savez(tmp_path / "c.npz", x=x, y=np.ones((3, 2))))


def test_float_ranges_decide_the_scale(tmp_path):
    unit = np.array([0.0, 0.5, 1.0, 0.2]).reshape(1, 2, 2)
    assert read_npz(savez(tmp_path / "a.npz", x=unit, y=[0])).images.ravel().tolist() == [0, 128, 255, 51]
    wide = np.array([0.0, 12.4, 254.6, 255.0]).reshape(1, 2, 2)
    assert read_npz(savez(tmp_path / "b.npz", x=wide, y=[0])).images.ravel().tolist() == [0, 12, 255, 255]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.1, np.nan, 0.3, 0.4], "NaN or infinite"),
        ([0.1, np.inf, 0.3, 0.4], "NaN or infinite"),
        ([-1.0, 0.0, 0.5, 1.0], r"found -1\.\.1.*\(x \+ 1\) / 2"),
        ([0.0, 10.0, 256.5, 3.0], r"\[0, 1\] or \[0, 255\], found 0\.\.256\.5"),
    ],
)
def test_bad_float_values_name_the_file_and_key(tmp_path, values, message):
    with pytest.raises(DataError, match=r"d\.npz:x: .*" + message):
        read_npz(savez(tmp_path / "d.npz", x=np.array(values).reshape(1, 2, 2), y=[0]))


def test_integer_ranges(tmp_path):
    deep = np.array([0, 257, 65535, 300], np.uint16).reshape(1, 2, 2)
    assert read_npz(savez(tmp_path / "a.npz", x=deep, y=[0])).images.ravel().tolist() == [0, 1, 255, 1]
    small = np.array([0, 7, 255, 3], np.int32).reshape(1, 2, 2)
    assert read_npz(savez(tmp_path / "b.npz", x=small, y=[0])).images.ravel().tolist() == [0, 7, 255, 3]
    with pytest.raises(DataError, match=r"integer pixel values .* found -3\.\.7"):
        read_npz(savez(tmp_path / "c.npz", x=np.array([-3, 7, 1, 1]).reshape(1, 2, 2), y=[0]))


def test_layouts(tmp_path):
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    data = read_npz(savez(tmp_path / "a.npz", x=nchw, y=[0, 1]))
    np.testing.assert_array_equal(data.images, nchw.transpose(0, 2, 3, 1))
    with pytest.raises(DataError, match=r"cannot tell whether shape \(2, 3, 4, 3\)"):
        read_npz(savez(tmp_path / "b.npz", x=np.zeros((2, 3, 4, 3), np.uint8), y=[0, 1]))
    with pytest.raises(DataError, match=r"shape \(2, 4, 4, 4\); expected"):
        read_npz(savez(tmp_path / "c.npz", x=np.zeros((2, 4, 4, 4), np.uint8), y=[0, 1]))


def test_label_count_mismatch_and_bad_labels(tmp_path):
    with pytest.raises(DataError, match=r"d\.npz:y: 3 labels for 2 images"):
        read_npz(savez(tmp_path / "d.npz", x=np.zeros((2, 2, 2), np.uint8), y=[0, 1, 1]))
    with pytest.raises(DataError, match=r"e\.npz:y: labels must be whole numbers"):  # the labels' key, not the images'
        read_npz(savez(tmp_path / "e.npz", x=np.zeros((2, 2, 2), np.uint8), y=[0.5, 1]))


def test_unreadable_archives(tmp_path):
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataError, match=r"junk\.npz is not a readable \.npz archive"):
        read_npz(tmp_path / "junk.npz")
    objects = np.empty(2, dtype=object)
    objects[:] = [np.zeros((2, 2)), np.zeros((2, 2))]
    with pytest.raises(DataError, match="pickled"):
        read_npz(savez(tmp_path / "o.npz", x=objects, y=[0, 1]))
    with pytest.raises(DataError, match=r"no x/y or images/labels arrays .*arrays: a, b.*--keys"):
        read_npz(savez(tmp_path / "k.npz", a=[1], b=[2]))
