"""Checkpoint integrity: sha256 records written with every checkpoint, damage found, set aside, and
training resumed from the newest intact checkpoint, bit-identical to an undamaged run."""

from __future__ import annotations

import hashlib
import shutil
import warnings
from pathlib import Path

import pytest
import torch

from augmentgan.errors import AugmentganWarning, CheckpointError
from augmentgan.gan import checkpoint as ckpt
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import bars, tiny


def config(**kw) -> TrainConfig:
    base = dict(steps=6, batch=8, device="cpu", log_every=2, ckpt_every=2, sample_every=0, keep_last=2)
    return TrainConfig(**{**base, **kw})


def states(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state"]


def assert_same(a: dict, b: dict) -> None:
    for net in ("G", "D"):
        assert a[net].keys() == b[net].keys()
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), (net, key)


@pytest.fixture(scope="module")
def data():
    return bars((12, 8, 6))


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data) -> Path:
    return train(data, tiny("dcgan"), config(), tmp_path_factory.mktemp("straight") / "run").checkpoint


def test_every_checkpoint_has_a_matching_sha256_record(straight: Path) -> None:
    folder = straight.parent  # step 2 was pruned (keep_last=2), its record with it
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["final.pt", "final.pt.sha256", "step-000004.pt", "step-000004.pt.sha256", "step-000006.pt", "step-000006.pt.sha256"]
    for pt in folder.glob("*.pt"):
        digest, name = ckpt.digest_path(pt).read_text(encoding="utf-8").split()
        assert name == pt.name and digest == hashlib.sha256(pt.read_bytes()).hexdigest()  # `sha256sum -c` format
        assert ckpt.verify(pt) is None


def test_damage_is_found_with_or_without_a_record(tmp_path: Path, straight: Path) -> None:
    good = straight.read_bytes()
    flipped = tmp_path / "flipped.pt"  # one bit changed in the middle: still a readable zip? the record tells
    flipped.write_bytes(good[: len(good) // 2] + bytes([good[len(good) // 2] ^ 1]) + good[len(good) // 2 + 1 :])
    ckpt.digest_path(flipped).write_text(ckpt.digest_path(straight).read_text(encoding="utf-8"), encoding="utf-8")
    assert "differs from" in ckpt.verify(flipped)
    truncated = tmp_path / "truncated.pt"  # no record: the file is read
    truncated.write_bytes(good[:1000])
    assert ckpt.verify(truncated) == "it cannot be read as an augmentgan checkpoint"
    legacy = tmp_path / "legacy.pt"  # an intact file written before records existed
    legacy.write_bytes(good)
    assert ckpt.verify(legacy) is None


def test_newest_intact_sets_damaged_ones_aside_with_a_warning(tmp_path: Path, straight: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for src in straight.parent.iterdir():
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "step-000006.pt").write_bytes((folder / "step-000006.pt").read_bytes()[:-100])
    with pytest.warns(AugmentganWarning, match=r"checkpoint .*step-000006\.pt is damaged \(its sha256 .* differs .*\): set aside as step-000006\.pt\.damaged"):
        assert ckpt.newest_intact(folder) == folder / "step-000004.pt"
    assert (folder / "step-000006.pt.damaged").is_file() and (folder / "step-000006.pt.damaged.sha256").is_file()
    assert not (folder / "step-000006.pt").exists()  # renamed, not deleted; the next look finds nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ckpt.newest_intact(folder) == folder / "step-000004.pt"


def test_resume_skips_damaged_checkpoints_and_ends_bit_identical(tmp_path: Path, data, straight: Path) -> None:
    out = tmp_path / "run"
    shutil.copytree(straight.parents[1], out)
    cks = out / "checkpoints"
    for name in ("final.pt", "step-000006.pt"):  # what a full disk leaves: truncated files
        (cks / name).write_bytes((cks / name).read_bytes()[:4096])
    (cks / "final.pt").unlink()
    with pytest.warns(AugmentganWarning, match=r"step-000006\.pt is damaged"):
        resumed = train(data, tiny("dcgan"), config(), out, resume=True)
    assert resumed.start_step == 4 and ckpt.verify(resumed.checkpoint) is None
    assert_same(states(resumed.checkpoint), states(straight))


def test_a_damaged_file_the_user_names_is_still_one_clear_error(tmp_path: Path, straight: Path) -> None:
    bad = tmp_path / "mine.pt"
    bad.write_bytes(straight.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match=r"mine\.pt cannot be read safely") as err:
        load_generator(bad)
    assert "\n" not in str(err.value) and bad.exists()  # never renamed: it is the user's file
    bad.write_bytes(bytes(range(256)) * 4)  # not a torch file at all: a short reason, not torch's weights_only advice cut mid-sentence
    with pytest.raises(CheckpointError, match=r"mine\.pt cannot be read safely \(.{0,160}\); it is corrupt") as err:
        load_generator(bad)
    assert "In PyTorch 2.6" not in str(err.value)

