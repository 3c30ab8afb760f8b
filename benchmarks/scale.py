"""How do time and memory grow with the dataset? ``inspect``, ``convert`` and ``expand`` on
synthetic ImageFolder trees of N images (64x64 RGB PNG, 20 classes, long-tailed).

For each N (smallest first) it writes (once; reused when the folder already holds that set)
``WORK/folder-N/class_KK/img_NNNNNNN.png`` with n_k = n_0 * 10^(-k/19) images in class k (an
imbalance ratio of 10), smooth class-dependent pictures (a tinted gradient, a disc and a bar
whose positions vary, a little noise): PNG sizes like small photos, not like noise. Then it runs
each stage as its own process through the CLI entry point and records the stage's wall time
(inside the process, after imports) and its peak resident memory (``ru_maxrss``):

    inspect  FOLDER --json
    convert  FOLDER WORK/data-N.h5 --force
    expand   RECIPE  (data: the HDF5 file; holdout 0.1; dcgan width 16 for --gan-steps steps at
             64x64, batch 64; plan target 0.5 of the majority, mix gan 0.4 / classical 0.6;
             output WORK/expanded-N, gzip)

The dataset's bytes are N x 64 x 64 x 3 (uint8). ``copies`` = (peak RSS - RSS after imports) /
dataset bytes: how many copies of the dataset a stage held at its peak. The growth exponent of
each stage is the least-squares slope of log(time) (and of log(net RSS)) against log(N).

    python benchmarks/scale.py --sizes 10000 50000 100000 --work /tmp/augmentgan-scale --gan-steps 20
    python benchmarks/scale.py --sizes 2000 --json          # a quick look

GAN training time does not depend on N (steps x batch), so --gan-steps only shifts the expand
row; generation, classical copies and writing grow with the plan. SMOTE is left out of the mix:
its k-nearest-neighbour search is quadratic in a class's size (n_k^2 x 12,288 pixels per class),
a cost of the method that would hide how the pipeline itself grows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CLASSES = 20
SIZE = 64
RATIO = 10.0


def class_counts(n: int) -> list[int]:
    """Long-tailed counts summing to n: n_k proportional to RATIO^(-k/(CLASSES-1))."""
    w = RATIO ** (-np.arange(CLASSES) / (CLASSES - 1))
    counts = np.floor(n * w / w.sum()).astype(int)
    counts[0] += n - counts.sum()
    return counts.tolist()


def _pictures(rng: np.random.Generator, k: int, m: int) -> np.ndarray:
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float32) / SIZE
    hue = np.array([math.cos(k), math.cos(k + 2.1), math.cos(k + 4.2)], np.float32) * 0.35 + 0.5
    angle = rng.uniform(0, 2 * math.pi, (m, 1, 1)).astype(np.float32)
    grad = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None] * 0.5 + 0.25
    img = grad * hue  # (m, H, W, 3)
    cy, cx = rng.uniform(0.25, 0.75, (2, m, 1, 1)).astype(np.float32)
    r = (0.08 + 0.1 * (k % 5) / 4 + rng.uniform(0, 0.05, (m, 1, 1))).astype(np.float32)
    disc = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2)[..., None]
    img = np.where(disc, 1.0 - hue, img)
    bar = rng.integers(0, SIZE - 6, m)
    rows = np.arange(SIZE)[None, :] - bar[:, None]
    barmask = ((rows >= 0) & (rows < 3 + k % 4))[:, :, None, None]
    img = np.where(barmask & (k % 2 == 0), 0.9, img)
    img = np.where(np.swapaxes(barmask, 1, 2) & (k % 2 == 1), 0.1, img)
    img = img + rng.normal(0, 0.02, img.shape).astype(np.float32)
    return (img.clip(0, 1) * 255).round().astype(np.uint8)


def make_folder(root: Path, n: int, seed: int = 0) -> dict:
    """The synthetic folder of n images (skipped when ``root`` already holds this set)."""
    from PIL import Image

    marker = root / ".scale.json"
    spec = {"n": n, "size": SIZE, "classes": CLASSES, "ratio": RATIO, "seed": seed, "version": 1}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return {"reused": True}
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    index = 0
    for k, count in enumerate(class_counts(n)):
        folder = root / f"class_{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for start in range(0, count, 1000):
            for image in _pictures(rng, k, min(1000, count - start)):
                Image.fromarray(image).save(folder / f"img_{index:07d}.png", compress_level=1)
                index += 1
    marker.write_text(json.dumps(spec))
    return {"reused": False, "seconds": time.perf_counter() - t0}


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- one stage in its own process ---------------------------------------------------------------
def run_stage(args: list[str], report: Path) -> None:
    """Child process: run ``augmentgan ARGS``; write wall time, peak RSS and RSS after imports to ``report``."""
    import augmentgan.cli.main as cli  # noqa: F401 - the CLI's own imports
    import augmentgan.pipeline  # noqa: F401 - torch, albumentations, imblearn: what every stage may import
    import augmentgan.gan.trainer  # noqa: F401

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    code = 0
    try:
        cli.main(args)
    except SystemExit as stop:
        code = int(stop.code or 0)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report.write_text(json.dumps({"exit_code": code, "seconds": wall, "peak_rss": peak, "base_rss": base}))


def stage(name: str, args: list[str], work: Path) -> dict:
    report = work / f".stage-{os.getpid()}.json"
    report.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", str(report), "--", *args], capture_output=True, text=True)
    total = time.perf_counter() - t0
    if proc.returncode != 0 or not report.is_file():
        raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(report.read_text())
    report.unlink()
    if out["exit_code"] != 0:
        raise SystemExit(f"{name} exited {out['exit_code']}: {proc.stderr[-2000:]}")
    out["process_seconds"] = total
    return out


def recipe(work: Path, n: int, steps: int) -> Path:
    import yaml

    path = work / f"recipe-{n}.yaml"
    path.write_text(yaml.safe_dump({
        "seed": 0,
        "data": {"path": str(work / f"data-{n}.h5")},
        "holdout": {"fraction": 0.1},
        "gan": {"preset": "dcgan", "steps": steps, "batch": 64, "device": "cpu", "precision": "fp32", "eval_every": 0,
                "overrides": {"model": {"g_ch": 16, "d_ch": 16}}},
        "generate": {"truncation": None},
        "classical": {"pipeline": "light"},
        "plan": {"target": 0.5, "mix": {"gan": 0.4, "classical": 0.6}},
        "output": {"path": str(work / f"expanded-{n}"), "format": "h5"},
    }))
    return path


def slope(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2 or any(y <= 0 for y in ys):
        return None
    lx, ly = np.log(xs), np.log(ys)
    return float(np.polyfit(lx, ly, 1)[0])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        run_stage(sys.argv[4:], Path(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/augmentgan-scale"))
    parser.add_argument("--gan-steps", type=int, default=20)
    parser.add_argument("--stages", nargs="+", default=["inspect", "convert", "expand"])
    parser.add_argument("--json", action="store_true", help="print one JSON object (default: a table and the JSON)")
    parser.add_argument("--results", type=Path, help="append each size's row (JSON lines) here as it finishes")
    a = parser.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AUGMENTGAN_CACHE_DIR", str(a.work / "cache"))
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    rows = []
    for n in sorted(a.sizes):
        folder = a.work / f"folder-{n}"
        made = make_folder(folder, n)
        row: dict = {"n": n, "dataset_bytes": n * SIZE * SIZE * 3, "folder_bytes": _du(folder), "made": made, "stages": {}}
        h5, out = a.work / f"data-{n}.h5", a.work / f"expanded-{n}"
        args = {
            "inspect": ["inspect", str(folder), "--json"],
            "convert": ["convert", str(folder), str(h5), "--force"],
            "expand": ["expand", str(recipe(a.work, n, a.gan_steps)), "--force", "--json"],
        }
        for name in a.stages:
            if name == "expand" and not h5.is_file():
                stage("convert", args["convert"], a.work)
            r = stage(name, args[name], a.work)
            r["copies"] = (r["peak_rss"] - r["base_rss"]) / row["dataset_bytes"]
            row["stages"][name] = r
            print(f"n={n} {name}: {r['seconds']:.1f} s, peak RSS {r['peak_rss'] / 2**20:.0f} MiB "
                  f"(after imports {r['base_rss'] / 2**20:.0f} MiB; {r['copies']:.2f} x the dataset's {row['dataset_bytes'] / 2**20:.0f} MiB)",
                  file=sys.stderr, flush=True)
        if h5.is_file():
            row["h5_bytes"] = h5.stat().st_size
        if out.is_dir():
            row["expanded_bytes"] = _du(out)
        rows.append(row)
        if a.results:
            with open(a.results, "a") as f:
                f.write(json.dumps(row) + "\n")
    ns = [r["n"] for r in rows]
    growth = {}
    for name in a.stages:
        times = [r["stages"][name]["seconds"] for r in rows]
        net = [r["stages"][name]["peak_rss"] - r["stages"][name]["base_rss"] for r in rows]
        growth[name] = {"time_exponent": slope(ns, times), "memory_exponent": slope(ns, net)}
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
        "gan_steps": a.gan_steps, "rows": rows, "growth": growth,
    }
    try:
        result["machine"]["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if not a.json:
        print("| N | stage | wall s | peak RSS MiB | net RSS / dataset bytes |", file=sys.stderr)
        for r in rows:
            for name, s in r["stages"].items():
                print(f"| {r['n']} | {name} | {s['seconds']:.1f} | {s['peak_rss'] / 2**20:.0f} | {s['copies']:.2f} |", file=sys.stderr)
    print(json.dumps(result, indent=None if a.json else 1))


if __name__ == "__main__":
    main()
