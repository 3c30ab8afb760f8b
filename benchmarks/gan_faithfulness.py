"""Is each class's GAN output of that class, and varied? Train GAN variants on a long-tailed set and judge them.

    python benchmarks/gan_faithfulness.py --data builtin:digits-lt --test builtin:digits-lt-test \\
        --variant base: --variant cls1:reg.class_loss=1.0 --steps 800 --json out.json

Every variant starts from the quick start's GAN as it was when this benchmark was written (``QUICK_START``:
dcgan, width 32, minibatch std, mode seeking 1.0, LeCam 0.3; kept so that earlier tables reproduce;
today's recipes add ``reg.class_loss=1.0,reg.mode_seeking=0.1``, and the quick start
``model.g_ch=16,model.d_ch=16``, as variant overrides) plus its own ``KEY=VALUE`` overrides (comma-separated), trains
``--steps`` G steps with seed 0 and samples ``--per-class`` images per class from the final EMA/G
(truncation off). A judge classifier (the evaluation CNN, 400 steps) trained on ``--judge`` (default:
the full built-in digits minus the test images for the built-in digits, else ``--test``) says per class which share of the samples is
recognised as the class they were asked for ("in-class"); ``augmentgan evaluate``'s metrics against
``--test`` give per-class diversity ratio, precision, recall and the collapse flag. A sample grid of
the rarest classes is written per variant beside the JSON (``--grid-dir``).

Progressive growing against the full size at equal wall time (issue 16): ``--no-quick-start``
takes the preset as it is, a variant's ``steps=N`` sets its own length, and ``--equal-wall`` gives
every variant after the first as many steps as fit in the first one's training time (its seconds
per step measured by a 30-step run first):

    python benchmarks/gan_faithfulness.py --data ../shared/data/mnist-lt.npz --test ../shared/data/mnist-lt.npz \
        --img-size 32 --preset progressive --no-quick-start --equal-wall \
        --variant grow:steps=1200,model.grow.start=8,model.grow.stable=200,model.grow.fade=200 \
        --variant full:model.grow.start=null

Steps/s per logged interval (``log_every`` 50, from metrics.jsonl) are recorded per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.data.io import load  # noqa: E402
from augmentgan.data.types import LabeledImages  # noqa: E402
from augmentgan.domain.classifier import train_classifier  # noqa: E402
from augmentgan.evaluate.evaluation import evaluate  # noqa: E402
from augmentgan.gan.precision import cpu_flags  # noqa: E402
from augmentgan.gan.presets import get_preset  # noqa: E402
from augmentgan.gan.trainer import TrainConfig, train  # noqa: E402
from augmentgan.generate.generation import sample_dataset  # noqa: E402

QUICK_START = {
    "model.g_ch": 32, "model.d_ch": 32, "model.mbstd": 4,
    "reg.mode_seeking": 1.0, "reg.lecam": 0.3, "reg.lecam_start": 100,
}


def parse_variant(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition(":")
    pairs = [p for p in rest.split(",") if p.strip()]
    return name, dict(p.split("=", 1) for p in pairs)


def judge_data(test: LabeledImages) -> LabeledImages:
    """The full built-in digits without the test images (exact-byte matches removed)."""
    full = load("builtin:digits")
    seen = {img.tobytes() for img in test.images}
    keep = np.array([img.tobytes() not in seen for img in full.images])
    return LabeledImages(full.images[keep], full.labels[keep], full.class_names)


def grid(images: np.ndarray, labels: np.ndarray, classes: list[int], per_row: int, path: Path) -> None:
    from PIL import Image

    rows = []
    for c in classes:  # a mid-grey 1-pixel frame around every image, so that neighbours do not merge
        imgs = np.pad(images[labels == c][:per_row], ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=128)
        rows.append(np.concatenate(list(imgs), axis=1))
    picture = np.concatenate(rows, axis=0)
    if picture.shape[-1] == 1:
        picture = picture[..., 0]
    scale = max(1, 256 // picture.shape[0])
    Image.fromarray(picture).resize((picture.shape[1] * scale, picture.shape[0] * scale), Image.NEAREST).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="builtin:digits-lt")
    ap.add_argument("--test", default="builtin:digits-lt-test")
    ap.add_argument("--variant", action="append", required=True, help="NAME:KEY=VALUE[,KEY=VALUE...] on top of the quick start's GAN")
    ap.add_argument("--test-split", default="test", help="NPZ only: the x_<split>/y_<split> arrays of --test")
    ap.add_argument("--judge", default="auto", help="data the judge classifier trains on; auto: the full built-in digits minus the test images for builtin:digits*, else --test")
    ap.add_argument("--img-size", type=int, default=None, help="GAN training size (default: the smallest supported size >= the data's)")
    ap.add_argument("--preset", default="dcgan")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--grid-dir", type=Path, default=None)
    ap.add_argument("--no-quick-start", action="store_true", help="the preset as it is, without the quick start's overrides")
    ap.add_argument("--equal-wall", action="store_true", help="variants after the first train for the first one's wall time")
    args = ap.parse_args()

    import torch

    data = load(args.data)
    test = load(args.test, split=args.test_split) if str(args.test).endswith(".npz") else load(args.test)
    if args.judge == "auto":
        judged_by = judge_data(test) if str(args.data).startswith("builtin:digits") else test
    else:
        judged_by = load(args.judge)
    judge = train_classifier(judged_by, steps=400, use_cache=False)
    counts = data.class_counts()
    rare = [int(c) for c in np.argsort(counts)[:4]]
    results = {
        "cpu_flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "load_before": os.getloadavg(), "data": args.data, "steps": args.steps, "preset": args.preset, "quick_start": not args.no_quick_start, "variants": {},
    }
    first_wall = None
    for text in args.variant:
        name, overrides = parse_variant(text)
        steps = int(overrides.pop("steps", args.steps))
        gan = get_preset(args.preset, [f"{k}={v}" for k, v in {**({} if args.no_quick_start else QUICK_START), **overrides}.items()])

        def config(n: int) -> TrainConfig:
            return TrainConfig(steps=n, batch=args.batch, seed=args.seed, sample_every=0, ckpt_every=n, log_every=min(50, n), img_size=args.img_size)

        calibration = None
        if args.equal_wall and first_wall is not None:
            with tempfile.TemporaryDirectory() as tmp:
                t0 = time.perf_counter()
                train(data, gan, config(30), Path(tmp) / "run")
                calibration = (time.perf_counter() - t0) / 30
            steps = max(1, int(round(first_wall / calibration)))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train(data, gan, config(steps), Path(tmp) / "run")
            seconds = time.perf_counter() - t0
            logged = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
            speeds = [(r["step"], round(r["steps_per_s"], 2)) for r in logged if "steps_per_s" in r]
            synth, _ = sample_dataset(Path(tmp) / "run", per_class=args.per_class, seed=args.seed)
        first_wall = seconds if first_wall is None else first_wall
        predicted = judge.predict(synth.images).cpu().numpy()
        in_class = {data.class_names[c]: float(np.mean(predicted[synth.labels == c] == c)) for c in range(data.num_classes)}
        ev = evaluate(synth, test, cas=False, seed=args.seed).to_dict()
        per = {
            name_: {k: v.get(k) for k in ("diversity_ratio", "precision", "recall", "mode_collapse")}
            for name_, v in ev["per_class"].items()
        }
        row = {"overrides": overrides, "steps": steps, "train_s": round(seconds, 1), "steps_per_s": round(steps / seconds, 3), "speed_by_step": speeds,
               "calibration_s_per_step": calibration, "in_class": in_class, "in_class_mean": float(np.mean(list(in_class.values()))),
               "per_class": per, "overall": {k: ev["overall"].get(k) for k in ("diversity_ratio", "precision", "recall", "mode_collapse_classes")}}
        results["variants"][name] = row
        print(json.dumps({name: {"steps": steps, "train_s": row["train_s"], "steps_per_s": row["steps_per_s"], "in_class_mean": round(row["in_class_mean"], 3),
                                 "in_class": {k: round(v, 2) for k, v in in_class.items()}, "overall": row["overall"]}}), flush=True)
        if args.grid_dir is not None:
            args.grid_dir.mkdir(parents=True, exist_ok=True)
            grid(synth.images, synth.labels, rare, 16, args.grid_dir / f"{name}-rarest.png")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
