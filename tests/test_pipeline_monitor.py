"""expand(): the GAN stage tracks quality (gan.eval_every) and samples the best step; a cached run does the same.

(Without monitoring, generation reads final.pt: tests/gan/test_monitoring.py.)"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from augmentgan.domain.classifier import ClassifierSettings
from augmentgan.gan.checkpoint import load_checkpoint
from augmentgan.pipeline import expand

TINY = {"preset": "dcgan", "steps": 4, "batch": 8, "device": "cpu", "eval_every": 2,
        "overrides": {"model": {"g_ch": 4, "d_ch": 4, "z_dim": 8, "embed_dim": 8}}}


def spec(out: Path, **gan) -> dict:
    return {"data": {"path": "builtin:digits-lt"}, "gan": {**TINY, **gan}, "plan": {"mix": {"gan": 1.0}},
            "generate": {"truncation": None}, "output": {"path": str(out), "format": "h5"}}


@pytest.fixture()
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add synchronisation
    yield
    torch.set_num_threads(before)


def test_expand_samples_the_best_step_and_records_it(tmp_path, monkeypatch, one_thread):
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ClassifierSettings, "steps", 30)  # the monitor's features: brief, this tests the plumbing
    first = expand(spec(tmp_path / "a"))
    best = first.gan_run / "checkpoints" / "best.pt"
    assert best.is_file() and first.lock["gan"]["checkpoint"] == "best"
    step = load_checkpoint(best)["monitor"]["best"]["step"]
    assert step in (2, 4) and any(f"at step {step}" in n and "best.pt" in n for n in first.notes)
    assert any("precision auto ->" in n for n in first.notes)
    second = expand(spec(tmp_path / "b"))  # cached: same data and settings
    assert second.gan_cached is True and second.lock["gan"] == first.lock["gan"]
    # gan.checkpoint picks among the cached run's checkpoints too (it used to apply to gan.run only)
    final = expand(spec(tmp_path / "c", checkpoint="final"))
    assert final.gan_cached is True and final.lock["gan"]["checkpoint"] == "final"
    sha = hashlib.sha256((first.gan_run / "checkpoints" / "final.pt").read_bytes()).hexdigest()
    assert final.lock["gan"]["checkpoint_sha256"] == sha != first.lock["gan"]["checkpoint_sha256"]
