"""How fast does ``augmentgan generate`` write samples to HDF5, and does its memory stay flat?

Trains a GAN preset (default ``dcgan`` at its full width, 10 classes of random 32x32 RGB
images) for one step into a temporary run folder - the weights do not matter for speed - then,
for every N in ``--n``, runs ``augmentgan.generate.generate(run, out.h5, per_class=N/classes)``
in a fresh subprocess and reports samples written per second and the process's peak RSS
(``resource.getrusage``), next to its RSS just before generating. Flat memory means the peak
does not grow with N. Prints one JSON line per N, then a Markdown table for RESULTS.md.

    python benchmarks/generate_speed.py [--n 10000 200000] [--size 32] [--device auto]
        [--batch 512] [--filter dedup ...] [--compression gzip] [--tracemalloc]

``--tracemalloc`` adds the peak of Python/numpy allocations (torch tensors are not traced); it
slows generation down, so its samples/s are not comparable.

Export speed against plain h5py (after the RSS figures are taken, so they stay unaffected): the
generated file's per-sample arrays (images, labels, source, parent, extra/*) are read back and
written again, once through augmentgan's ``H5Writer`` in appends of ``--batch`` samples and once
with plain ``h5py`` ``create_dataset(data=...)`` (h5py's own chunking) with the same compression.
MiB/s count the uncompressed array bytes: ``export_mib_per_s`` over the whole ``generate`` call
(sampling included), ``writer_mib_per_s`` and ``plain_h5py_mib_per_s`` over the writes alone.
``--no-h5py-compare`` skips this (it holds the N samples in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLASSES = 10


def rss_kib() -> int:
    """Current resident set size in KiB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def make_run(folder: Path, preset: str, size: int, device: str) -> Path:
    """A run folder with a real checkpoint: one training step of ``preset`` on random images."""
    from augmentgan.data.types import LabeledImages
    from augmentgan.gan.presets import get_preset
    from augmentgan.gan.trainer import TrainConfig, train

    rng = np.random.default_rng(0)
    data = LabeledImages(rng.integers(0, 256, (CLASSES * 8, size, size, 3), dtype=np.uint8), np.arange(CLASSES * 8) % CLASSES, tuple(f"c{k}" for k in range(CLASSES)))
    cfg = TrainConfig(steps=1, batch=20, device=device, sample_every=0, ckpt_every=1, log_every=1)
    return train(data, get_preset(preset), cfg, folder / "run").run_dir


def _timed(fn) -> float:  # noqa: ANN001
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compare_writes(path: Path, compression: str, batch: int, generate_seconds: float) -> dict:
    """Write the arrays of ``path`` again with H5Writer and with plain h5py; MiB/s of each."""
    import h5py

    from augmentgan.data.hdf5 import COMPRESSIONS, H5Writer, check_compression

    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        class_names = list(f["class_names"].asstr()[()])
        f.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) and name != "class_names" else None)
    images = arrays["images"]
    extra = {name.split("/", 1)[1]: a for name, a in arrays.items() if name.startswith("extra/")}
    mib = sum(a.nbytes for a in arrays.values()) / 2**20
    filters = COMPRESSIONS[check_compression(compression)]

    def writer() -> None:
        with H5Writer(path.with_name("writer.h5"), class_names=class_names, image_shape=images.shape[1:], compression=compression,
                      extra_dtypes={k: a.dtype for k, a in extra.items()}) as w:
            for s in range(0, len(images), batch):
                sl = slice(s, s + batch)
                w.append(images[sl], arrays["labels"][sl], arrays["source"][sl], arrays["parent"][sl], {k: a[sl] for k, a in extra.items()})

    def plain() -> None:
        with h5py.File(path.with_name("plain.h5"), "w") as f:
            for name, a in arrays.items():
                f.create_dataset(name, data=a, **filters)
            f.create_dataset("class_names", data=class_names, dtype=h5py.string_dtype("utf-8"))

    writer_s, plain_s = _timed(writer), _timed(plain)
    sizes = {k: path.with_name(f"{k}.h5").stat().st_size / 2**20 for k in ("writer", "plain")}
    for k in sizes:
        path.with_name(f"{k}.h5").unlink()
    return {
        "array_mib": round(mib, 2),
        "export_mib_per_s": round(mib / generate_seconds, 1),
        "writer_mib_per_s": round(mib / writer_s, 1),
        "plain_h5py_mib_per_s": round(mib / plain_s, 1),
        "writer_vs_plain": round(plain_s / writer_s, 3),
        "plain_file_mib": round(sizes["plain"], 2),
    }


def child(args: argparse.Namespace) -> None:
    """One measurement in this process: generate args.n samples and print a JSON line."""
    import torch

    from augmentgan.generate import generate

    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    out = Path(args.out)
    torch.zeros(1)  # initialise torch before the baseline
    before = rss_kib()
    t0 = time.perf_counter()
    report = generate(
        args.run, out, per_class=args.n[0] // CLASSES, filters=args.filter or [], batch=args.batch, device=args.device,
        compression=args.compression, grids=False, force=True,
    )
    seconds = time.perf_counter() - t0
    row = {
        "n": report.kept,
        "seconds": round(seconds, 3),
        "samples_per_s": round(report.kept / seconds, 1),
        "rss_before_mib": round(before / 1024, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "file_mib": round(out.stat().st_size / 2**20, 2),
        "device": args.device_name,
        "batch": args.batch,
        "filters": args.filter or [],
        "compression": args.compression,
    }
    if args.tracemalloc:
        row["python_numpy_peak_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    if not args.no_h5py_compare:
        row.update(compare_writes(out, args.compression, args.batch, seconds))
    out.unlink()
    print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10000, 200000], help="total samples per measurement")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--preset", default="dcgan")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--filter", action="append", help="quality filters, as for --filter of the CLI")
    parser.add_argument("--compression", default="gzip")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--no-h5py-compare", action="store_true", help="skip the export comparison with plain h5py")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--device-name", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import torch

    from augmentgan.gan.gan import resolve_device

    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} threads)"
    rows = []
    with tempfile.TemporaryDirectory(prefix="augmentgan-bench-") as tmp:
        run = make_run(Path(tmp), args.preset, args.size, str(device))
        for n in args.n:
            cmd = [
                sys.executable, __file__, "--child", "--run", str(run), "--out", str(Path(tmp) / "out.h5"), "--n", str(n),
                "--device", str(device), "--device-name", name, "--batch", str(args.batch), "--compression", args.compression,
            ]
            cmd += [x for f in args.filter or [] for x in ("--filter", f)] + (["--tracemalloc"] if args.tracemalloc else []) + (["--no-h5py-compare"] if args.no_h5py_compare else [])
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode:
                sys.exit(f"measurement of {n} samples failed:\n{result.stderr}")
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{args.preset} generator, {args.size}x{args.size}x3, {CLASSES} classes, HDF5 {args.compression}, batch {args.batch}, {name}, torch {torch.__version__}\n")
    print("| samples | seconds | samples/s | RSS before (MiB) | peak RSS (MiB) | file (MiB) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['seconds']} | {r['samples_per_s']:,} | {r['rss_before_mib']} | {r['peak_rss_mib']} | {r['file_mib']} |")
    if not args.no_h5py_compare:
        print("\n| samples | arrays (MiB) | generate MiB/s | H5Writer MiB/s | plain h5py MiB/s | H5Writer speed / plain | plain file (MiB) |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['n']:,} | {r['array_mib']} | {r['export_mib_per_s']} | {r['writer_mib_per_s']} | {r['plain_h5py_mib_per_s']} | {r['writer_vs_plain']} | {r['plain_file_mib']} |")


if __name__ == "__main__":
    main()
