"""How much can interpolating between a class's own real images give a classifier, decoded without a GAN?

    python benchmarks/morph_ceiling.py --data ../shared/data/mnist-lt.npz --test ../shared/data/mnist-lt.npz \\
        --recipe recipes/small-data.yaml --seeds 10 --classifiers 4 --variants knn5-t0.5,knn5-t0.5+strokes,knn5-t0.25,any-t0.5 \\
        --grid docs/images/morph-mnist-lt-rarest.png --json benchmarks/morph-ceiling-results.json

latent-smote (issue 15) interpolates between the codes of two real images of one class and decodes
with the GAN; whatever it loses to copies could be the decoder (G's smudges, a reconstruction that
misses the parent) or the idea (new in-between shapes of a rare class's own images are not what a
classifier lacks). This benchmark removes the decoder: a **morph** sample moves the strokes of a real
image A part of the way towards the shape of another real image B of its class, along a dense
optical flow (OpenCV's DIS flow, computed on both images upsampled 4x and blurred, then scaled back
to the image size), and resamples A nearest-neighbour, so every pixel value is one of A's (no ghosts,
unlike pixel SMOTE's cross-fade, and no GAN traces). B is one of A's ``k`` nearest same-class
neighbours in pixels (``knnK``) or any other image of the class (``any``); the fraction is drawn
from U(0, ``tmax``) (``tT``). ``xferK`` lends A another class's deformation instead: the flow between
two real images of one other class (B, drawn over all the other classes' images so the head classes
lend most, and one of B's ``K`` nearest neighbours in its class) is laid on A, so A changes shape as
that class's images vary, without moving towards that class. ``slant`` lends A the slant of a real
image B drawn over all the other classes' images instead: A is sheared (about its centre of mass)
from its own slant, mu11 / mu02 of its image moments, to B's, so a rare class takes the head
classes' spread of slants (a class-generic trait) while keeping its own shapes. ``+strokes`` passes
every new image through the named ``strokes`` pipeline afterwards, as ``latent_smote.classical`` does
for latent-smote.

Every class is filled up to the largest one (``plan.target: max``), the real images kept; a class
with fewer than two images is left as it is (nothing to morph towards). The
baselines are ``augmentgan utility``'s own: ``ros`` and ``classical`` with ``classical.pipeline=strokes``,
the same utility seeds and classifier seeds, so every difference is paired seed by seed and
classifier by classifier (mean over seeds, standard error over the seeds' means, as ``utility``).
Grayscale images only (the flow is computed on one channel).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2  # noqa: E402  (albumentations' dependency)

from augmentgan.augment.classical import augment_each, build_pipeline  # noqa: E402
from augmentgan.data.io import load  # noqa: E402
from augmentgan.data.types import LabeledImages  # noqa: E402
from augmentgan.recipe import load_recipe  # noqa: E402
from augmentgan.report import grid_png  # noqa: E402
from augmentgan.utility import classifier_runs, minority_classes, seed_streams, utility  # noqa: E402
from class_sources import paired  # noqa: E402  (benchmarks/, run as a script)
from gan_utility_ceiling import machine  # noqa: E402

UPSCALE = 4  # the flow is computed at 4x the image size: DIS needs more than a 28 px digit's few strokes
BLUR = 1.5 / 28  # Gaussian sigma as a fraction of the image's side (1.5 px at 28 px), so the flow follows the shape, not each stroke's edge


def _flow_image(image: np.ndarray) -> np.ndarray:
    up = cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(up, (0, 0), BLUR * image.shape[0] * UPSCALE)


def morph(a: np.ndarray, b: np.ndarray, t: float, dis, source: Optional[np.ndarray] = None) -> np.ndarray:  # noqa: ANN001 - cv2.DISOpticalFlow
    """``a`` (H, W uint8) with its strokes moved a fraction ``t`` of the way to ``b``'s shape.

    DIS gives the flow f from b to a (b(x) ~ a(x + f(x))); the morph samples a at x + t f(x), nearest
    neighbour, so t = 0 is a itself and t = 1 is a's pixels laid out in b's shape. ``source``: take the
    flow from b to this image instead of to a (:func:`lend`).
    """
    h, w = a.shape
    f = dis.calc(_flow_image(b), _flow_image(a if source is None else source), None)
    f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) / UPSCALE
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(a, gx + t * f[..., 0], gy + t * f[..., 1], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def parse_variant(text: str) -> dict:
    parts = text.split("+")
    partner, _, tmax = parts[0].partition("-t")
    kind = partner.rstrip("0123456789")
    if parts[0] == "slant" and all(p == "strokes" for p in parts[1:]):
        return {"name": text, "kind": "slant", "k": None, "tmax": 0.0, "strokes": len(parts) > 1}
    if not tmax or not (partner == "any" or (kind in ("knn", "xfer") and partner[len(kind):])) or any(p != "strokes" for p in parts[1:]):
        raise SystemExit(f"--variants entry {text!r}: write knnK-tT, xferK-tT, any-tT or slant, optionally +strokes (e.g. knn5-t0.5+strokes)")
    return {"name": text, "kind": kind, "k": None if partner == "any" else int(partner[len(kind):]), "tmax": float(tmax), "strokes": len(parts) > 1}


def slant(image: np.ndarray) -> tuple[float, float]:
    """The slant (mu11 / mu02: x shift per row) of ``image`` and its centre of mass's row."""
    m = cv2.moments(image)
    if m["mu02"] < 1e-2 or m["m00"] < 1e-2:
        return 0.0, image.shape[0] / 2
    return m["mu11"] / m["mu02"], m["m01"] / m["m00"]


def reslant(a: np.ndarray, target: float) -> np.ndarray:
    """``a`` sheared about its centre of mass from its own slant to ``target``, nearest neighbour."""
    h, w = a.shape
    own, cy = slant(a)
    k = own - target  # out(x, y) = a(x + k (y - cy), y)
    warp = np.float32([[1, k, -k * cy], [0, 1, 0]])
    return cv2.warpAffine(a, warp, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def neighbours(x: np.ndarray, k: int) -> np.ndarray:
    """Each image's ``k`` nearest other images of ``x`` (N, H, W) in pixels (N, min(k, N - 1))."""
    flat = x.reshape(len(x), -1).astype(np.float32)
    d2 = (flat**2).sum(1)[:, None] + (flat**2).sum(1)[None] - 2 * flat @ flat.T
    np.fill_diagonal(d2, np.inf)
    return np.argsort(d2, axis=1)[:, : min(k, len(x) - 1)]


def lend(a: np.ndarray, b: np.ndarray, d: np.ndarray, t: float, dis) -> np.ndarray:  # noqa: ANN001 - cv2.DISOpticalFlow
    """``a`` deformed by a fraction ``t`` of the flow that takes ``d``'s shape to ``b``'s (two images of another class)."""
    return morph(a, b, t, dis, source=d)


def morph_set(real: LabeledImages, variant: dict, seed: int) -> LabeledImages:
    """``real`` plus, per class, morphs (or lent deformations) of its images up to the largest class."""
    rng = np.random.default_rng(seed)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    counts = real.class_counts()
    images, labels = [real.images], [real.labels]
    slants = np.array([slant(im[..., 0])[0] for im in real.images]) if variant["kind"] == "slant" else None
    near_by_class = {}  # class -> (its rows, each row's nearest rows' positions): the lenders of xfer
    if variant["kind"] == "xfer":
        for c in range(real.num_classes):
            rows = np.flatnonzero(real.labels == c)
            if len(rows) >= 2:
                near_by_class[c] = (rows, neighbours(real.images[rows, ..., 0], variant["k"]))
    for c in range(real.num_classes):
        rows = np.flatnonzero(real.labels == c)
        n = int(counts.max() - len(rows))
        if n <= 0 or len(rows) < 2:
            continue
        x = real.images[rows, ..., 0]
        if variant["kind"] == "knn":
            near = neighbours(x, variant["k"])
        out = np.empty((n, *x.shape[1:]), np.uint8)
        for s in range(n):
            i = int(rng.integers(len(x)))
            if variant["kind"] == "slant":
                others = np.flatnonzero(real.labels != c)
                out[s] = reslant(x[i], slants[others[rng.integers(len(others))]])
                continue
            if variant["kind"] == "xfer":
                t = float(rng.uniform(0, variant["tmax"]))  # B from the other classes' images, D one of B's nearest in B's class
                others = np.flatnonzero((real.labels != c) & np.isin(real.labels, list(near_by_class)))
                b = int(others[rng.integers(len(others))])
                lender = near_by_class[int(real.labels[b])]
                pos = int(np.searchsorted(lender[0], b))
                dd = int(lender[0][lender[1][pos, rng.integers(lender[1].shape[1])]])
                out[s] = lend(x[i], real.images[b, ..., 0], real.images[dd, ..., 0], t, dis)
                continue
            if variant["kind"] == "knn":
                j = int(near[i, rng.integers(near.shape[1])])
            else:
                j = int(rng.integers(len(x) - 1))
                j += j >= i
            out[s] = morph(x[i], x[j], float(rng.uniform(0, variant["tmax"])), dis)
        new = LabeledImages(out[..., None], np.full(n, c), real.class_names)
        if variant["strokes"]:
            new = augment_each(new, build_pipeline("strokes", seed=int(rng.integers(2**31))), rng)
        images.append(new.images)
        labels.append(new.labels)
    return LabeledImages(np.concatenate(images), np.concatenate(labels), real.class_names)


def grid(real: LabeledImages, expanded: LabeledImages, classes: list[int], path: Path, per_row: int = 12) -> None:
    """Per class (rarest first): four real images, a blank tile, then ``per_row`` new images (:func:`grid_png`)."""
    tiles = []
    for c in classes:
        reals = real.images[real.labels == c][:4]
        new = expanded.images[len(real):][expanded.labels[len(real):] == c][:per_row]
        tiles += [*reals, np.zeros_like(reals[0]), *new]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(grid_png(np.stack(tiles), nrow=len(tiles) // len(classes), min_tile=84))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--test", required=True, help="scored on this (an .npz: its x_test/y_test)")
    ap.add_argument("--recipe", required=True, help="the recipe utility expands the baselines with (seed, plan)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--classifiers", type=int, default=4)
    ap.add_argument("--variants", default="knn5-t0.5,knn5-t0.5+strokes")
    ap.add_argument("--grid", type=Path, default=None, help="PNG of the three rarest classes' morphs (the first variant, first seed)")
    ap.add_argument("--baselines", type=Path, default=None, help="reuse ros and strokes from an earlier --json of the same data, recipe, seeds and classifiers")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variants.split(",") if v]
    train, test = load(args.data), load(args.test, split="test")
    if train.images.shape[-1] != 1:
        raise SystemExit(f"{args.data}: {train.images.shape[-1]}-channel images; this benchmark morphs grayscale images only")
    started = time.perf_counter()
    if args.baselines is not None:
        earlier = json.loads(args.baselines.read_text())
        seeds = [seed_streams(load_recipe(args.recipe).seed, i)[1] for i in range(args.seeds)]
        if earlier["seeds"] != seeds or any(len(r) != args.classifiers for r in earlier["per_classifier"]["ros"]):
            raise SystemExit(f"--baselines {args.baselines}: its seeds or classifiers are not these ({args.seeds} seeds x {args.classifiers} classifiers); run without it")
        f1 = {m: earlier["per_classifier"][m] for m in ("ros", "strokes")}
        recall = {m: earlier["table"][m]["recall"] for m in ("ros", "strokes")}
    else:
        base = utility(train, args.recipe, seeds=args.seeds, test=test, methods=["ros", "classical"], classifiers=args.classifiers,
                       overrides=["classical.pipeline=strokes"], data_spec=args.data)
        seeds = base.seeds
        f1 = {"ros": base.per_classifier["ros"], "strokes": base.per_classifier["classical"]}
        recall = {m: [base.methods[k]["per_class_recall"][n]["mean"] for n in train.class_names] for m, k in (("ros", "ros"), ("strokes", "classical"))}
    print(f"baselines {time.perf_counter() - started:.0f} s: ros {np.mean(f1['ros']):.4f}, strokes {np.mean(f1['strokes']):.4f}", flush=True)
    minority = minority_classes(train.class_counts())
    rarest = [int(c) for c in np.argsort(train.class_counts(), kind="stable")[:3]]
    for v in variants:
        f1[v["name"]], per_class = [], []
        for i in range(args.seeds):
            seed_i = seeds[i]
            expanded = morph_set(train, v, seed_i)
            if args.grid is not None and i == 0 and v is variants[0]:
                grid(train, expanded, rarest, args.grid)
            runs = classifier_runs(expanded, test, seed_i, args.classifiers, 400, minority)
            f1[v["name"]].append([r["macro_f1"] for r in runs])
            per_class.append([float(np.mean([r["per_class_recall"][c] for r in runs])) for c in range(train.num_classes)])
        recall[v["name"]] = np.mean(per_class, axis=0).tolist()
    table = {}
    for name in f1:
        table[name] = {"macro_f1": float(np.mean(f1[name])), "per_seed": np.mean(f1[name], axis=1).tolist(), "recall": np.round(recall[name], 4).tolist()}
        if name not in ("ros", "strokes"):
            table[name].update({"minus ros": paired(f1[name], f1["ros"]), "minus strokes": paired(f1[name], f1["strokes"])})
        cols = " ".join(f"{k} {d['points']:+.1f} ({d['se']:.1f}) {d['seeds_above']}/{args.seeds}" for k, d in table[name].items() if k.startswith("minus "))
        rare = " / ".join(f"{recall[name][c]:.2f}" for c in rarest)
        print(f"{name:24s} {table[name]['macro_f1']:.4f}  recall {', '.join(train.class_names[c] for c in rarest)} {rare}  {cols}")
    out = {"machine": machine(), "args": {k: str(v) for k, v in vars(args).items()}, "seeds": seeds, "seconds": round(time.perf_counter() - started, 1),
           "per_classifier": f1, "table": table}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
