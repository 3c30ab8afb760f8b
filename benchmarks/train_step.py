"""Training speed of every preset: ``ConditionalGAN.train_iteration`` (n_dis D steps + 1 G step).

    python benchmarks/train_step.py                   # every preset, 32x32, batch 64, 1 and 3 channels
    python benchmarks/train_step.py --quick --json    # fewer timed iterations, one JSON object
    python benchmarks/train_step.py --presets dcgan,sngan --size 16 --batch 8 --set model.g_ch=8

steps/s counts G steps (one ``train_iteration``); D steps/s = steps/s x n_dis; images/s = real
images D sees per second (steps/s x n_dis x batch). Data: random uint8 images of 10 classes held
on the device, fed through the trainer's own real-batch sampler. Models are built exactly as
``augmentgan train`` builds them (attention resolved for the image size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch

from augmentgan.gan.gan import ConditionalGAN, resolve_device
from augmentgan.gan.presets import get_preset, preset_names
from augmentgan.gan.sampling import RealBatches, RealSampler
from augmentgan.gan.trainer import resolve_gan_config


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(preset: str, *, size: int, channels: int, batch: int, device: torch.device, precision: str, warmup: int, iters: int, overrides: list[str]) -> dict:
    gan_cfg, _ = resolve_gan_config(get_preset(preset, overrides), size)
    classes = 10
    gan = ConditionalGAN(gan_cfg, img_size=size, channels=channels, num_classes=classes, device=device, precision=precision)
    rng = np.random.default_rng(0)
    labels = np.arange(512) % classes
    images = torch.from_numpy(rng.integers(0, 256, (512, channels, size, size), dtype=np.uint8)).to(device)
    batches = RealBatches(images, torch.from_numpy(labels).to(device), RealSampler(labels, classes, "balanced", rng), batch, gan.memory_format)
    for _ in range(warmup):
        gan.train_iteration(batches)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        gan.train_iteration(batches)
    _sync(device)
    seconds = time.perf_counter() - t0
    n_dis = gan_cfg.optim.n_dis
    steps = iters / seconds
    return {
        "preset": preset, "size": size, "channels": channels, "batch": batch, "n_dis": n_dis,
        "steps_per_s": round(steps, 3), "d_steps_per_s": round(steps * n_dis, 3), "images_per_s": round(steps * n_dis * batch, 1),
        "ms_per_step": round(1000 / steps, 1), "g_params": sum(p.numel() for p in gan.G.parameters()),
        "d_params": sum(p.numel() for p in gan.D.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(preset_names()))
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--channels", default="1,3")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="1 warm-up and 3 timed iterations")
    parser.add_argument("--set", action="append", default=[], help="GAN override KEY=VALUE for every preset (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    warmup, iters = (1, 3) if args.quick else (args.warmup, args.iters)
    device = resolve_device(args.device)
    rows = [
        bench(p, size=args.size, channels=int(c), batch=args.batch, device=device, precision=args.precision, warmup=warmup, iters=iters, overrides=args.set)
        for p in args.presets.split(",")
        for c in args.channels.split(",")
    ]
    env = {
        "device": str(device), "threads": torch.get_num_threads(), "torch": str(torch.__version__), "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "precision": args.precision, "warmup": warmup, "iters": iters, "overrides": args.set,
    }
    if args.json:
        print(json.dumps({"env": env, "results": rows}))
        return
    print(f"# {env}")
    print("| preset | channels | n_dis | steps/s | D steps/s | images/s | ms/step | G params | D params |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['channels']} | {r['n_dis']} | {r['steps_per_s']} | {r['d_steps_per_s']} | {r['images_per_s']} | {r['ms_per_step']} | {r['g_params']:,} | {r['d_params']:,} |")


if __name__ == "__main__":
    sys.exit(main())
