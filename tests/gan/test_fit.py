"""How images reach the GAN's training size and how its samples come back (augmentgan.gan.fit)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from augmentgan.errors import CheckpointError, ConfigError
from augmentgan.gan import checkpoint as ckpt
from augmentgan.gan.fit import resolve_fit, to_data, to_train
from augmentgan.gan.monitoring import to_uint8
from augmentgan.gan.trainer import TrainConfig, prepare_images, train
from augmentgan.generate.generation import sample_dataset
from trainer_data import bars, tiny


@pytest.mark.parametrize(
    ("data", "img_size", "fit"),
    [(8, 16, "scale"), (16, 64, "scale"), (32, 32, "scale"), (28, 32, "pad"), (48, 64, "pad"), (100, 128, "pad"), (12, 16, "pad"),
     (20, 32, "resize"), (40, 64, "resize"), (64, 32, "resize")],
)
def test_auto_takes_the_first_lossless_fit_that_applies(data, img_size, fit):
    assert resolve_fit((data, data), img_size) == fit


def test_a_fit_that_cannot_apply_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"train.fit=scale .* 28x28 at 32"):
        resolve_fit((28, 28), 32, "scale")
    with pytest.raises(ConfigError, match=r"train.fit=pad .* 64x64 at 32"):
        resolve_fit((64, 64), 32, "pad")
    assert resolve_fit((20, 20), 32, "pad") == "pad"  # asked for: allowed below 3/4 too
    assert resolve_fit((28, 28), 32, "resize") == "resize"


@settings(max_examples=30, deadline=None)
@given(side=st.sampled_from([(8, 16), (28, 32), (12, 16), (4, 16), (16, 64)]), channels=st.sampled_from([1, 3]), seed=st.integers(0, 2**16))
def test_pad_and_scale_bring_every_image_back_exactly(side, channels, seed):
    data, img_size = side
    fit = resolve_fit((data, data), img_size)
    assert fit in ("pad", "scale")
    x = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (3, channels, data, data)).astype(np.float32))
    up = to_train(x, img_size, fit)
    assert up.shape == (3, channels, img_size, img_size)
    assert torch.equal(to_data(up, (data, data), fit), x)


def test_bilinear_resize_does_not_come_back_exactly():
    """Why pad and scale exist: the antialiased bilinear round trip blurs (here 8 -> 16 -> 8)."""
    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 1, 8, 8)).astype(np.float32))
    back = to_data(to_train(x, 16, "resize"), (8, 8), "resize")
    assert (back - x).abs().mean() > 10


def test_pad_repeats_the_edge_pixels():
    x = torch.arange(9, dtype=torch.float32).reshape(1, 1, 3, 3) * 10
    up = to_train(x, 4, "pad")  # one row/column of padding: after the image (odd remainder)
    assert up[0, 0, :3, :3].equal(x[0, 0]) and up[0, 0, 3, :3].equal(x[0, 0, 2]) and up[0, 0, :3, 3].equal(x[0, 0, :, 2])


@pytest.mark.parametrize(("size", "img_size", "fit"), [(12, 16, "pad"), (16, 32, "scale")])
def test_a_generator_that_outputs_the_training_images_writes_the_real_images(size, img_size, fit):
    """End to end through the trainer's preparation and the samples' way back: nothing is lost on the way."""
    data = bars(size=size)
    prepared = prepare_images(data, img_size, torch.device("cpu"), resolve_fit((size, size), img_size))
    assert prepared.shape[-1] == img_size
    as_generated = prepared.float().div(127.5).sub(1.0)  # what a G that learnt the images perfectly would output, in [-1, 1]
    assert np.array_equal(to_uint8(as_generated, (size, size), fit), data.images)


def test_a_run_records_its_fit_and_generation_crops_its_samples_back(tmp_path):
    data = bars(counts=(12, 8, 6), size=12)
    run = tmp_path / "run"
    train(data, tiny("dcgan"), TrainConfig(steps=2, batch=8, device="cpu", sample_every=0, ckpt_every=2, log_every=1), run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["resolved"]["fit"] == "pad" and config["data"]["fit"] == "pad" and config["train"]["fit"] == "auto"
    payload = ckpt.load_checkpoint(run / "checkpoints" / "final.pt")
    assert payload["data"]["fit"] == "pad"
    source = ckpt.open_generator(run)
    G, info = source.generator()
    assert info.fit == "pad" and info.img_size == 16
    synth, _ = sample_dataset(run, per_class=3, seed=0)
    assert synth.images.shape[1:] == (12, 12, 1)


def test_resuming_a_run_trained_before_fit_existed_needs_fit_resize(tmp_path):
    """Its images were resized: resuming it with auto (pad here) would change what D sees mid-run."""
    data = bars(counts=(12, 8, 6), size=12)
    run = tmp_path / "old"
    cfg = dict(batch=8, device="cpu", sample_every=0, ckpt_every=2, log_every=1)
    train(data, tiny("dcgan"), TrainConfig(steps=2, fit="resize", **cfg), run)
    for _, path in ckpt.step_checkpoints(run / "checkpoints"):
        payload = ckpt.load_checkpoint(path)
        del payload["data"]["fit"], payload["train"]["fit"]
        ckpt.save_checkpoint(payload, path)
    with pytest.raises(CheckpointError, match=r"train.fit \(that run: resize, now: pad; set train.fit=resize"):
        train(data, tiny("dcgan"), TrainConfig(steps=4, **cfg), run, resume=True)
    assert train(data, tiny("dcgan"), TrainConfig(steps=4, fit="resize", **cfg), run, resume=True).step == 4
    assert ckpt.open_generator(run).generator()[1].fit == "resize"
