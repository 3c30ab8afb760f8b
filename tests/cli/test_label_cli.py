"""`augmentgan train --unlabeled` and `augmentgan label`: a semi-supervised run, pseudo-labels, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import augmentgan.cli.main as cli_main
from augmentgan.data.hdf5 import read_hdf5, read_hdf5_extra, write_hdf5

if Path(cli_main.__file__).resolve().parent != Path(__file__).resolve().parents[2] / "cli":  # an editable install of another checkout
    pytest.skip("augmentgan.cli is installed from another checkout than these tests", allow_module_level=True)

from augmentgan.data.types import LabeledImages  # noqa: E402
from test_train_cli import FAST, TINY, assert_one_line_error, run  # noqa: E402


def _images(n: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("semi")
    write_hdf5(LabeledImages(_images(24), np.arange(24) % 3, ("a", "b", "c")), root / "labeled.h5")
    np.savez(root / "unlabeled.npz", x=_images(30, seed=1))
    np.savez(root / "small.npz", x=_images(30, size=8, seed=1))
    return root


def test_train_with_unlabeled_images_then_label_them(capsys, tmp_path, files):
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "train", files / "labeled.h5", "--unlabeled", files / "unlabeled.npz", "--preset", "ssgan", "--steps", "2",
                       "--out", run_dir, "--eval-every", "0", "--set", "semi.unlabeled_batch=8", *TINY, *FAST)
    assert code == 0, err
    code, out, err = run(capsys, "label", run_dir, files / "unlabeled.npz", "--out", tmp_path / "pseudo.h5", "--min-confidence", "0", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kept"] == summary["images"] == 30 and sum(summary["per_class"].values()) == 30
    pseudo = read_hdf5(tmp_path / "pseudo.h5")
    assert pseudo.source_counts()["pseudo"] == 30 and len(read_hdf5_extra(tmp_path / "pseudo.h5")["confidence"]) == 30
    code, _, err = run(capsys, "label", run_dir, files / "unlabeled.npz", "--out", tmp_path / "none.h5", "--min-confidence", "1")
    assert code != 0
    assert_one_line_error(err, "reaches --min-confidence 1", "lower it")
    code, _, err = run(capsys, "label", run_dir, files / "small.npz", "--out", tmp_path / "small.h5")
    assert_one_line_error(err, "are 8x8 with 1 channel(s), the labeled data 16x16 with 1: resize them to 16x16 (or pass --size 16)")
    code, out, err = run(capsys, "label", run_dir, files / "small.npz", "--out", tmp_path / "small.h5", "--size", "16", "--min-confidence", "0", "--json")
    assert code == 0 and json.loads(out)["kept"] == 30, err  # read as `train --size 16` would have read them
    assert (read_hdf5_extra(tmp_path / "small.h5")["unlabeled_index"] == np.arange(30)).all()  # each row traced to its image
    # --checkpoint follows generate's rules: a wrong word is a configuration error naming the choices, and a
    # .pt file given as RUN cannot also choose another checkpoint
    code, _, err = run(capsys, "label", run_dir, files / "unlabeled.npz", "--out", tmp_path / "x.h5", "--checkpoint", "nonsense")
    assert code == 4
    assert_one_line_error(err, "--checkpoint 'nonsense'", "use auto, best, final, last")
    code, _, err = run(capsys, "label", run_dir / "checkpoints" / "final.pt", files / "unlabeled.npz", "--out", tmp_path / "x.h5", "--checkpoint", "2")
    assert code == 4
    assert_one_line_error(err, "is a checkpoint file already")
    code, out, err = run(capsys, "label", run_dir, files / "unlabeled.npz", "--out", tmp_path / "last.h5", "--checkpoint", "last", "--min-confidence", "0", "--json")
    assert code == 0 and json.loads(out)["kept"] == 30, err
    (tmp_path / "ub").mkdir()
    (tmp_path / "ub" / "bad.png").write_bytes(b"x")  # label has no --skip-bad, and convert reads labeled data only: no such hint
    code, _, err = run(capsys, "label", run_dir, tmp_path / "ub", "--out", tmp_path / "x.h5")
    assert code == 3
    assert_one_line_error(err, "cannot read image", "replace or remove it")
    assert "--skip-bad" not in err and "convert" not in err
    # a checkpoint damaged after it was written is refused, never used
    final = run_dir / "checkpoints" / "final.pt"
    raw = bytearray(final.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    final.write_bytes(bytes(raw))
    for command in (["label", run_dir, files / "unlabeled.npz"], ["generate", run_dir, "--per-class", "1"]):
        code, _, err = run(capsys, *command, "--out", tmp_path / "damaged.h5")
        assert code == 6
        assert_one_line_error(err, f"checkpoint {final} is damaged", "recorded when it was written", "--checkpoint last")
    assert not (tmp_path / "damaged.h5").exists() and final.is_file()  # refused and left where it was


def test_unlabeled_with_a_preset_that_cannot_use_them_is_one_line(capsys, tmp_path, files):
    code, _, err = run(capsys, "train", files / "labeled.h5", "--unlabeled", files / "unlabeled.npz", "--preset", "sngan", "--steps", "2", "--out", tmp_path / "r")
    assert code != 0
    assert_one_line_error(err, "--unlabeled needs a discriminator that can learn from unlabeled images", "--preset ssgan")
