"""Shared fixtures of the generation tests: tiny real data, one trained GAN run (and one with a jointly
trained BiGAN encoder), one classifier.

The data are three classes of scikit-learn's 8x8 digits; the GAN trains at 16x16, so every
generated image goes through the resize back to the data size. Everything runs with one
intra-op thread (tiny tensors on a shared machine) and a private classifier cache.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import pytest
import torch

from augmentgan.data import save
from augmentgan.data.types import LabeledImages
from augmentgan.gan.presets import get_preset
from augmentgan.gan.trainer import TrainConfig, train
from generate_data import CLASSIFIER_STEPS, digits


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("augmentgan-cache")


@pytest.fixture(autouse=True)
def _environment(cache_root, monkeypatch):
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache_root))
    with one_thread():
        yield


@pytest.fixture(scope="session")
def real() -> LabeledImages:
    return digits()


@pytest.fixture(scope="session")
def heldout() -> LabeledImages:
    """Other images of the same digits (never trained on)."""
    return digits((30, 30, 30), skip=60)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory, real) -> Path:
    """A tiny DCGAN (EMA on, BCE loss) trained for a few steps; its data spec is recorded."""
    root = tmp_path_factory.mktemp("gan")
    spec = save(real, root / "real.h5")
    gan = get_preset("dcgan", {"model.g_ch": 8, "model.d_ch": 8, "model.z_dim": 16, "model.embed_dim": 8, "tricks.ema": True, "tricks.ema_decay": 0.9, "tricks.diffaug": ""})
    cfg = TrainConfig(steps=40, batch=16, device="cpu", sample_every=0, ckpt_every=40, log_every=20)
    with one_thread():
        return train(real, gan, cfg, root / "run", data_spec=str(spec)).run_dir


@pytest.fixture(scope="session")
def bigan_run_dir(tmp_path_factory, run_dir, real) -> Path:
    """The GAN of ``run_dir`` with a jointly trained encoder (bigan.weight=1), trained a few steps."""
    root = tmp_path_factory.mktemp("bigan")
    gan = get_preset("dcgan", {
        "model.g_ch": 8, "model.d_ch": 8, "model.z_dim": 16, "model.embed_dim": 8, "tricks.ema": True, "tricks.ema_decay": 0.9, "tricks.diffaug": "",
        "bigan.weight": 1.0, "bigan.e_ch": 8, "bigan.d_ch": 8,
    })
    cfg = TrainConfig(steps=30, batch=16, device="cpu", sample_every=0, ckpt_every=30, log_every=10)
    with one_thread():
        return train(real, gan, cfg, root / "run", data_spec=str(run_dir.parent / "real.h5")).run_dir


@pytest.fixture(scope="session")
def classifier(real, cache_root):
    from augmentgan.domain import train_classifier

    with one_thread():
        return train_classifier(real, seed=0, steps=CLASSIFIER_STEPS, cache_dir=cache_root / "classifiers")
