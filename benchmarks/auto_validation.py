"""`plan.mix: auto` scored by cross-validation against scored on a validation set (`plan.auto.validation`).

    flock /tmp/augmentgan-heavy.lock python benchmarks/auto_validation.py --data digits --seeds 5
    flock /tmp/augmentgan-heavy.lock python benchmarks/auto_validation.py --data mnist-lt --seeds 3
    python benchmarks/auto_validation.py --table /tmp/auto-validation/digits.json    # markdown rows from a finished run

Two datasets, each with three disjoint parts: training images, validation images (only the choice
of mix sees them) and test images (only the score sees them):

- ``digits``: ``builtin:digits-lt`` / ``builtin:digits-lt-val`` / ``builtin:digits-lt-test`` with
  the quick start's ``recipes/digits-lt.yaml``;
- ``mnist-lt``: ``../shared/data/mnist-lt.npz`` x_train / the first 100 test images of every class /
  the other 100 of every class, with ``recipes/small-data.yaml`` (``gan.eval_every=0``, as in the
  earlier mnist-lt numbers). The split is written to ``--out/mnist-lt-split.npz``.

``augmentgan.utility.utility`` (``--test``: every seed trains on all training images) runs none /
ros / classical / smote / recipe with ``plan.auto.validation`` set, then the recipe alone with ``plan.auto.validation=null``
(cross-validation inside the training images, the default). The baselines do not choose anything, so
they never read the validation images; both recipe runs train the same cached GANs. Paired by seed:
the seeds' differences and their standard error. Writes ``--out/<data>.json`` with the CPU model and
the flags that decide ``precision: auto``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST_LT = ROOT.parent / "shared" / "data" / "mnist-lt.npz"


def _split_mnist(out: Path) -> Path:
    """x_train as it is; x_test's first 100 of every class -> x_val, the rest -> x_test."""
    path = out / "mnist-lt-split.npz"
    with np.load(MNIST_LT) as f:
        x_test, y_test = f["x_test"], f["y_test"]
        arrays = {"x_train": f["x_train"], "y_train": f["y_train"]}
    val = np.zeros(len(y_test), bool)
    for c in np.unique(y_test):
        val[np.flatnonzero(y_test == c)[:100]] = True
    arrays.update(x_val=x_test[val], y_val=y_test[val], x_test=x_test[~val], y_test=y_test[~val])
    np.savez(path, **arrays)
    return path


def _summary(result: dict, method: str) -> dict:
    m = result["methods"][method]
    return {"mean": m["macro_f1"]["mean"], "std": m["macro_f1"]["std"], "values": m["macro_f1"]["values"],
            "minority_recall": m["minority_recall"]["mean"], "recall_minority": {c: m["per_class_recall"][c]["mean"] for c in result["minority_classes"]}}


def run(args: argparse.Namespace) -> dict:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from augmentgan.data import load
    from augmentgan.gan.precision import cpu_flags
    from augmentgan.utility import utility

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.data == "digits":
        train, test = load("builtin:digits-lt"), load("builtin:digits-lt-test")
        recipe, validation, extra = ROOT / "recipes" / "digits-lt.yaml", ["plan.auto.validation=builtin:digits-lt-val"], []
    else:
        split = _split_mnist(out)
        train, test = load(split, split="train"), load(split, split="test")
        recipe, extra = ROOT / "recipes" / "small-data.yaml", ["gan.eval_every=0"]
        validation = [f"plan.auto.validation={split}", "plan.auto.validation_split=val"]
    extra += args.set
    t0 = time.time()
    with_val = utility(train, recipe, seeds=args.seeds, overrides=extra + validation, test=test).to_dict()
    t1 = time.time()
    cv = utility(train, recipe, seeds=args.seeds, overrides=extra + ["plan.auto.validation=null"], test=test, methods=["recipe"]).to_dict()
    t2 = time.time()
    flags = cpu_flags()
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), "?") if Path("/proc/cpuinfo").exists() else "?"
    methods = {m: _summary(with_val, m) for m in ("none", "ros", "classical", "smote")}
    methods["recipe (validation)"] = _summary(with_val, "recipe")
    methods["recipe (cross-validation)"] = _summary(cv, "recipe")
    diff = np.array(methods["recipe (validation)"]["values"]) - np.array(methods["recipe (cross-validation)"]["values"])
    best = max(("none", "ros", "classical", "smote"), key=lambda m: methods[m]["mean"])
    vs_best = np.array(methods["recipe (validation)"]["values"]) - np.array(methods[best]["values"])
    result = {
        "data": args.data, "recipe": str(recipe.relative_to(ROOT)), "overrides": extra, "validation": validation, "seeds": args.seeds,
        "train_size": len(train), "test_size": len(test), "methods": methods,
        "validation_minus_cv": {"mean": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None, "values": diff.tolist()},
        "validation_minus_best_baseline": {"baseline": best, "mean": float(vs_best.mean()), "se": float(vs_best.std(ddof=1) / np.sqrt(len(vs_best))) if len(vs_best) > 1 else None},
        "mixes": {"validation": with_val["mixes"]["recipe"], "cross-validation": cv["mixes"]["recipe"]},
        "mix_decisions": {"validation": with_val["mix_decisions"]["recipe"], "cross-validation": cv["mix_decisions"]["recipe"]},
        "wall_s": {"with_validation_all_methods": round(t1 - t0, 1), "cross_validation_recipe": round(t2 - t1, 1)},
        "cpu": model, "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))),
    }
    (out / f"{args.data}.json").write_text(json.dumps(result, indent=1))
    return result


def table(result: dict) -> str:
    rows = ["| method | macro-F1 | per seed | minority recall | recall per minority class |", "|---|---:|---|---:|---|"]
    for name, m in result["methods"].items():
        rarest = " / ".join(f"{k} {v:.2f}" for k, v in m["recall_minority"].items())
        rows.append(f"| {name} | {m['mean']:.3f} ± {m['std']:.3f} | {', '.join(f'{v:.3f}' for v in m['values'])} | {m['minority_recall']:.3f} | {rarest} |")
    d, b = result["validation_minus_cv"], result["validation_minus_best_baseline"]
    se = lambda x: "" if x["se"] is None else f" (SE {x['se'] * 100:.2f})"  # noqa: E731
    rows.append("")
    rows.append(f"validation - cross-validation, paired by seed: {d['mean'] * 100:+.2f} points{se(d)}; "
                f"validation - best baseline ({b['baseline']}): {b['mean'] * 100:+.2f} points{se(b)}")
    for kind, mixes in result["mixes"].items():
        rows.append(f"{kind} chose: " + "; ".join(", ".join(f"{k} {v:g}" for k, v in mix.items()) for mix in mixes))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "mnist-lt"], default="digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], help="extra recipe override, e.g. gan.steps=10 (a smoke run)")
    parser.add_argument("--out", default="/tmp/auto-validation")
    parser.add_argument("--table", metavar="RESULTS_JSON", help="print the markdown table of a finished run and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    print(table(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
