"""How fast does ``augmentgan.data.load`` read an ImageFolder tree?

Creates N random RGB PNGs of SIZE x SIZE in 10 classes (in a temporary folder, or in --dir,
reused when it already holds the same set), reads every file once to warm the OS cache,
then times ``augmentgan.data.load(folder)`` against a single-threaded PIL loop
(``np.asarray(Image.open(p).convert("RGB"))`` + ``np.stack``). Prints one JSON line.

    python benchmarks/load_folder.py [--n 10000] [--size 64] [--workers N] [--dir DIR]

Random noise compresses badly, so the PNGs are larger (about 12 KiB at 64x64) than photos of
the same size: a pessimistic case for decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

from augmentgan.data import load
from augmentgan.data.folder import default_workers

CLASSES = 10


def make_folder(root: Path, n: int, size: int) -> None:
    """N random PNGs in CLASSES class folders; skipped when ``root`` already holds this set."""
    marker = root / ".benchmark.json"
    spec = {"n": n, "size": size, "classes": CLASSES}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return
    for k in range(CLASSES):
        (root / f"class{k}").mkdir(parents=True, exist_ok=True)

    def write(i: int) -> None:
        rng = np.random.default_rng(i)
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"class{i % CLASSES}" / f"{i:06d}.png")

    with ThreadPoolExecutor() as pool:
        list(pool.map(write, range(n)))
    marker.write_text(json.dumps(spec))


def baseline(root: Path) -> np.ndarray:
    files = sorted(p for p in root.glob("*/*.png"))
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])


def run(root: Path, n: int, size: int, workers: int | None) -> dict:
    make_folder(root, n, size)
    for p in root.glob("*/*.png"):  # warm the OS cache so both loops time decoding, not the disk
        p.read_bytes()
    start = time.perf_counter()
    data = load(root, workers=workers)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    pixels = baseline(root)
    base_s = time.perf_counter() - start
    assert len(data) == n and pixels.shape == (n, size, size, 3)
    return {
        "benchmark": "load_folder",
        "n": n,
        "size": size,
        "classes": CLASSES,
        "workers": workers if workers is not None else default_workers(),
        "cpu_count": os.cpu_count(),
        "load_s": round(load_s, 3),
        "load_images_per_s": round(n / load_s, 1),
        "baseline_single_thread_s": round(base_s, 3),
        "baseline_images_per_s": round(n / base_s, 1),
        "speedup": round(base_s / load_s, 2),
        "python": platform.python_version(),
        "pillow": PIL.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="number of images (default 10000)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default: augmentgan's default)")
    parser.add_argument("--dir", type=Path, default=None, help="folder to create/reuse the images in (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.dir is not None:
        result = run(args.dir, args.n, args.size, args.workers)
    else:
        with tempfile.TemporaryDirectory(prefix="augmentgan-bench-") as tmp:
            result = run(Path(tmp), args.n, args.size, args.workers)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
