"""Shared test data: tiny image folders and datasets (data only, no behaviour)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import pytest
from image_files import save_image  # tests/ is on sys.path (this conftest's folder)

from augmentgan.data.types import LabeledImages, Source


@pytest.fixture
def image_folder(tmp_path: Path) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """``root/{cat,dog,eel}/img{i}.png``: 4, 3 and 2 random 8x8 RGB PNGs; returns (root, pixels per class)."""
    rng = np.random.default_rng(0)
    root = tmp_path / "folder"
    pixels: dict[str, list[np.ndarray]] = {}
    for name, n in (("cat", 4), ("dog", 3), ("eel", 2)):
        pixels[name] = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(n)]
        for i, arr in enumerate(pixels[name]):
            save_image(root / name / f"img{i}.png", arr)
    return root, pixels


@pytest.fixture
def small_data() -> LabeledImages:
    """12 random 6x5 RGB images in 3 classes (one non-ASCII name), every source, some parents."""
    rng = np.random.default_rng(1)
    n = 12
    source = np.array([Source.real] * 6 + [Source.classical, Source.smote, Source.gan, Source.copy, Source.gan, Source.classical], np.uint8)
    parent = np.where(source == Source.real, -1, rng.integers(0, 6, n))
    return LabeledImages(rng.integers(0, 256, (n, 6, 5, 3), dtype=np.uint8), np.arange(n) % 3, ("ant", "bee", "Kühe"), source, parent)
