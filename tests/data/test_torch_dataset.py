"""The lazy HDF5 torch Dataset, also through a multi-worker DataLoader."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from augmentgan.data import H5ImageDataset, save
from augmentgan.errors import DataError


def test_items_are_chw_floats_in_unit_range(tmp_path, small_data):
    ds = H5ImageDataset(save(small_data, tmp_path / "d.h5"), transform=lambda t: t * 2)
    assert len(ds) == 12 and ds.class_names == small_data.class_names
    np.testing.assert_array_equal(ds.targets, small_data.labels)
    image, label = ds[-1]
    assert image.dtype == torch.float32 and image.shape == (3, 6, 5)
    expected = torch.from_numpy(small_data.images[11]).permute(2, 0, 1).float() / 255 * 2
    assert torch.equal(image, expected) and label == small_data.labels[11]
    with pytest.raises(IndexError):
        ds[12]


def test_classes_and_target_transform_like_torchvision(tmp_path, small_data):
    ds = H5ImageDataset(save(small_data, tmp_path / "d.h5"), target_transform=lambda t: ds.classes[t])
    assert ds.classes == ["ant", "bee", "Kühe"]
    assert ds.class_to_idx == {"ant": 0, "bee": 1, "Kühe": 2}
    _, name = ds[2]
    assert name == "Kühe" and ds.class_to_idx[name] == small_data.labels[2]


def test_pickling_drops_the_handle(tmp_path, small_data):
    ds = H5ImageDataset(save(small_data, tmp_path / "d.h5"))
    ds[0]
    assert ds._file is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._file is None
    assert torch.equal(clone[3][0], ds[3][0])
    ds.close()


def test_dataloader_with_two_workers_reads_every_sample(tmp_path, small_data):
    ds = H5ImageDataset(save(small_data, tmp_path / "d.h5"))
    ds[0]  # a handle opened in the parent must not be shared by the workers
    loader = DataLoader(ds, batch_size=5, num_workers=2, shuffle=False)
    images, labels = zip(*loader)
    images = torch.cat(images)
    assert torch.cat(labels).tolist() == small_data.labels.tolist()
    assert torch.equal((images * 255).round().to(torch.uint8).permute(0, 2, 3, 1), torch.from_numpy(small_data.images))


def test_foreign_files_are_refused(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["images"] = np.zeros((1, 2, 2, 1), np.uint8)
    with pytest.raises(DataError, match="not an augmentgan HDF5 file.*augmentgan convert"):
        H5ImageDataset(tmp_path / "f.h5")


def test_a_folder_output_gets_the_readers_that_read_it_named(tmp_path, small_data):
    folder = save(small_data, tmp_path / "train", format="folder")
    with pytest.raises(DataError, match=r"is a folder: H5ImageDataset reads augmentgan's HDF5 files; .*torchvision\.datasets\.ImageFolder"):
        H5ImageDataset(folder)
