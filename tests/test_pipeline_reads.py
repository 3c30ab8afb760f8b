"""One expansion reads its dataset once and its GAN checkpoint once: every stage that samples the
generator (the run check, generation with a discriminator filter, latent-smote, the report's
truncation sweep) uses the one read the pipeline made, and nothing reads the data again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from augmentgan.data import io
from augmentgan.gan import checkpoint
from augmentgan.pipeline import expand

TINY_GAN = {"preset": "dcgan", "steps": 2, "batch": 8, "eval_every": 0, "device": "cpu",
            "overrides": {"model": {"g_ch": 4, "d_ch": 4, "z_dim": 8, "embed_dim": 8}, "optim": {"n_dis": 1}}}


def _recipe(out: Path) -> dict[str, Any]:
    return {
        "seed": 1,
        "data": {"path": "builtin:digits-lt"},
        "holdout": {"fraction": 0.2},
        "gan": TINY_GAN,
        "generate": {"filters": ["discriminator:keep=0.9,burn=64"], "truncation": 1.0},
        "latent_smote": {"encoder_steps": 20, "refine_steps": 5, "feature_weight": 0.0},
        "classical": {"pipeline": "light"},
        "plan": {"target": "max", "mix": {"gan": 0.4, "latent-smote": 0.3, "classical": 0.3}},
        "output": {"path": str(out), "format": "h5"},
    }


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[str]]:
    """Every dataset read (through any reader of ``augmentgan.data.io.load``) and checkpoint read."""
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    seen: dict[str, list[str]] = {"data": [], "checkpoint": []}
    for kind, reader in list(io.READERS.items()):
        def counted(spec: str, options: io.LoadOptions, reader: Any = reader) -> Any:
            seen["data"].append(str(spec))
            return reader(spec, options)

        monkeypatch.setitem(io.READERS, kind, counted)
    load_checkpoint = checkpoint.load_checkpoint

    def counted_checkpoint(path: Path, *args: Any, **kwargs: Any) -> Any:
        seen["checkpoint"].append(Path(path).name)
        return load_checkpoint(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "load_checkpoint", counted_checkpoint)
    return seen


def test_one_expansion_reads_its_data_and_its_checkpoint_once(tmp_path: Path, reads: dict[str, list[str]]) -> None:
    first = expand(_recipe(tmp_path / "a"))
    assert first.gan_cached is False and first.plan.source_total("gan") > 0 and first.plan.source_total("latent-smote") > 0
    assert reads["data"] == ["builtin:digits-lt"]
    # training wrote the run's own report.html (one read), the expansion read the checkpoint once for all its stages
    assert (first.gan_run / "report.html").is_file() and "Truncation sweep" in (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert reads["checkpoint"] == ["final.pt", "final.pt"]

    reads["data"].clear()
    reads["checkpoint"].clear()
    second = expand(_recipe(tmp_path / "b"))  # the cached run: no training, no run report
    assert second.gan_cached is True and second.lock["output"] == first.lock["output"]
    assert reads == {"data": ["builtin:digits-lt"], "checkpoint": ["final.pt"]}
