"""The trainer: determinism, checkpoints and resume (with a real SIGKILL), faults, run folder, train-step pieces."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from augmentgan.data.types import LabeledImages
from augmentgan.errors import CheckpointError, ConfigError, DataError, OutputExistsError, TrainingError, TrainingInterrupted
from augmentgan.gan import gan as gan_module
from augmentgan.gan.checkpoint import FORMAT, load_checkpoint, load_generator
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.losses import get_loss
from augmentgan.gan.sampling import LatentSampler, RealSampler, fixed_noise
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import bars, one_thread, tiny  # noqa: F401 - one_thread is a fixture

HERE = Path(__file__).parent


def config(**kw) -> TrainConfig:
    base = dict(steps=4, batch=8, device="cpu", log_every=2, ckpt_every=2, sample_every=2)
    return TrainConfig(**{**base, **kw})


def ckpt_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state"]


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def data() -> LabeledImages:
    return bars()


# A GAN that exercises every piece of resumable state: BN statistics in G, spectral-norm
# vectors, Adam moments, EMA, DiffAugment and gradient-penalty generators, n_dis > 1.
RESUME_GAN = dict(
    model__d_norm="layer", model__g_sn=True, reg__gp=1.0, optim__n_dis=2,
    tricks__diffaug="translation,cutout", tricks__ema=True, tricks__ema_start=5, tricks__ema_decay=0.9,
)


# --- determinism and resume -------------------------------------------------------------------
def test_same_seed_gives_identical_weights_and_another_seed_does_not(tmp_path, data):
    gan = tiny("dcgan", **RESUME_GAN)
    runs = [train(data, gan, config(seed=seed), tmp_path / f"run{i}").checkpoint for i, seed in enumerate((3, 3, 4))]
    a, b, c = (ckpt_state(p) for p in runs)
    assert_same_tensors(a["G"], b["G"])
    assert_same_tensors(a["D"], b["D"])
    assert_same_tensors(a["G_ema"]["model"], b["G_ema"]["model"])
    assert any(not torch.equal(a["G"][k], c["G"][k]) for k in a["G"])


def test_resume_to_more_steps_equals_a_straight_run(tmp_path, data):
    gan = tiny("dcgan", **RESUME_GAN)
    straight = train(data, gan, config(steps=6), tmp_path / "straight")
    train(data, gan, config(steps=4), tmp_path / "split")
    resumed = train(data, gan, config(steps=6), tmp_path / "split", resume=True)
    assert resumed.start_step == 4 and resumed.step == 6
    assert_same_tensors(ckpt_state(straight.checkpoint)["G"], ckpt_state(resumed.checkpoint)["G"])
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_a_run_saved_before_newer_config_fields_existed_still_resumes(tmp_path, data):
    """Checkpoints written before a field was added (e.g. reg.lecam, model.mbstd) lack it: it counts as its default."""
    from augmentgan.gan import checkpoint as ckpt

    gan = tiny("dcgan")
    train(data, gan, config(steps=2), tmp_path / "old")
    for _, path in ckpt.step_checkpoints(tmp_path / "old" / "checkpoints"):
        payload = ckpt.load_checkpoint(path)
        del payload["gan"]["reg"]["lecam"], payload["gan"]["model"]["mbstd"]
        ckpt.save_checkpoint(payload, path)
    assert train(data, gan, config(steps=4), tmp_path / "old", resume=True).step == 4
    with pytest.raises(CheckpointError, match="gan.optim.lr_d"):
        train(data, gan.model_copy(update={"optim": gan.optim.model_copy(update={"lr_d": 1e-3})}), config(steps=6), tmp_path / "old", resume=True)


KILL_SCRIPT = """
import sys, time
from pathlib import Path
import torch
sys.path.insert(0, {here!r})
from trainer_data import bars, tiny
from augmentgan.gan.trainer import TrainConfig, train

torch.set_num_threads(1)
out = Path(sys.argv[1])

def stall(event):
    if event.done == 25:  # past the step-20 checkpoint: say so, then hang until killed
        (out.parent / "at-25").write_text("")
        time.sleep(600)

train(bars(), tiny("dcgan", **{gan!r}), TrainConfig(**{cfg!r}), out, callback=stall)
"""


def test_sigkill_then_resume_is_bit_identical_to_a_straight_run(tmp_path, data, one_thread):
    cfg = dict(steps=40, batch=8, device="cpu", log_every=1, ckpt_every=20, sample_every=0)
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT.format(here=str(HERE), gan=RESUME_GAN, cfg=cfg))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "at-25").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the training subprocess never reached step 25"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000020.pt", "step-000020.pt.sha256"]

    gan = tiny("dcgan", **RESUME_GAN)
    resumed = train(data, gan, TrainConfig(**cfg), out, resume=True)
    straight = train(data, gan, TrainConfig(**cfg), tmp_path / "straight")
    assert resumed.start_step == 20
    a, b = ckpt_state(resumed.checkpoint), ckpt_state(straight.checkpoint)
    for net in ("G", "D"):
        assert_same_tensors(a[net], b[net])
    assert_same_tensors(a["G_ema"]["model"], b["G_ema"]["model"])
    # the metrics lines the killed process wrote after its checkpoint (21-25) were replaced
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 41))


def test_a_run_resumed_between_its_metrics_lines_writes_the_lines_of_a_straight_run(tmp_path, data):
    """probe: the metrics summed since the last line were not checkpointed, so the first line after a
    resume averaged only the steps after the checkpoint (README: a resumed run's metrics are identical)."""
    import shutil

    cfg = config(steps=12, log_every=4, ckpt_every=6, sample_every=0, keep_last=10)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(data, tiny("dcgan"), cfg, straight)
    shutil.copytree(straight, killed)
    for path in (killed / "checkpoints").iterdir():  # as if killed after step 6's checkpoint, mid-way between the lines of steps 4 and 8
        if not path.name.startswith("step-000006"):
            path.unlink()
    assert train(data, tiny("dcgan"), cfg, killed, resume=True).start_step == 6

    def lines(run):  # noqa: ANN001, ANN202 - everything but the clocks
        return [{k: v for k, v in json.loads(line).items() if k not in ("time", "elapsed_s", "steps_per_s")} for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert [r["step"] for r in lines(killed)] == [4, 8, 12] and lines(killed) == lines(straight)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, and a scheduler stopping a one-process job (it exited 143, steps lost)
def test_sigint_writes_a_checkpoint_and_raises_interrupted(tmp_path, data, sig):
    def press_ctrl_c(event):
        if event.done == 3:
            os.kill(os.getpid(), sig)

    handler = signal.getsignal(sig)
    # Ctrl-C while step 3 is reported: step 3 ends as it would have (its metrics line and grid written), then the checkpoint
    with pytest.raises(TrainingInterrupted, match=r"interrupted at step 3; checkpoint .*step-000003\.pt written; pass --resume to continue$"):
        train(data, tiny("dcgan"), config(steps=50, log_every=1, ckpt_every=100, sample_every=1), tmp_path / "run", callback=press_ctrl_c)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "step-000003.pt")["step"] == 3
    assert not (tmp_path / "run" / "checkpoints" / "final.pt").exists()
    assert signal.getsignal(sig) is handler  # restored
    resumed = train(data, tiny("dcgan"), config(steps=6, log_every=1, ckpt_every=100, sample_every=1), tmp_path / "run", resume=True)
    assert resumed.start_step == 3
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 7))  # no step's line lost to the interruption
    assert sorted(p.name for p in (tmp_path / "run" / "samples").glob("step-*.png")) == [f"step-{i:06d}.png" for i in range(1, 7)]


# --- faults -------------------------------------------------------------------------------------
def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, data, monkeypatch):
    bce = get_loss("bce")
    calls = {"n": 0}

    def d_fn(real, fake, s):
        calls["n"] += 1
        loss = bce.d_fn(real, fake, s)
        return loss * float("nan") if calls["n"] == 7 else loss

    monkeypatch.setattr(gan_module, "get_loss", lambda name: dataclasses.replace(bce, d_fn=d_fn))
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as err:
        train(data, tiny("dcgan", loss__name="bce"), config(steps=20, log_every=5, ckpt_every=5), out)
    msg = str(err.value)
    assert msg.startswith("step 7: D loss is not finite")
    assert "lower optim.lr_d" in msg and "reg.gp" in msg and "step-000005.pt" in msg
    assert "\n" not in msg
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000005.pt", "step-000005.pt.sha256"]


def test_nonfinite_weights_are_found(data):
    gan = ConditionalGAN(tiny("dcgan"), img_size=16, channels=1, num_classes=3)
    assert gan.nonfinite_weights() is None
    with torch.no_grad():
        next(gan.D.parameters()).view(-1)[0] = float("inf")
    assert gan.nonfinite_weights() == "D"


def test_resume_refuses_another_config_or_data(tmp_path, data):
    out = tmp_path / "run"
    train(data, tiny("dcgan"), config(steps=2), out)
    with pytest.raises(CheckpointError, match=r"gan\.optim\.lr_g.*differ"):
        train(data, tiny("dcgan", optim__lr_g=1e-3), config(steps=4), out, resume=True)
    with pytest.raises(CheckpointError, match=r"train\.batch"):
        train(data, tiny("dcgan"), config(steps=4, batch=4), out, resume=True)
    with pytest.raises(CheckpointError, match=r"data \(fingerprint\)"):
        train(bars(seed=1), tiny("dcgan"), config(steps=4), out, resume=True)
    with pytest.raises(ConfigError, match="beyond --steps 1"):
        train(data, tiny("dcgan"), config(steps=1), out, resume=True)
    # what and how often to log or save may change
    train(data, tiny("dcgan"), config(steps=3, log_every=1, sample_every=0, keep_last=1), out, resume=True)


def test_resume_in_another_precision_is_allowed_and_said_not_to_be_exact(tmp_path, data):
    import warnings

    from augmentgan.errors import AugmentganWarning

    out = tmp_path / "run"
    train(data, tiny("dcgan"), config(steps=2, precision="fp32"), out)
    with pytest.warns(AugmentganWarning, match="resuming in bf16 a run trained so far in fp32.*pass --precision fp32 to continue it exactly"):
        train(data, tiny("dcgan"), config(steps=3, precision="bf16"), out, resume=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="resuming in", category=AugmentganWarning)
        train(data, tiny("dcgan"), config(steps=4, precision="bf16"), out, resume=True)  # the same precision as its last stretch: nothing to say


def test_existing_run_folder_needs_force_or_resume(tmp_path, data):
    out = tmp_path / "run"
    train(data, tiny("dcgan"), config(steps=2), out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--resume .* or --force"):
        train(data, tiny("dcgan"), config(steps=2), out)
    train(data, tiny("dcgan"), config(steps=2, sample_every=0, ckpt_every=10), out, force=True)
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-000002.png"]
    assert (out / "notes.txt").read_text() == "mine"  # only what a run writes is removed
    for p in (out / "checkpoints").iterdir():
        p.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(data, tiny("dcgan"), config(steps=4), out, resume=True)


def test_foreign_corrupt_and_unsafe_checkpoints_are_refused(tmp_path, data):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, foreign)
    with pytest.raises(CheckpointError, match="not an augmentgan GAN checkpoint"):
        load_generator(foreign)
    run = train(data, tiny("dcgan"), config(steps=2), tmp_path / "run")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(run.checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_generator(corrupt)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"format": FORMAT, "payload": argparse.Namespace(a=1)}, unsafe)
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(unsafe)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "missing.pt")
    edited = tmp_path / "edited.pt"  # weights of one config under another config
    payload = torch.load(run.checkpoint, weights_only=True)
    payload["gan"]["model"]["g_ch"] = 16
    torch.save(payload, edited)
    with pytest.raises(CheckpointError, match="does not match this augmentgan's GAN models"):
        load_generator(edited)


# --- the run folder ----------------------------------------------------------------------------
def test_run_folder_holds_config_metrics_grids_and_checkpoints(tmp_path, data):
    out = tmp_path / "run"
    gan = tiny("wgan-gp", optim__n_dis=1)
    result = train(data, gan, config(steps=4, keep_last=1, sample_per_class=5), out, data_spec="bars")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["final.pt", "final.pt.sha256", "step-000004.pt", "step-000004.pt.sha256"]
    assert result.checkpoint == out / "checkpoints" / "final.pt"

    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in lines] == [2, 4]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "gp", "lr_g", "lr_d", "steps_per_s", "time"} <= lines[0].keys()
    assert all(np.isfinite(row["gp"]) and row["gp"] >= 0 for row in lines)

    grids = sorted((out / "samples").iterdir())
    assert [p.name for p in grids] == ["step-000002.png", "step-000004.png"]
    with Image.open(grids[-1]) as im:  # 3 class rows x 5 samples of 16 px with 2 px padding
        assert im.size == (5 * 18 + 2, 3 * 18 + 2)

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["gan"] == gan.model_dump(mode="json")
    assert saved["train"]["steps"] == 4 and saved["train"]["real_sampling"] == "balanced"
    assert saved["data"]["fingerprint"] == data.fingerprint()
    assert saved["data"]["class_counts"] == [48, 24, 12] and saved["data"]["spec"] == "bars"
    assert saved["resolved"]["model"]["d_norm"] == "layer"
    assert saved["versions"]["torch"] == str(torch.__version__)

    raw = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert raw["format"] == FORMAT and raw["step"] == 4
    assert {"G", "D", "G_ema", "opt_g", "opt_d", "generators"} <= raw["state"].keys()
    assert {"batches", "global"} <= raw["rng"].keys()
    assert raw["data"]["fingerprint"] == data.fingerprint()


def test_sample_grid_noise_has_one_row_per_class():
    z, y = fixed_noise(seed=1, num_classes=3, per_class=4, z_dim=5)
    assert y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(z[:4], z[4:8])  # same latents down each column: only the class changes


def test_load_generator_returns_the_ema_generator_and_its_provenance(tmp_path, data):
    gan = tiny("dcgan", tricks__ema=True, tricks__ema_decay=0.5)
    run = train(data, gan, config(steps=4), tmp_path / "run")
    G, info = load_generator(tmp_path / "run")
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert info.ema and info.step == 4 and info.class_names == data.class_names
    assert info.img_size == 16 and info.channels == 1 and info.data_fingerprint == data.fingerprint()
    assert info.gan == gan and len(info.sha256) == 64
    x = G(torch.randn(6, G.z_dim), torch.tensor([0, 1, 2, 0, 1, 2]))
    assert x.shape == (6, 1, 16, 16) and x.abs().max() <= 1
    G_raw, info_raw = load_generator(run.checkpoint, ema=False)
    assert not info_raw.ema
    assert any(not torch.equal(a, b) for a, b in zip(G.state_dict().values(), G_raw.state_dict().values()))
    G_step2, info2 = load_generator(tmp_path / "run", which=2)
    assert info2.step == 2


# --- pieces of the train step ----------------------------------------------------------------------
def test_balanced_real_batches_and_fake_label_modes():
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    draws = {mode: np.bincount(labels[RealSampler(labels, 3, mode, np.random.default_rng(0))(30000)], minlength=3) / 30000 for mode in ("balanced", "uniform")}
    np.testing.assert_allclose(draws["balanced"], [1 / 3] * 3, atol=0.02)
    np.testing.assert_allclose(draws["uniform"], [0.9, 0.09, 0.01], atol=0.01)
    for mode, expected in (("uniform", [1 / 3] * 3), ("empirical", [0.9, 0.09, 0.01])):
        _, y = LatentSampler(4, [900, 90, 10], mode, torch.Generator().manual_seed(0))(30000)
        np.testing.assert_allclose(np.bincount(y.numpy(), minlength=3) / 30000, expected, atol=0.02)


def _batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.rand(n, 1, 16, 16, generator=g) * 2 - 1, torch.arange(n) % 3


def test_unrolled_g_step_changes_g_and_leaves_d_untouched():
    x, y = _batch()
    after = {}
    for k in (0, 3):
        gan = ConditionalGAN(tiny("dcgan", optim__unrolled_k=k, optim__lr_d=0.05), img_size=16, channels=1, num_classes=3, seed=1)
        d_before = {n: t.clone() for n, t in gan.D.state_dict().items()}
        gan.g_step(x, y)
        after[k] = gan.G.state_dict()
        if k:
            assert_same_tensors(d_before, gan.D.state_dict())  # weights and BN/SN buffers
            assert all(p.grad is None for p in gan.D.parameters())
    changed = [n for n in after[0] if after[0][n].is_floating_point() and not torch.equal(after[0][n], after[3][n])]
    assert changed  # G's update went through the unrolled D


def test_lazy_regularization_applies_the_penalty_every_k_d_steps():
    x, y = _batch()
    gan = ConditionalGAN(tiny("wgan-gp", reg__every=2), img_size=16, channels=1, num_classes=3)
    assert ["gp" in gan.d_step(x, y) for _ in range(4)] == [False, True, False, True]


def test_pacgan_batch_must_divide_and_packed_training_runs(tmp_path, data):
    with pytest.raises(ConfigError, match="not divisible by tricks.pac=3"):
        train(data, tiny("dcgan", tricks__pac=3), config(steps=1), tmp_path / "a")
    result = train(data, tiny("dcgan", tricks__pac=2), config(steps=2), tmp_path / "b")
    assert np.isfinite(list(result.metrics.values())).all()


def test_precision_and_memory_format(tmp_path, data):
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        train(data, tiny("dcgan"), config(precision="fp16"), tmp_path / "a")
    result = train(data, tiny("dcgan"), config(steps=2, precision="bf16", channels_last=True), tmp_path / "b")
    assert np.isfinite(list(result.metrics.values())).all()


def test_image_size_and_class_checks(tmp_path, data):
    wide = LabeledImages(np.zeros((4, 16, 20, 1), np.uint8), np.array([0, 1, 0, 1]), ("a", "b"))
    with pytest.raises(ConfigError, match="not square; pass --size"):
        train(wide, tiny("dcgan"), config(), tmp_path / "a")
    empty = LabeledImages(data.images, data.labels, data.class_names + ("none",))
    with pytest.raises(DataError, match=r"\['none'\] have no images"):
        train(empty, tiny("dcgan"), config(), tmp_path / "b")
    small = LabeledImages(data.images[:, ::2, ::2], data.labels, data.class_names)  # 8x8 -> trained at 16x16
    with pytest.warns(UserWarning, match="attn_res 32 -> 8"):
        train(small, tiny("sagan"), config(steps=1), tmp_path / "c")
    saved = yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())
    assert saved["resolved"]["img_size"] == 16 and saved["gan"]["model"]["attn_res"] == 8
    G, info = load_generator(tmp_path / "c")
    assert info.data_size == (8, 8) and G(torch.randn(1, G.z_dim), torch.tensor([0])).shape[-1] == 16
