"""Train straight from an augmentgan HDF5 file: a lazy ``torch.utils.data.Dataset``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from augmentgan.data.hdf5 import is_augmentgan_hdf5, open_hdf5, require_dataset
from augmentgan.data.arrays import decode_names
from augmentgan.errors import DataError


class H5ImageDataset(Dataset):
    """Items are ``(image, label)``: image a float32 (C, H, W) tensor in [0, 1] (like
    torchvision's ``ToTensor``), passed through ``transform`` if given; label an int, passed
    through ``target_transform`` if given.

    Like torchvision's datasets: ``classes`` (class names in label order), ``class_to_idx``
    (name -> label) and ``targets``; augmentgan adds ``source`` (per-sample
    :class:`~augmentgan.data.types.Source` values, e.g. to weight or drop synthetic rows).
    Labels, class names and sources are read once at construction (small). Images are read one
    at a time from a file handle opened on first use in each process, so DataLoader workers each
    get their own handle (the handle is dropped when pickled and reopened after a fork).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        transform: Callable[[torch.Tensor], Any] | None = None,
        target_transform: Callable[[int], Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.transform = transform
        self.target_transform = target_transform
        if self.path.is_dir():
            raise DataError(f"{self.path} is a folder: H5ImageDataset reads augmentgan's HDF5 files; read an ImageFolder output with "
                            "torchvision.datasets.ImageFolder (manifest.csv keeps augmentgan's class numbers), or convert it: "
                            f"augmentgan convert {self.path} OUT.h5")
        with open_hdf5(self.path) as f:
            if not is_augmentgan_hdf5(f):
                raise DataError(f"{self.path} is not an augmentgan HDF5 file; convert it first: augmentgan convert {self.path} OUT.h5 --keys IMAGES,LABELS")
            self._length = int(require_dataset(f, "images", self.path, "images").shape[0])
            self.targets = require_dataset(f, "labels", self.path, "labels")[()].astype(np.int64)
            self.source = require_dataset(f, "source", self.path, "source")[()].astype(np.uint8)
            self.class_names = tuple(decode_names(require_dataset(f, "class_names", self.path, "class names")[()], f"{self.path}:class_names"))
        self.classes: list[str] = list(self.class_names)
        self.class_to_idx: dict[str, int] = {name: i for i, name in enumerate(self.classes)}
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def __len__(self) -> int:
        return self._length

    def _images(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file["images"]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if not -self._length <= index < self._length:
            raise IndexError(f"index {index} out of range for {self._length} images")
        index %= self._length
        image = torch.from_numpy(self._images()[index]).permute(2, 0, 1).float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        target: Any = int(self.targets[index])
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def close(self) -> None:
        """Close this process's file handle (it reopens on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state["_pid"] = None
        return state
