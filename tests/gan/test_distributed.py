"""torchrun data-parallel training: two gloo processes on the CPU against one process.

The runs go through the real entry point (``python -m torch.distributed.run ... -m augmentgan
train``). The GAN is the DCGAN preset at toy width: BatchNorm in G and D (so the global-batch
statistics matter), Adam, BCE loss, no DiffAugment or penalty noise (those draw per rank).

What the math says: every rank draws the same global batch and keeps its half; DDP averages the
two half-batch gradients, which equals the gradient of the global batch because the losses are
means; BatchNorm uses the statistics of the global batch. So the two-process run computes what one
process with the same global batch computes, up to the order of float additions. Adam divides by
the root of the squared gradient, so an element whose gradient is ~0 can move by +-lr on float
noise alone: the weights are compared by the share of elements that moved differently, and the
first step's losses (before any update) must agree to float precision.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from augmentgan.data.io import save
from trainer_data import bars

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
# torchrun runs each worker with one intra-op thread; the single process must too, so that float
# reductions (and the numbers compared below) are computed in the same order
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
# DiffAugment off (tricks.diffaug=auto would turn it on for this small data): each rank draws its own augmentations
GAN = ["--preset", "dcgan", "--set", "model.g_ch=8", "--set", "model.d_ch=8", "--set", "model.z_dim=16", "--set", "model.embed_dim=8", "--set", "tricks.diffaug=", "--eval-every", "0"]
STEPS = 4


def _train(data: Path, out: Path, *extra: str, procs: int = 2, steps: int = STEPS, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [*(TORCHRUN if procs > 1 else [sys.executable]), "-m", "augmentgan", "train", str(data), "--out", str(out), *GAN,
           "--device", "cpu", "--precision", "fp32", "--batch", "16", "--seed", "5", "--steps", str(steps), "--log-every", "1", "--sample-every", "0",
           "--ckpt-every", "2", "--json", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _summary(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def _state(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / "final.pt", map_location="cpu", weights_only=True)["state"]
    return {f"{net}.{k}": v.float() for net in ("G", "D") for k, v in state[net].items() if v.is_floating_point()}


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ddp")
    data = save(bars((24, 16, 8)), root / "bars.h5")
    paths = {"data": Path(data), "ddp": root / "ddp", "single": root / "single"}
    paths["ddp_summary"] = _summary(_train(paths["data"], paths["ddp"]))
    _train(paths["data"], paths["single"], procs=1)
    return paths


def test_both_ranks_hold_identical_weights(runs: dict) -> None:
    summary = runs["ddp_summary"]
    assert summary["world_size"] == 2
    digests = summary["state_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # rank 0 alone wrote the run folder: one metrics line per step, checkpoints of steps 2 and 4
    assert [m["step"] for m in _metrics(runs["ddp"])] == list(range(1, STEPS + 1))
    assert sorted(p.name for p in (runs["ddp"] / "checkpoints").glob("*.pt")) == ["final.pt", "step-000002.pt", "step-000004.pt"]


def test_two_processes_compute_what_one_process_computes(runs: dict) -> None:
    ddp, single = _metrics(runs["ddp"]), _metrics(runs["single"])
    for key in ("d_loss", "g_loss", "d_real", "d_fake"):  # step 1: the same weights see the same global batch
        assert ddp[0][key] == pytest.approx(single[0][key], rel=1e-5, abs=1e-6), key
    a, b = _state(runs["ddp"]), _state(runs["single"])
    assert a.keys() == b.keys()
    diffs = torch.cat([(a[k] - b[k]).abs().flatten() for k in a])
    # the same update for all but the elements whose Adam step is decided by float noise
    assert (diffs > 1e-5).float().mean().item() < 0.01, f"{(diffs > 1e-5).float().mean().item():.1%} of the weights differ"


def test_per_rank_batchnorm_is_not_the_single_process_model(runs: dict, tmp_path: Path) -> None:
    """The comparison above can fail: with BatchNorm statistics per rank the first losses differ."""
    out = tmp_path / "per-rank-bn"
    _train(runs["data"], out, "--set", "train.sync_bn=false", steps=1)
    per_rank, single = _metrics(out)[0], _metrics(runs["single"])[0]
    assert per_rank["d_loss"] != pytest.approx(single["d_loss"], rel=1e-3)


def test_resume_under_torchrun_continues_exactly(runs: dict, tmp_path: Path) -> None:
    # the uninterrupted run as a run stopped after step 2 leaves it (its later checkpoints gone):
    # one torchrun launch fewer than training 2 steps first, and the same state to resume from
    out = tmp_path / "resumed"
    shutil.copytree(runs["ddp"], out)
    for name in ("step-000004.pt", "final.pt"):
        (out / "checkpoints" / name).unlink()
    proc = _train(runs["data"], out, "--resume", steps=STEPS)
    assert _summary(proc)["resumed_from"] == 2
    a, b = _state(out), _state(runs["ddp"])
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed two-process run differs from an uninterrupted one"


def test_an_existing_output_stops_every_rank_with_the_error(runs: dict) -> None:
    proc = _train(runs["data"], runs["ddp"], check=False)  # exists, no --force / --resume
    assert proc.returncode != 0
    assert "exists and is not empty" in proc.stderr
    assert (runs["ddp"] / "checkpoints" / "final.pt").is_file()  # the earlier run is untouched
