"""Can more cross-validation make `plan.mix: auto` pick `strokes` where it wins on the test set?

    flock /tmp/augmentgan-heavy.lock python benchmarks/auto_repeated_cv.py --data digits --repeats 6
    flock /tmp/augmentgan-heavy.lock python benchmarks/auto_repeated_cv.py --data mnist-lt --repeats 5

On both benchmarks `strokes` beats copies on the test images (digits-lt-test +2.5 points, 5 seeds;
mnist-lt x_test +1.3, 10 seeds: benchmarks/RESULTS.md), yet auto's 3-fold cross-validation chose
copies in most seeds. Its fold scores are noisy (one proxy classifier per fold), so the question is
whether the folds' preference is noise that repeats would average away or what the training images
really say. This runs auto's own machinery (``automix.choose_mix`` with the recipe's
``fold_builder``, sources copy and classical, no blends) ``--repeats`` times with other fold
assignments and proxy seeds, and reports classical minus copy paired fold by fold. No GAN is
involved. The recipe is the quick start's for digits, ``recipes/small-data.yaml`` for mnist-lt,
both with ``classical.pipeline=strokes``. Writes ``--out`` (JSON) with the CPU model and flags.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from gan_utility_ceiling import machine  # noqa: E402  (benchmarks/, run as a script): CPU model and the flags that decide precision

ROOT = Path(__file__).resolve().parents[1]
MNIST_LT = ROOT.parent / "shared" / "data" / "mnist-lt.npz"


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from augmentgan.automix import choose_mix
    from augmentgan.data import load
    from augmentgan.pipeline import fold_builder
    from augmentgan.planner import AutoMixConfig
    from augmentgan.recipe import check_recipe, load_recipe

    if args.data == "digits":
        train, recipe_path = load("builtin:digits-lt"), ROOT / "recipes" / "digits-lt.yaml"
    else:
        train, recipe_path = load(MNIST_LT, split="train"), ROOT / "recipes" / "small-data.yaml"
    recipe = check_recipe(load_recipe(recipe_path, [f"classical.pipeline={args.pipeline}"]))
    build = fold_builder(recipe)
    cfg = AutoMixConfig(sources=["copy", "classical"], blends=False, folds=args.folds)
    repeats: list[dict[str, list[float]]] = []
    t0 = time.time()
    for r in range(args.repeats):
        decision = choose_mix(train, cfg, build, seed=args.seed + r)
        repeats.append({c.name: list(c.fold_scores) for c in decision.candidates})
        print(f"repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {np.round(v, 3).tolist()}" for k, v in repeats[-1].items()), f"({time.time() - t0:.0f} s)", file=sys.stderr)
    scores = {name: np.array([s for rep in repeats for s in rep[name]]) for name in ("copy", "classical")}
    diff = scores["classical"] - scores["copy"]
    return {
        "data": args.data, "recipe": str(recipe_path.relative_to(ROOT)), "pipeline": args.pipeline, "folds": args.folds, "repeats": args.repeats,
        "train_size": len(train),
        "candidates": {k: {"mean": float(v.mean()), "sd": float(v.std(ddof=1))} for k, v in scores.items()},
        # the folds of one repeat share their training images, so this standard error is optimistic; the repeats' means are given too
        "classical_minus_copy": {"mean": float(diff.mean()), "se_over_folds": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                                 "per_repeat": [float(np.mean(diff[i * args.folds:(i + 1) * args.folds])) for i in range(args.repeats)]},
        "repeats_fold_scores": repeats, "wall_s": round(time.time() - t0, 1),
        **machine(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", choices=["digits", "mnist-lt"], required=True)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--pipeline", default="strokes")
    p.add_argument("--seed", type=int, default=7000)
    p.add_argument("--out", default=None, help="JSON file (default: stdout only)")
    args = p.parse_args()
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    d = result["classical_minus_copy"]
    print(f"{args.data}: classical ({args.pipeline}) minus copy over {args.repeats} x {args.folds} folds: {100 * d['mean']:+.2f} points "
          f"(SE {100 * d['se_over_folds']:.2f}); per repeat {[round(100 * v, 1) for v in d['per_repeat']]}")


if __name__ == "__main__":
    main()
