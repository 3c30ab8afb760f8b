"""Fixtures of the evaluation tests: a private cache, one torch thread, tiny digit data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from augmentgan.data.builtin import digits
from augmentgan.data.types import LabeledImages


@pytest.fixture(autouse=True)
def _environment(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "evaluate-cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def real3() -> LabeledImages:
    """Three digit classes (0, 1, 7), 30 images each, 8x8 gray."""
    full = digits()
    keep = np.concatenate([np.flatnonzero(full.labels == k)[:30] for k in (0, 1, 7)])
    sub = full[keep]
    mapping = {0: 0, 1: 1, 7: 2}
    return LabeledImages(sub.images, np.array([mapping[int(v)] for v in sub.labels]), ("0", "1", "7"))


@pytest.fixture(scope="session")
def other3() -> LabeledImages:
    """Another 30 images of the same three classes (a stand-in for good synthetic data)."""
    full = digits()
    keep = np.concatenate([np.flatnonzero(full.labels == k)[30:60] for k in (0, 1, 7)])
    sub = full[keep]
    mapping = {0: 0, 1: 1, 7: 2}
    return LabeledImages(sub.images, np.array([mapping[int(v)] for v in sub.labels]), ("0", "1", "7"), np.full(len(sub), 3, np.uint8))
