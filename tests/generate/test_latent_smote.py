"""The latent-smote source: parents recovered from imbalanced-learn's output, provenance in HDF5 and folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from augmentgan.data import load
from augmentgan.data.hdf5 import read_hdf5_extra
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import DataError
from augmentgan.generate.encode import EncodeSettings
from augmentgan.generate.latent_smote import latent_smote, segment_parents
from augmentgan.pipeline import expand

FAST = EncodeSettings(encoder_steps=60, refine_steps=60, feature_weight=0.0, seed=1)


def test_segment_parents_finds_both_ends() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 6))
    y = np.repeat([0, 1], 10)
    a, b = np.array([0, 3, 12, 15]), np.array([4, 7, 18, 11])
    lam = np.array([0.2, 0.9, 0.5, 0.35])
    new = X[a] + lam[:, None] * (X[b] - X[a])
    p1, p2 = segment_parents(X, y, new, y[a])
    near = np.where(lam <= 0.5, a, b)
    far = np.where(lam <= 0.5, b, a)
    assert (p1 == near).all() and (p2 == far).all()
    off = X[0] + 3.0  # on no segment: nearest parent of its class, no second one
    p1, p2 = segment_parents(X, y, off[None], np.array([0]))
    assert p2[0] == -1 and y[p1[0]] == 0


def test_latent_smote_parents_are_of_the_class_and_reconstructed_well(run_dir: Path, real: LabeledImages) -> None:
    result = latent_smote(run_dir, real, {1: 10, 2: 20}, seed=2, quantile=0.8, settings=FAST)
    s = result.samples
    assert np.bincount(s.labels, minlength=3).tolist() == [0, 10, 20] and (s.source == Source.latent_smote).all()
    assert (real.labels[s.parent] == s.labels).all() and (result.parent2 >= 0).all()
    assert (real.labels[result.parent2] == s.labels).all() and (s.parent != result.parent2).all()
    # parents come from the better-reconstructed images of their class only
    for c, name in ((1, "one"), (2, "two")):
        used = np.union1d(s.parent[s.labels == c], result.parent2[s.labels == c])
        assert (result.codes.error[used] <= result.thresholds[name] + 1e-7).all()
        assert result.excluded[name] >= 1
    assert np.isnan(result.codes.error[real.labels == 0]).all()  # plain SMOTE: a class that does not grow is not encoded
    with pytest.raises(DataError, match="needs at least 2"):
        latent_smote(run_dir, real[np.r_[0:40, 40:64, 64]], {2: 3}, seed=0, settings=FAST)


@pytest.mark.parametrize("fmt", ["h5", "folder"])
def test_expand_with_latent_smote_alone_records_both_parents(fmt: str, run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    recipe = {
        "seed": 1, "data": {"path": str(run_dir.parent / "real.h5")}, "holdout": {"fraction": 0.0},
        "gan": {"run": str(run_dir)}, "latent_smote": {"encoder_steps": 30, "refine_steps": 10, "feature_weight": 0.0},
        "output": {"path": str(out), "format": fmt},
    }
    result = expand(recipe, overrides=["plan.mix={latent-smote: 1.0}"])
    assert result.plan.mix == {"latent-smote": 1.0}
    train = load(out / ("train.h5" if fmt == "h5" else "train"))
    n_real = int((train.source == Source.real).sum())
    derived = train[n_real:]
    assert (derived.source == Source.latent_smote).all() and (train.class_counts() == 40).all()
    if fmt == "h5":
        parent2 = read_hdf5_extra(out / "train.h5")["parent2"]
    else:
        rows = list(csv.DictReader((out / "train" / "manifest.csv").open(encoding="utf-8")))
        assert {r["source"] for r in rows} == {"real", "latent-smote"}
        assert all(r["file"].split("/")[1].startswith(r["source"] + "-") for r in rows)
        order = {r["file"]: i for i, r in enumerate(rows)}
        parent2 = np.array([int(r["parent2"]) for r in sorted(rows, key=lambda r: order[r["file"]])])
    assert (parent2[:n_real] == -1).all()
    p2 = parent2[n_real:]
    assert (train.labels[derived.parent] == derived.labels).all() and (train.labels[p2] == derived.labels).all()
    assert (derived.parent < n_real).all() and (p2 < n_real).all() and (derived.parent != p2).all()
    counts = list(csv.DictReader((out / "counts.csv").open(encoding="utf-8")))
    assert [int(r["latent-smote"]) for r in counts] == [0, 16, 28]
    assert any("latent-smote:" in n and "quantile" in n for n in result.notes)
    assert "latent-smote samples between their parents" in (out / "report.html").read_text(encoding="utf-8")
