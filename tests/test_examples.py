"""The scripts under examples/ run as documented (on a tiny budget)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_classifier_example_expands_trains_and_reports_macro_f1(tmp_path: Path) -> None:
    out = tmp_path / "expanded"
    cmd = [sys.executable, str(ROOT / "examples" / "train_classifier.py"), "--gan-steps", "3", "--gan-width", "8",
           "--steps", "10", "--out", str(out), "--json",
           # a fixed blend and no quality evaluations: the cheapest GAN expansion the recipe allows
           "--set", "gan.eval_every=0", "--set", "plan.mix={gan: 0.4, classical: 0.4, smote: 0.2}"]
    env = {**os.environ, "AUGMENTGAN_CACHE_DIR": str(tmp_path / "cache"), "NO_ALBUMENTATIONS_UPDATE": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    scores = json.loads(r.stdout.strip().splitlines()[-1])
    assert scores["train"] == str(out / "train.h5") and (out / "train.h5").is_file()
    assert scores["train_samples"] == 1200  # the quick start's 20% holdout leaves 120 in the largest class; 10 classes balanced to it
    assert 0.0 <= scores["macro_f1_expanded"] <= 1.0
    assert "expand: write" in r.stderr  # progress through the callback
