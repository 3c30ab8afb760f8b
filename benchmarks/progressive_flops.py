"""Work per training step of progressive growing at each resolution vs the full resolution (issue 16).

Counts the FLOPs of one ``train_iteration`` (n_dis D steps + one G step) of the ``progressive``
preset at paper width with torch's FlopCounterMode, at every resolution the run passes through
(stable phases), for 32x32 and 64x64 single-channel data and 10 classes. The gradient penalty is
left out of the count (FlopCounterMode cannot count a double backward), so the numbers are the
adversarial passes only. FLOPs do not depend on the machine; steps/s on a CPU follow them
roughly for these conv-bound models. Usage: ``python benchmarks/progressive_flops.py [--batch 8]``
"""

from __future__ import annotations

import argparse
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from augmentgan.gan.gan import ConditionalGAN
from augmentgan.gan.presets import get_preset


def flops_per_step(img_size: int, batch: int) -> dict[int, float]:
    cfg = get_preset("progressive", {"reg.gp": 0.0, "tricks.diffaug": ""})
    gan = ConditionalGAN(cfg, img_size=img_size, channels=1, num_classes=10, class_counts=[10] * 10)
    x, y = torch.zeros(batch, 1, img_size, img_size), torch.arange(batch) % 10
    out = {}
    period = cfg.model.grow.stable + cfg.model.grow.fade
    for k, res in enumerate(gan.grow_levels):
        gan.num_g_steps = k * period  # the start of resolution k's stable phase
        with FlopCounterMode(display=False) as counter:
            gan.train_iteration(lambda: (x, y))
        assert gan.growth == (res, 1.0)
        out[res] = counter.get_total_flops() / 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    results = {}
    for size in (32, 64):
        gflops = flops_per_step(size, args.batch)
        full = gflops[size]
        results[size] = {str(res): {"gflops": round(g, 3), "of_full": round(g / full, 3)} for res, g in gflops.items()}
    print(json.dumps({"batch": args.batch, "preset": "progressive (gp not counted)", "gflops_per_step": results}, indent=1))


if __name__ == "__main__":
    main()
