"""`augmentgan generate` end to end: exit codes, files, --force, one-line errors."""

from __future__ import annotations

import json

import pytest

from augmentgan.cli.main import main
from augmentgan.data import load


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_generate_command(capsys, tmp_path, run_dir):
    out = tmp_path / "synth.h5"
    args = ["generate", run_dir, "--out", out, "--counts", "one=3,two=5", "--filter", "discriminator:keep=0.9,burn=64", "--device", "cpu"]
    code, stdout, err = run(capsys, *args, "--json")
    assert code == 0, err
    report = json.loads(stdout)
    assert [c["kept"] for c in report["classes"]] == [0, 3, 5] and report["out"] == str(out)
    assert load(out).class_counts().tolist() == [0, 3, 5]
    assert sorted(p.name for p in (tmp_path / "synth-grids").iterdir()) == ["one.png", "two.png"]

    code, _, err = run(capsys, *args)
    assert code == 5 and err.strip().startswith("error: output") and "--force" in err

    code, stdout, err = run(capsys, *args, "--force", "--seed", "1")
    assert code == 0 and "rejected: discriminator" in stdout and "grids:" in stdout

    code, stdout, err = run(capsys, "generate", run_dir, "--out", tmp_path / "bad.h5", "--per-class", "1", "--filter", "confidence:q=1")
    lines = err.strip().splitlines()
    assert code == 4 and len(lines) == 1 and lines[0] == "error: filter confidence: unknown key(s) ['q']; valid keys: p"
    assert not (tmp_path / "bad.h5").exists()


def test_counts_given_twice_are_taken_together_never_the_last_alone(capsys, tmp_path, run_dir):
    # probe: --counts one=2 --counts two=1 wrote one sample of 'two' and none of 'one', without a word
    code, _, err = run(capsys, "generate", run_dir, "--out", tmp_path / "a.h5", "--counts", "one=2", "--counts", "two=1", "--device", "cpu")
    assert code == 0, err
    assert load(tmp_path / "a.h5").class_counts().tolist() == [0, 2, 1]
    code, _, err = run(capsys, "generate", run_dir, "--out", tmp_path / "b.h5", "--counts", "one=2", "--counts", "one=3", "--device", "cpu")
    assert code == 4 and "class 'one' is given twice" in err and not (tmp_path / "b.h5").exists()
