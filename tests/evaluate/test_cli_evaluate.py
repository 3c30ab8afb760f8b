"""`augmentgan evaluate`: JSON and table output, one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from augmentgan.cli.main import main
from augmentgan.data import save


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def files(tmp_path, real3, other3):
    return save(real3, tmp_path / "real.h5"), save(other3, tmp_path / "synth.h5")


def test_evaluate_json(capsys, files):
    real, synth = files
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--json", "--cas-steps", "40", "--classifier-steps", "40", "--k", "3")
    assert code == 0, err
    result = json.loads(out)
    assert set(result["per_class"]) == {"0", "1", "7"}
    row = result["per_class"]["7"]
    assert row["n_real"] == row["n_synth"] == 30
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "diversity_ratio", "memorization", "cas_recall"):
        assert isinstance(row[key], float), key
    assert result["settings"]["k"] == 3 and 0.0 <= result["cas"]["accuracy"] <= 1.0


def test_evaluate_table_and_errors(capsys, files, tmp_path):
    real, synth = files
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--no-cas", "--classifier-steps", "40")
    assert code == 0, err
    assert "overall" in out and "FID" in out and "memorized" in out
    code, out, err = run(capsys, "evaluate", synth, "--real", real, "--features", "inception", "--inception-weights", tmp_path / "none.pth")
    assert code == 4 and err.strip().startswith("error: Inception-v3 weights not found at") and len(err.strip().splitlines()) == 1
