"""Which source should fill which classes? Per-class blends of one recipe's sources, scored as `augmentgan utility` does.

    python benchmarks/class_sources.py --data ../shared/data/mnist-lt.npz --test ../shared/data/mnist-lt.npz \\
        --recipe recipes/small-data.yaml --set classical.pipeline=strokes --set latent_smote.classical=true \\
        --seeds 3 --classifiers 4 --rare 7,8,9 --json out.json

``augmentgan utility`` fills every class from one mix. This asks where a source helps and where it
hurts: for each utility seed it expands the training set once per source (``copy``, ``classical``,
``latent-smote``: the recipe's own settings, e.g. ``latent_smote.partners`` and ``latent_smote.classical``,
with utility's seed, so the GANs ``augmentgan utility`` cached for the same recipe and data are reused),
then builds one training set per entry of ``--sets``: the real images, plus each class's new
samples taken from the source named for its tier (``--rare`` classes, the rest). Every set has the
same per-class counts; only where the new samples come from differs. Each set trains ``--classifiers``
classifiers (utility's seeds and classifier: the evaluation CNN, 400 steps, uniform batches), scored on
``--test``. Reported per set: macro-F1 per seed (the classifiers' mean), recall per class, and paired
differences (mean over seeds, standard error over seeds) against the first set and against ``--ref``.
A set is ``NAME=RARE_SOURCE/REST_SOURCE``; the default sets compare every combination that
benchmarks/RESULTS.md reports.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.data.io import load  # noqa: E402
from augmentgan.data.types import LabeledImages, Source  # noqa: E402
from augmentgan.pipeline import expand_data  # noqa: E402
from augmentgan.recipe import check_recipe, load_recipe  # noqa: E402
from augmentgan.utility import classifier_runs, minority_classes, paired_difference, seed_streams  # noqa: E402
from gan_utility_ceiling import machine  # noqa: E402  (benchmarks/, run as a script)

SOURCES = {"copy": {"copy": 1.0}, "classical": {"classical": 1.0}, "latent-smote": {"latent-smote": 1.0}}
DEFAULT_SETS = ("ros=copy/copy,classical=classical/classical,classical rare=classical/copy,latent-smote rare classical rest=latent-smote/classical,"
                "latent-smote rare=latent-smote/copy,classical rest=copy/classical,latent-smote=latent-smote/latent-smote,latent-smote rest=copy/latent-smote")


def parse_sets(text: str) -> dict[str, tuple[str, str]]:
    sets: dict[str, tuple[str, str]] = {}
    for item in text.split(","):
        name, _, tiers = item.partition("=")
        rare, _, rest = tiers.partition("/")
        if not name or rare not in SOURCES or rest not in SOURCES:
            raise SystemExit(f"--sets entry {item!r}: write NAME=RARE_SOURCE/REST_SOURCE with sources from {', '.join(SOURCES)}")
        sets[name] = (rare, rest)
    return sets


def build(real: LabeledImages, expanded: dict[str, LabeledImages], tiers: tuple[str, str], rare: list[int]) -> LabeledImages:
    """The real images plus, per class, the new samples of the source its tier names."""
    parts = [real]
    for c in range(real.num_classes):
        s = expanded[tiers[0] if c in rare else tiers[1]]
        parts.append(s[(s.source != Source.real) & (s.labels == c)])
    return LabeledImages(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]), real.class_names)


def paired(a: list[list[float]], b: list[list[float]]) -> dict[str, float]:
    """``a`` minus ``b`` (seeds x classifiers) in points: ``augmentgan utility``'s paired difference, and the seeds above."""
    d = paired_difference(a, b)
    stderr = float("nan") if d["stderr"] is None else 100 * d["stderr"]
    return {"points": 100 * d["macro_f1"], "se": stderr, "seeds_above": int((np.mean(a, axis=1) > np.mean(b, axis=1)).sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--test", required=True, help="scored on this (an .npz: its x_test/y_test)")
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--set", action="append", default=[], dest="overrides", help="recipe override KEY=VALUE (repeatable), as augmentgan utility --set")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--classifiers", type=int, default=4)
    ap.add_argument("--rare", default=None, help="comma-separated class names of the rare tier (default: utility's minority classes)")
    ap.add_argument("--sets", default=DEFAULT_SETS, help="comma-separated NAME=RARE_SOURCE/REST_SOURCE")
    ap.add_argument("--ref", default="classical", help="the set every other is also compared with")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    sets = parse_sets(args.sets)
    train = load(args.data)
    test = load(args.test, split="test")
    base = check_recipe(load_recipe(args.recipe, args.overrides)).model_dump(mode="json")
    minority = minority_classes(train.class_counts())
    unknown = [n for n in (args.rare or "").split(",") if n and n not in train.class_names]
    if unknown:
        raise SystemExit(f"--rare {args.rare!r}: no class named {unknown} in {args.data}; its classes are {', '.join(train.class_names)}")
    rare = [train.class_names.index(n) for n in args.rare.split(",")] if args.rare else [int(c) for c in minority]
    needed = sorted({s for tiers in sets.values() for s in tiers})
    f1: dict[str, list[list[float]]] = {n: [] for n in sets}  # seeds x classifiers
    recall: dict[str, list[list[float]]] = {n: [] for n in sets}
    started = time.perf_counter()
    for i in range(args.seeds):
        _, seed_i = seed_streams(base["seed"], i)  # augmentgan utility's per-seed recipe seed
        expanded = {}
        for name in needed:
            spec = copy.deepcopy(base)
            spec["seed"], spec["plan"]["mix"] = seed_i, SOURCES[name]
            expanded[name] = expand_data(train, spec).data
        for name, tiers in sets.items():
            data = build(train, expanded, tiers, rare)
            runs = classifier_runs(data, test, seed_i, args.classifiers, 400, minority)
            f1[name].append([r["macro_f1"] for r in runs])
            recall[name].append([float(np.mean([r["per_class_recall"][c] for r in runs])) for c in range(train.num_classes)])
            print(f"seed {i + 1}/{args.seeds} {name:36s} macro-F1 {np.mean(f1[name][-1]):.4f} recall {np.round(recall[name][-1], 2).tolist()}", flush=True)
    first = next(iter(sets))
    table = {}
    for name in sets:
        table[name] = {"tiers": {"rare": sets[name][0], "rest": sets[name][1]}, "macro_f1": float(np.mean(f1[name])), "per_seed": np.mean(f1[name], axis=1).tolist(),
                       "recall": np.mean(recall[name], axis=0).round(4).tolist(), f"minus {first}": paired(f1[name], f1[first])}
        if args.ref in sets:
            table[name][f"minus {args.ref}"] = paired(f1[name], f1[args.ref])
        cols = " ".join(f"{k} {v['points']:+.1f} ({v['se']:.1f}) {v['seeds_above']}/{args.seeds}" for k, v in table[name].items() if k.startswith("minus "))
        print(f"{name:36s} {table[name]['macro_f1']:.4f}  {cols}")
    out = {"machine": machine(),
           "args": vars(args), "rare": [train.class_names[c] for c in rare], "seconds": round(time.perf_counter() - started, 1), "sets": table}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
