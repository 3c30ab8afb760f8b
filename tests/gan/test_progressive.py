"""Progressive growing (ProGAN, Karras et al. 2018): schedule, continuity of a growth step, resume across one, grids."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from augmentgan.errors import ConfigError
from augmentgan.gan.config import GrowConfig
from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.models import build_discriminator, build_generator, growth_at, growth_levels, set_growth
from augmentgan.gan.presets import get_preset
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import assert_same_state, bars, straight_and_resumed, tiny


def test_schedule_stable_then_fade_per_resolution():
    grow = GrowConfig(start=8, stable=3, fade=2)
    phases = [grow.phase(t, [8, 16, 32]) for t in range(12)]
    assert phases == [
        (8, 1.0), (8, 1.0), (8, 1.0), (16, 0.0), (16, 0.5),
        (16, 1.0), (16, 1.0), (16, 1.0), (32, 0.0), (32, 0.5),
        (32, 1.0), (32, 1.0),
    ]
    assert grow.phase(10**6, [8, 16, 32]) == (32, 1.0)
    preset = get_preset("progressive").model
    assert growth_levels(preset, 32) == [8, 16, 32] and growth_levels(preset, 16) == [8, 16]
    assert growth_at(get_preset("sngan").model, 32, 0) == (32, 1.0)  # off: full size from the start


def test_bad_growth_settings_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"model.grow.start=8: progressive growing is built for \['biggan', 'resnet', 'sagan'\], not model.arch='dcgan'"):
        build_generator(tiny("dcgan", model__grow__start=8).model, img_size=16, channels=1, num_classes=3)
    for start in (16, 12, 4):
        with pytest.raises(ConfigError, match=rf"model.grow.start={start} is not a resolution to grow from at 16x16; use one of \[8\] or null"):
            build_discriminator(tiny("progressive", model__grow__start=start).model, img_size=16, channels=1, num_classes=3)


@pytest.mark.parametrize("arch", ["resnet", "biggan"])
def test_a_growth_step_keeps_the_generators_image_continuous(arch):
    """Over the step where 32x32 starts fading in, G's image is the 16x16 one upsampled, exactly;
    then it moves away from it gradually as alpha grows."""
    cfg = tiny("progressive", model__arch=arch, model__grow__stable=4, model__grow__fade=4).model
    G = build_generator(cfg, img_size=32, channels=3, num_classes=3).eval()
    z, y = torch.randn(6, cfg.z_dim, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 0, 1, 2])
    with torch.no_grad():
        for t in range(8 + 3):  # past the 8 -> 16 fade: the last stable 16x16 step is 11, the fade starts at 12
            set_growth(G, *growth_at(cfg, 32, t))
        assert growth_at(cfg, 32, 11) == (16, 1.0) and growth_at(cfg, 32, 12) == (32, 0.0)
        set_growth(G, *growth_at(cfg, 32, 11))
        before = G(z, y, native=True)
        set_growth(G, *growth_at(cfg, 32, 12))
        after = G(z, y, native=True)
        assert before.shape[-1] == 16 and after.shape[-1] == 32
        assert torch.equal(after, F.interpolate(before, scale_factor=2, mode="nearest"))
        gaps = []
        for t in range(12, 17):
            set_growth(G, *growth_at(cfg, 32, t))
            gaps.append(float((G(z, y, native=True) - after).abs().mean()))
        assert gaps[0] == 0.0 and all(b > a for a, b in zip(gaps, gaps[1:]))  # alpha 0, 1/4, ... moves it steadily
        set_growth(G, 16, 1.0)
        assert G(z, y).shape[-1] == 32  # eval mode samples at the training size at every stage


def test_a_growth_step_keeps_what_the_discriminator_computes():
    cfg = tiny("progressive", model__d_cond="channels").model
    D = build_discriminator(cfg, img_size=32, channels=3, num_classes=3, per_sample_grad=True)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])
    set_growth(D, 16, 1.0)
    old = D(F.avg_pool2d(x, 2), y)
    set_growth(D, 32, 0.0)
    assert torch.equal(D(x, y), old)
    set_growth(D, 32, 1.0)
    assert not torch.allclose(D(x, y), old)


CFG = dict(batch=8, device="cpu", precision="fp32", log_every=1, ckpt_every=3, sample_every=1)


def test_resume_across_a_growth_boundary_is_bit_identical(tmp_path):
    gan = tiny("progressive", model__grow__stable=2, model__grow__fade=2, tricks__ema=True, tricks__ema_decay=0.9)
    # 8x8 for steps 1-2, 16x16 fading in over 3-4 (the split at 3 is inside the fade), stable from 5
    a, b = straight_and_resumed(bars((16, 8, 8)), gan, tmp_path, steps=5, split=3, **{**CFG, "sample_every": 0})
    assert_same_state(a, b)
    assert all(torch.equal(a["G_ema"]["model"][k], b["G_ema"]["model"][k]) for k in a["G_ema"]["model"])
    assert any(k.startswith("to_rgb.8.") for k in a["G"]) and any(k.startswith("from_rgb.8.") for k in a["D"])


def test_a_run_grows_logs_its_resolution_writes_native_grids_and_samples_at_full_size(tmp_path):
    data = bars((16, 8, 8))
    gan = tiny("progressive", model__grow__stable=3, model__grow__fade=1)
    from augmentgan.training import train as train_and_report  # the loop, then report.html

    run = train_and_report(data, gan, TrainConfig(steps=5, **{**CFG, "sample_every": 2, "ckpt_every": 2, "keep_last": 3}), tmp_path / "run").run_dir
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(r["resolution"], r["fade_alpha"]) for r in rows] == [(8, 1), (8, 1), (8, 1), (16, 0), (16, 1)]  # what each step trained at
    widths = {int(p.stem.split("-")[1]): Image.open(p).width for p in (run / "samples").glob("step-*.png")}
    assert widths[2] < widths[4] == widths[5]  # 8 then 16 pixels a tile (each grid as a checkpoint of its step loads)
    html = (run / "report.html").read_text()
    assert re.search(rf'style="width:{widths[5]}px;image-rendering:pixelated"', html)  # the 8x8 grid shown at the 16x16 grid's size
    G, info = load_generator(run, 2)  # trained at 8x8 only (16x16 fades in from step 4): samples are 16x16 all the same
    assert info.step == 2 and (G.grow_res, G.grow_alpha) == (8, 1.0)
    assert G(torch.randn(3, G.z_dim), torch.arange(3)).shape == (3, 1, 16, 16)
    assert (load_generator(run)[0].grow_res, load_generator(run)[0].grow_alpha) == (16, 1.0)


def test_after_each_step_the_growth_is_what_a_checkpoint_of_that_step_loads():
    """probe: the monitor scored step N with the fade-in alpha of step N - 1 while generate loads
    growth_at(N): best.pt could be chosen on a score of images it does not draw (4x apart mid-fade)."""
    gan = ConditionalGAN(tiny("progressive", model__grow__stable=2, model__grow__fade=4, tricks__ema=True), img_size=16, channels=1, num_classes=3, seed=1)
    x, y = bars((16, 8, 8)), None
    images = torch.from_numpy(x.images[:8]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    labels = torch.from_numpy(x.labels[:8])
    for step in range(1, 8):
        gan.train_iteration(lambda: (images, labels))
        assert gan.growth == growth_at(gan.cfg.model, 16, step), step
        assert (gan.sampling_generator.grow_res, gan.sampling_generator.grow_alpha) == growth_at(gan.cfg.model, 16, step)


def test_progressive_steps_are_cheaper_at_low_resolution():
    """The point of growing on a CPU: a step at 8x8 does a fraction of a 32x32 step's work (counted in conv FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    gan = ConditionalGAN(tiny("progressive", reg__gp=0.0), img_size=32, channels=1, num_classes=3, class_counts=[4, 4, 4])  # FlopCounterMode cannot count a double backward
    x, y = torch.zeros(8, 1, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    flops = {}
    for step in (0, 10**6):  # 8x8, then the final 32x32
        gan.num_g_steps = step
        with FlopCounterMode(display=False) as counter:
            gan.train_iteration(lambda: (x, y))
        flops[gan.growth[0]] = counter.get_total_flops()
    assert flops[8] < 0.25 * flops[32]
