"""`augmentgan train --eval-every`: quality rows, best.pt in the --json result, `generate` reading it by default."""

from __future__ import annotations

import json

import pytest
import yaml

from augmentgan.cli.main import main
from augmentgan.domain.classifier import ClassifierSettings

TINY = ["--set", "model.g_ch=8", "--set", "model.d_ch=8", "--set", "model.z_dim=16", "--set", "model.embed_dim=8"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert info.value.code == 0, err
    return json.loads(out)


def test_eval_every_keeps_best_pt_and_generate_uses_it_unless_told_final(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))  # the domain classifier is trained once, here,
    monkeypatch.setattr(ClassifierSettings, "steps", 30)  # and briefly: this tests the plumbing, not the features
    out = tmp_path / "run"
    result = run(capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "4", "--eval-every", "2", "--out", out, *TINY,
                 "--batch", "8", "--device", "cpu", "--precision", "auto", "--log-every", "2", "--sample-every", "0", "--ckpt-every", "2", "--json")
    assert result["precision"] in ("bf16", "fp32") and result["best"]["step"] in (2, 4)
    assert result["best"]["checkpoint"] == str(out / "checkpoints" / "best.pt")
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["eval_every"] == 2 and saved["resolved"]["precision"] == result["precision"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if "eval/score" in r]
    assert [r["step"] for r in evals] == [2, 4] and all(f"eval/diversity/{c}" in evals[0] for c in "0123456789")
    assert max(r["eval/score"] for r in evals) == result["best"]["score"]

    chosen = run(capsys, "generate", out, "--out", tmp_path / "a.h5", "--per-class", "1", "--device", "cpu", "--no-grids", "--json")
    assert chosen["step"] == result["best"]["step"] and chosen["checkpoint"].endswith("best.pt")
    final = run(capsys, "generate", out, "--out", tmp_path / "b.h5", "--per-class", "1", "--device", "cpu", "--no-grids", "--checkpoint", "final", "--json")
    assert final["step"] == 4 and final["checkpoint"].endswith("final.pt")


def test_a_run_shorter_than_eval_every_is_scored_at_its_last_step(capsys, tmp_path, monkeypatch):
    # README: "every --eval-every steps ... and at the last step"; `train --steps 800` with the default 1000 had no score, no best.pt
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(ClassifierSettings, "steps", 30)
    out = tmp_path / "run"
    result = run(capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "3", "--out", out, *TINY,
                 "--batch", "8", "--device", "cpu", "--log-every", "3", "--sample-every", "0", "--ckpt-every", "3", "--json")
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if "eval/score" in line]
    assert [r["step"] for r in evals] == [3] and result["best"]["step"] == 3 and (out / "checkpoints" / "best.pt").is_file()
