"""Collapse on small long-tailed data: train candidate GAN configurations under one CPU budget each
and measure per-class diversity, precision, recall, coverage and the collapse flag.

    flock /tmp/augmentgan-heavy.lock python benchmarks/collapse.py --data digits-lt --configs baseline,diffaug
    flock /tmp/augmentgan-heavy.lock python benchmarks/collapse.py --data mnist-lt --size 16 --configs baseline
    python benchmarks/collapse.py --table                      # markdown table of everything measured so far
    python benchmarks/collapse.py --list                       # the candidate configurations

What one configuration run does:

1. ``augmentgan.gan.trainer.train`` on the whole training set (builtin ``digits-lt``: 8x8 gray, 150 down to 8
   images per class, trained at 16x16; or ``../shared/data/mnist-lt.npz`` x_train, 28x28 gray, trained at
   32x32 or at ``--size``), with the configuration's preset and overrides, for at most ``--steps`` G steps
   and at most ``--budget`` seconds of this process's CPU time (``time.process_time``, all threads: on 2
   idle cores about half of it in wall time). The budget is enforced the way a user stops a run: a
   SIGINT once the budget is spent, on which the trainer writes a checkpoint of the step it is at.
2. ``augmentgan.generate.sample_dataset`` from that checkpoint (EMA generator when the run keeps one, no
   truncation, no filters): ``--per-class`` samples of every class.
3. ``augmentgan.evaluate.evaluation.evaluate`` of those samples against the real training images
   (domain-CNN features, no CAS): per class the diversity ratio (synthetic / real mean pairwise
   distance; below 0.5 = collapsed), precision, recall, coverage.

Each result is appended as one JSON line to ``--results`` (default benchmarks/collapse-results.jsonl) with
the steps done, steps per second and the CPU model; ``--table`` renders them. ``--grid DIR`` also writes a
PNG grid of the rarest three classes (rarest first, one row per class) per run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MNIST_LT = ROOT.parent / "shared" / "data" / "mnist-lt.npz"

# name -> (preset, overrides, note). The baseline is the quick start's GAN (recipes/digits-lt.yaml
# before this benchmark): dcgan, width 32, batch 64, no DiffAugment.
_W32 = {"model.g_ch": 32, "model.d_ch": 32}
CONFIGS: dict[str, tuple[str, dict[str, Any], str]] = {
    "baseline": ("dcgan", {**_W32, "tricks.diffaug": ""}, "quick start GAN: dcgan w32"),
    "diffaug": ("dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout"}, "+ DiffAugment"),
    "ms": ("dcgan", {**_W32, "tricks.diffaug": "", "reg.mode_seeking": 1.0}, "+ mode seeking 1"),
    "mbstd": ("dcgan", {**_W32, "tricks.diffaug": "", "model.mbstd": 4}, "+ minibatch std 4"),
    "lecam": ("dcgan", {**_W32, "tricks.diffaug": "", "reg.lecam": 0.3, "reg.lecam_start": 100}, "+ LeCam 0.3"),
    "tc": ("dcgan", {**_W32, "tricks.diffaug": "", "tricks.cond_start": 100, "tricks.cond_length": 300}, "+ transitional cond, ramp over steps 100-400"),
    "da-ms": ("dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 1.0}, "DiffAugment + MS"),
    "da-ms-mbstd": ("dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 1.0, "model.mbstd": 4}, "DiffAugment + MS + mbstd"),
    "da-ms-mbstd-lecam": (
        "dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 1.0, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100},
        "DiffAugment + MS + mbstd + LeCam",
    ),
    "all-dcgan": (
        "dcgan",
        {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 1.0, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
         "tricks.cond_start": 100, "tricks.cond_length": 300},
        "DiffAugment + MS + mbstd + LeCam + TC",
    ),
    "all-ms0.3": (
        "dcgan",
        {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 0.3, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
         "tricks.cond_start": 100, "tricks.cond_length": 300},
        "DiffAugment + MS 0.3 + mbstd + LeCam + TC",
    ),
    "all-ms0.1": (
        "dcgan",
        {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 0.1, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
         "tricks.cond_start": 100, "tricks.cond_length": 300},
        "DiffAugment + MS 0.1 + mbstd + LeCam + TC",
    ),
    "winner-ema": (
        "dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 1.0, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
                  "tricks.ema": True, "tricks.ema_decay": 0.999, "tricks.ema_start": 200},
        "DiffAugment + MS + mbstd + LeCam, EMA G 0.999 from step 200",
    ),
    "winner-ms0.3-ema": (
        "dcgan", {**_W32, "tricks.diffaug": "color,translation,cutout", "reg.mode_seeking": 0.3, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
                  "tricks.ema": True, "tricks.ema_decay": 0.999, "tricks.ema_start": 200},
        "DiffAugment + MS 0.3 + mbstd + LeCam, EMA G 0.999 from step 200",
    ),
    "small-data": ("small-data", {"model.g_ch": 16, "model.d_ch": 16, "optim.n_dis": 2}, "small-data preset w16 n_dis 2"),
    "small-data-all": (
        "small-data",
        {"model.g_ch": 16, "model.d_ch": 16, "optim.n_dis": 2, "reg.mode_seeking": 1.0, "model.mbstd": 4, "reg.lecam": 0.3, "reg.lecam_start": 100,
         "reg.gsr": 0.5, "tricks.cond_start": 50, "tricks.cond_length": 150},
        "small-data w16 + MS + mbstd + LeCam + gSR + TC",
    ),
}


def cpu_model() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or "unknown", "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and info["model"] in ("unknown", "", "x86_64"):
                info["model"] = value.strip()
            if key.strip() == "flags":
                flags = value.split()
                info["flags"] = [f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma"))]
                break
    except OSError:
        pass
    info["threads"] = torch.get_num_threads()
    return info


def load_data(name: str, size: int | None):
    from augmentgan.data.io import load

    if name == "digits-lt":
        return load("builtin:digits-lt", size=size), "builtin:digits-lt"
    if name == "mnist-lt":
        return load(str(MNIST_LT), size=size), str(MNIST_LT)
    raise SystemExit(f"unknown --data {name!r}: use digits-lt or mnist-lt")


class _Budget:
    """Progress callback that sends SIGINT to this process once ``seconds`` of CPU time are spent."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.start, self.sent = seconds, time.process_time(), False

    def __call__(self, event) -> None:  # noqa: ANN001
        if event.stage == "train" and not self.sent and time.process_time() - self.start > self.seconds:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)


def run_one(name: str, data, spec: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from augmentgan.errors import TrainingInterrupted
    from augmentgan.evaluate.evaluation import evaluate
    from augmentgan.gan.presets import get_preset
    from augmentgan.gan.trainer import TrainConfig, train
    from augmentgan.generate import sample_dataset

    preset, overrides, note = CONFIGS[name]
    overrides = {**overrides, **dict(kv.split("=", 1) for kv in args.set)}
    gan = get_preset(preset, overrides)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, device="cpu", sample_every=0, ckpt_every=10**6, log_every=10)
    out = work / name
    budget = _Budget(args.budget)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    interrupted = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = train(data, gan, cfg, out, force=True, callback=budget, data_spec=spec)
            step = result.step
        except TrainingInterrupted:
            interrupted = True
            step = None
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    from augmentgan.gan.trainer import latest_checkpoint

    ckpt = latest_checkpoint(out)
    saved = __import__("yaml").safe_load((out / "config.yaml").read_text())
    resolved, resolved_run = saved["gan"], saved.get("resolved", {})
    if step is None:
        step = int(torch.load(ckpt, weights_only=True, map_location="cpu")["step"])
    t_eval = time.perf_counter()
    synth, _ = sample_dataset(ckpt, per_class=args.per_class, seed=args.seed, device="cpu", real=data)
    ev = evaluate(synth, data, cas=False, seed=0, device="cpu")
    counts = data.class_counts()
    rarest = [int(i) for i in np.argsort(counts, kind="stable")[: 3]]
    if args.grid:
        save_grid(synth, rarest, Path(args.grid) / f"collapse-{args.data}-{name}.png", per_row=16)
    per_class = {
        cls: {k: row.get(k) for k in ("diversity_ratio", "precision", "recall", "coverage", "mode_collapse", "n_real")}
        for cls, row in ev.per_class.items()
    }
    o = ev.overall
    return {
        "config": name, "note": note, "preset": preset, "overrides": overrides, "data": args.data, "size": args.size,
        "train_size": int(resolved_run["img_size"]), "train_precision": resolved_run.get("precision", saved["train"].get("precision")),
        "steps": step, "interrupted": interrupted, "train_wall_s": round(wall, 1), "train_cpu_s": round(cpu, 1),
        "steps_per_s": round(step / wall, 3), "budget_cpu_s": args.budget, "batch": args.batch, "seed": args.seed,
        "per_class_samples": args.per_class, "eval_s": round(time.perf_counter() - t_eval, 1),
        "diversity_ratio": o.get("diversity_ratio"), "precision": o.get("precision"), "recall": o.get("recall"),
        "coverage": o.get("coverage"), "collapsed": list(o.get("mode_collapse_classes") or []),
        "min_diversity_ratio": min(r["diversity_ratio"] for r in per_class.values() if r["diversity_ratio"] is not None),
        "rarest": [data.class_names[i] for i in rarest], "class_counts": counts.tolist(), "per_class": per_class,
        "resolved_gan": resolved, "cpu": cpu_model(), "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def save_grid(synth, classes: list[int], path: Path, per_row: int = 16) -> None:
    from torchvision.utils import make_grid, save_image

    rows = []
    for cls in classes:
        imgs = synth.images[synth.labels == cls][:per_row]
        rows.append(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0)
    x = torch.cat(rows)
    x = torch.nn.functional.interpolate(x, scale_factor=max(1, 32 // x.shape[-1]), mode="nearest")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(x, nrow=per_row, padding=2, pad_value=0.5), str(path))


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = ["| data | config | steps | steps/s | diversity ratio mean (min) | rarest 3: diversity | flagged | precision | recall | coverage |",
           "|---|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        rare = " / ".join(f"{r['per_class'][c]['diversity_ratio']:.2f}" for c in r["rarest"])
        out.append(
            f"| {r['data']}{'@' + str(r['train_size'])} | {r['config']} ({r['note']}) | {r['steps']} | {r['steps_per_s']:.2f} | "
            f"{r['diversity_ratio']:.2f} ({r['min_diversity_ratio']:.2f}) | {rare} | {len(r['collapsed'])}/{len(r['per_class'])} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['coverage']:.3f} |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="digits-lt", choices=["digits-lt", "mnist-lt"])
    p.add_argument("--size", type=int, default=None, help="load the data at this size (mnist-lt: 16 trains at 16x16)")
    p.add_argument("--configs", default="baseline", help=f"comma-separated, from: {', '.join(CONFIGS)}")
    p.add_argument("--set", action="append", default=[], help="extra override key=value for every config")
    p.add_argument("--budget", type=float, default=240.0, help="CPU seconds of training per config (process time, all threads)")
    p.add_argument("--steps", type=int, default=100000, help="at most this many G steps (the budget ends a run first)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--per-class", type=int, default=150)
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "collapse-results.jsonl"))
    p.add_argument("--grid", default=None, help="folder for PNG grids of the rarest three classes")
    p.add_argument("--table", action="store_true")
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    if args.list:
        for name, (preset, ov, note) in CONFIGS.items():
            print(f"{name:20s} {preset:12s} {note}  {ov}")
        return
    if args.table:
        print(table(Path(args.results)))
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data, spec = load_data(args.data, args.size)
    with tempfile.TemporaryDirectory(prefix="collapse-") as tmp:
        for name in args.configs.split(","):
            row = run_one(name.strip(), data, spec, args, Path(tmp))
            with open(args.results, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{row['data']} {row['config']}: steps {row['steps']} ({row['steps_per_s']:.2f}/s) diversity {row['diversity_ratio']:.2f} "
                  f"(min {row['min_diversity_ratio']:.2f}) flagged {len(row['collapsed'])} precision {row['precision']:.3f} "
                  f"recall {row['recall']:.3f} coverage {row['coverage']:.3f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
