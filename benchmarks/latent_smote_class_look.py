"""Where do latent-smote's samples of a class go? A per-sample look at the classes a plan grows.

    python benchmarks/latent_smote_class_look.py --run RUN_DIR --data ../shared/data/mnist-lt.npz \\
        --test ../shared/data/mnist-lt.npz --classes 6,7,8,9

latent-smote fills each listed class up to the largest one (as ``plan.target: max`` does), with its
defaults (fitted encoder, residual anchor). A judge classifier trained on ``--test`` (no user has
one; it reads the test set) then says, per class: how many of the class's real training images it
places in the class, how many samples, where the off-class samples go and which real parents they
come from (with the parent's reconstruction error and the judge's class for the parent itself), the
class's reconstruction errors, and how far samples lie from their parent in pixels (mean absolute
difference, 0-255), and what share of pixels are faint (1-40 of 255) in the real images and in the
samples (a haze the real images lack would be a cue of its own). ``--partners all`` (``--step``) uses
that option of latent-smote; ``--classical PIPELINE`` passes every sample once through a classical
pipeline afterwards (``latent_smote.classical``, e.g. ``strokes``); ``--grid PNG`` draws, per listed class in the order given, four real
images and then twelve samples.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.augment.classical import augment_each, build_pipeline  # noqa: E402
from augmentgan.data.io import load  # noqa: E402
from augmentgan.domain.classifier import train_classifier  # noqa: E402
from augmentgan.data.types import LabeledImages  # noqa: E402
from augmentgan.generate.latent_smote import latent_smote  # noqa: E402
from augmentgan.report import grid_png  # noqa: E402


def faint(images: np.ndarray) -> float:
    """Share of pixels at 1-40 of 255."""
    return float(np.mean((images > 0) & (images <= 40)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="a trained GAN run directory (the generator latent-smote decodes with)")
    ap.add_argument("--data", required=True, help="the run's training data")
    ap.add_argument("--test", required=True, help="the judge's training data (an .npz: its x_test/y_test)")
    ap.add_argument("--classes", required=True, help="comma-separated class indices to fill")
    ap.add_argument("--partners", default="class", choices=["class", "all"], help="latent_smote.partners")
    ap.add_argument("--step", type=float, default=None, help="latent_smote.step (partners all)")
    ap.add_argument("--classical", default=None, help="a classical pipeline every sample then goes through once (latent_smote.classical), e.g. strokes")
    ap.add_argument("--grid", default=None, help="PNG: per class, 4 real images then 12 samples")
    args = ap.parse_args(argv)
    train = load(args.data)
    test = load(args.test, split="test") if str(args.test).endswith(".npz") else load(args.test)
    counts = train.class_counts()
    judge = train_classifier(test, steps=400, use_cache=False)
    need = {int(c): int(counts.max() - counts[int(c)]) for c in args.classes.split(",")}
    res = latent_smote(args.run, train, need, seed=0, device="cpu", partners=args.partners, step=args.step)
    s = res.samples
    if args.classical:
        s = augment_each(s, build_pipeline(args.classical, seed=0), np.random.default_rng(0))
    pred = judge.predict(s.images).cpu().numpy()
    judged_real = judge.predict(train.images).cpu().numpy()  # once: per class and per parent below
    for c in need:
        mine, real = s.labels == c, train.labels == c
        p, par = pred[mine], s.parent[mine]
        off = p != c
        targets = dict(zip(*(v.tolist() for v in np.unique(p[off], return_counts=True))))
        print(f"class {train.class_names[c]}: {int(real.sum())} real ({np.mean(judged_real[real] == c):.2f} judged in class); {int(mine.sum())} samples, "
              f"{np.mean(~off):.3f} judged in class; off-class samples judged as {targets}")
        print("   reconstruction errors of its real images:", " ".join(f"{v:.3f}" for v in np.sort(res.codes.error[real])))
        used, n_used = np.unique(par, return_counts=True)
        off_parents, n_off = np.unique(par[off], return_counts=True)
        worst = sorted(zip(off_parents.tolist(), n_off.tolist()), key=lambda kv: -kv[1])[:5]
        print("   parents of off-class samples (row, off-class, samples from it, its error, judge's class of the real parent):",
              [(r, n, int(n_used[used == r][0]), round(float(res.codes.error[r]), 3), int(judged_real[r])) for r, n in worst])
        dist = np.abs(s.images[mine].astype(np.float32) - train.images[par].astype(np.float32)).mean(axis=(1, 2, 3))
        print(f"   mean |sample - parent|: {dist.mean():.1f}" + (f" (off-class samples {dist[off].mean():.1f})" if off.any() else ""))
        print(f"   faint pixels (1-40 of 255): real {faint(train.images[real]):.3f}, samples {faint(s.images[mine]):.3f}")
    if args.grid:
        rows = [np.concatenate([np.flatnonzero(train.labels == c)[:4], np.flatnonzero(s.labels == c)[:12] + len(train)]) for c in need]
        both = LabeledImages.concatenate([train, s])
        Path(args.grid).write_bytes(grid_png(both.images[np.concatenate(rows)], nrow=16, min_tile=56))
        print(f"grid: {args.grid} (rows: classes {', '.join(train.class_names[c] for c in need)}; 4 real, then 12 samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
