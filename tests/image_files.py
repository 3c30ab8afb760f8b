"""Writing test images (a module of its own: ``from conftest import ...`` would pick whichever
conftest.py pytest put first on sys.path when several test folders run together)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_image(path: Path, array: np.ndarray, **save_kwargs) -> Path:
    """Write ``array`` (H, W), (H, W, 3) or (H, W, 4) with PIL, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **save_kwargs)
    return path
