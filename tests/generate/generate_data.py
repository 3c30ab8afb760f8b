"""Tiny real data for the generation tests (imported by tests/generate/*.py)."""

from __future__ import annotations

import numpy as np

from augmentgan.data import load
from augmentgan.data.types import LabeledImages

CLASSES = ("zero", "one", "two")
COUNTS = (40, 24, 12)
CLASSIFIER_STEPS = 80


def digits(counts=COUNTS, skip: int = 0) -> LabeledImages:
    """The first ``counts[k]`` 8x8 images of digit k (after skipping ``skip`` of each)."""
    full = load("builtin:digits")
    idx = np.concatenate([np.flatnonzero(full.labels == k)[skip : skip + n] for k, n in enumerate(counts)])
    return LabeledImages(full.images[idx], full.labels[idx], CLASSES)
