"""ssgan on mnist-lt with 10% of the labels (issue 16): the K+1 discriminator as a classifier, and the pseudo source.

    flock /tmp/augmentgan-heavy.lock python benchmarks/ssgan_mnist.py --seeds 3 --out /tmp/ssgan-mnist
    python benchmarks/ssgan_mnist.py --quick --out /tmp/ssgan-smoke                # a smoke test of this script
    python benchmarks/ssgan_mnist.py --table /tmp/ssgan-mnist/results.json         # markdown tables

Data: ``/work/shared/data/mnist-lt.npz`` (``--data``; x_train 1,401 images, long-tailed 500..10 a
class; x_test 2,000, 200 a class; 28x28 gray). For every seed ``s`` a stratified, seeded split keeps
``--label-fraction`` (10%) of each class's training images as labeled (``max(1, round(f * n))``,
at least one a class) and gives the rest as unlabeled images (written, without labels, to
``--out/unlabeled-seed<s>.npz``, as a user would pass them with ``--unlabeled``). Per seed:

1. the recipe below (``gan.preset: ssgan``, ``data.unlabeled`` = that file, ``plan.mix: {copy: 0.5,
   pseudo: 0.5}``, target max) is expanded with :func:`augmentgan.pipeline.expand_data` on the
   labeled images: this trains the ssgan GAN on the labeled + unlabeled images (at ``--img-size``,
   ``--gan-steps`` G steps, ``gan.eval_every=0`` so the final step labels and generates) and fills
   the deficits half with copies, half with pseudo-labeled unlabeled images;
2. (a) the GAN's K+1 discriminator (:func:`augmentgan.gan.semi.class_posteriors`, argmax over the
   K real classes) classifies x_test; against it, the evaluation CNN
   (:func:`augmentgan.domain.classifier.train_classifier`, what ``augmentgan utility`` trains) on
   the labeled images only, with its default class-balanced batches and ``--classifier-steps``;
   the pseudo-labels of the unlabeled images are also scored against their hidden true labels;
3. (b) utility as ``augmentgan utility`` measures it: the same CNN, uniform batches, the same
   seed and steps, trained on ``none`` (the labeled images), ``ros`` (``mix: {copy: 1.0}``, no
   unlabeled images), ``copy+pseudo`` (step 1's expansion) and ``pseudo`` (``mix: {pseudo: 1.0}``,
   the same GAN, cached); macro-F1, balanced accuracy and accuracy on x_test.

Everything goes to ``--out/results.json`` with the CPU, its flags, the load average and wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = "/work/shared/data/mnist-lt.npz"


def cpu_info() -> dict:
    info: dict = {"machine": platform.machine(), "cores": os.cpu_count()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and "model" not in info:
            info["model"] = value.strip()
        if key.strip() == "flags" and "flags" not in info:
            flags = value.split()
            info["flags"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8") if f in flags]
    return info


def load_npz(path: str):  # noqa: ANN201
    from augmentgan.data.types import LabeledImages

    d = np.load(path)
    names = tuple(str(c) for c in range(int(d["y_train"].max()) + 1))
    train = LabeledImages(d["x_train"][..., None], d["y_train"].astype(np.int64), names)
    test = LabeledImages(d["x_test"][..., None], d["y_test"].astype(np.int64), names)
    return train, test


def split_labeled(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded: ``max(1, round(fraction * n))`` labeled indices of every class, the rest unlabeled."""
    rng = np.random.default_rng([seed, 16])
    keep = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        keep.append(idx[: max(1, int(round(fraction * len(idx))))])
    labeled = np.sort(np.concatenate(keep))
    return labeled, np.setdiff1d(np.arange(len(labels)), labeled)


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    return {"accuracy": float(np.mean(pred == y)), "macro_f1": float(f1_score(y, pred, average="macro")), "balanced_accuracy": float(balanced_accuracy_score(y, pred))}


def _pseudo_used(done, truth: np.ndarray) -> dict:  # noqa: ANN001
    """How many pseudo rows an expansion has and how many of their labels are right (``truth``: the unlabeled images' hidden labels)."""
    index = np.asarray(done.extra.get("unlabeled_index", np.zeros(0, np.int64)))
    rows = np.flatnonzero(index >= 0)
    if not len(rows):
        return {"pseudo_rows": 0}
    return {"pseudo_rows": int(len(rows)), "pseudo_label_accuracy": float(np.mean(done.data.labels[rows] == truth[index[rows]]))}


def recipe(args: argparse.Namespace, seed: int, unlabeled: Path, mix: dict, min_confidence: float | None = None) -> dict:
    overrides: dict = {}
    if args.width:
        overrides["model"] = {"g_ch": args.width, "d_ch": args.width}
    return {
        "seed": seed,
        "data": {"path": f"{args.data} (labeled {args.label_fraction:g} of x_train, seed {seed})", "unlabeled": str(unlabeled)},
        "gan": {"preset": "ssgan", "steps": args.gan_steps, "batch": 64, "img_size": args.img_size, "eval_every": 0, "device": "cpu", "overrides": overrides},
        "classical": {"pipeline": "light"},
        "plan": {"target": "max", "mix": mix, "pseudo_min_confidence": args.min_confidence if min_confidence is None else min_confidence},
        "output": {"path": "unused"},
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    from augmentgan.data.types import LabeledImages, Source
    from augmentgan.domain.classifier import train_classifier
    from augmentgan.gan.semi import class_posteriors, kplus1_from_payload
    from augmentgan.pipeline import expand_data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["AUGMENTGAN_CACHE_DIR"] = str(out / "cache")  # its own GAN cache: every seed trains its GAN here
    full, test = load_npz(args.data)
    result: dict = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("table",)},
        "command": " ".join(sys.argv),
        "env": {"cpu": cpu_info(), "torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg_start": os.getloadavg()},
        "seeds": [],
    }
    old = out / "results.json"
    if args.seed_start > 0 and old.exists():  # seeds run in separate invocations: keep the earlier seeds' rows
        result["seeds"] = [r for r in json.loads(old.read_text())["seeds"] if r["seed"] < args.seed_start]
        result["earlier_runs"] = json.loads(old.read_text()).get("earlier_runs", []) + [{k: json.loads(old.read_text())[k] for k in ("settings", "env")}]
    for seed in range(args.seed_start, args.seed_start + args.seeds):
        t_seed = time.perf_counter()
        lab_idx, unl_idx = split_labeled(full.labels, args.label_fraction, seed)
        labeled = LabeledImages(full.images[lab_idx], full.labels[lab_idx], full.class_names)
        unl_path = out / f"unlabeled-seed{seed}.npz"
        np.savez(unl_path, x=full.images[unl_idx])  # no labels: what a user would have
        row: dict = {"seed": seed, "labeled_per_class": labeled.class_counts().tolist(), "unlabeled": int(len(unl_idx)), "wall_s": {}}

        t = time.perf_counter()
        mixed = expand_data(labeled, recipe(args, seed, unl_path, {"copy": 0.5, "pseudo": 0.5}))
        row["wall_s"]["gan_train_and_expand"] = time.perf_counter() - t
        ck = mixed.gan_checkpoint
        assert ck is not None
        k1 = kplus1_from_payload(ck.payload, ck.path)
        row["gan"] = {"checkpoint": str(ck.path), "step": k1.step, "img_size": k1.img_size, "notes": [n for n in mixed.notes if n.startswith(("GAN", "pseudo"))]}

        # (a) the K+1 head against the evaluation CNN on the labeled images only
        t = time.perf_counter()
        post = class_posteriors(k1.D, test.images, k1.img_size)
        row["kplus1_head"] = scores(test.labels, post[:, :-1].argmax(1))
        row["kplus1_head"]["mean_fake_posterior"] = float(post[:, -1].mean())
        post_u = class_posteriors(k1.D, full.images[unl_idx], k1.img_size)
        lab_u, conf_u = post_u[:, :-1].argmax(1), post_u[:, :-1].max(1)
        sure = conf_u >= args.min_confidence
        row["pseudo_labels"] = {
            "accuracy_all": float(np.mean(lab_u == full.labels[unl_idx])),
            "confident": int(sure.sum()),
            "accuracy_confident": float(np.mean(lab_u[sure] == full.labels[unl_idx][sure])) if sure.any() else float("nan"),
            "confident_per_class": np.bincount(lab_u[sure], minlength=full.num_classes).tolist(),
            "confidence_quantiles": {q: float(np.quantile(conf_u, float(q))) for q in ("0.1", "0.5", "0.9", "1.0")},
        }
        for low in args.low_confidence:
            ok = conf_u >= low
            row["pseudo_labels"][f"at_{low:g}"] = {"confident": int(ok.sum()), "accuracy": float(np.mean(lab_u[ok] == full.labels[unl_idx][ok])) if ok.any() else float("nan")}
        row["wall_s"]["kplus1_eval"] = time.perf_counter() - t
        t = time.perf_counter()
        cnn = train_classifier(labeled, seed=seed, steps=args.classifier_steps, use_cache=False)
        row["cnn_labeled_only"] = scores(test.labels, cnn.predict(test.images).cpu().numpy())
        row["wall_s"]["cnn_labeled_only"] = time.perf_counter() - t

        # (b) utility: the same CNN with uniform batches on each training set
        sets = {"none": None, "copy+pseudo": mixed}
        t = time.perf_counter()
        sets["ros"] = expand_data(labeled, recipe(args, seed, unl_path, {"copy": 1.0}))
        only = expand_data(labeled, recipe(args, seed, unl_path, {"pseudo": 1.0}))
        sets["pseudo"] = only
        row["notes"] = {"copy+pseudo": [n for n in mixed.notes if "pseudo" in n], "pseudo": [n for n in only.notes if "pseudo" in n]}
        for low in args.low_confidence:  # the same GAN (the threshold is not part of its cache key), a lower threshold
            name = f"copy+pseudo@{low:g}"
            low_done = expand_data(labeled, recipe(args, seed, unl_path, {"copy": 0.5, "pseudo": 0.5}, low))
            sets[name] = low_done
            row["notes"][name] = [n for n in low_done.notes if "pseudo" in n]
        row["wall_s"]["other_expansions"] = time.perf_counter() - t
        row["utility"] = {}
        t = time.perf_counter()
        for name, done in sets.items():
            data = labeled if done is None else done.data
            model = train_classifier(data, seed=seed, steps=args.classifier_steps, sampling="uniform", use_cache=False)
            src = np.asarray(data.source)
            row["utility"][name] = {**scores(test.labels, model.predict(test.images).cpu().numpy()), "train_size": len(data), **({} if done is None else _pseudo_used(done, full.labels[unl_idx])),
                                    "sources": {Source(int(k)).name.lower(): int(v) for k, v in zip(*np.unique(src, return_counts=True))}}
        row["wall_s"]["utility_classifiers"] = time.perf_counter() - t
        row["wall_s"]["seed_total"] = time.perf_counter() - t_seed
        row["loadavg_end"] = os.getloadavg()
        result["seeds"].append(row)
        print(json.dumps({"seed": seed, "kplus1": row["kplus1_head"], "cnn": row["cnn_labeled_only"], "utility": {k: v["macro_f1"] for k, v in row["utility"].items()}, "wall_s": row["wall_s"]}), flush=True)
        (out / "results.json").write_text(json.dumps(result, indent=1))
    result["env"]["loadavg_end"] = os.getloadavg()
    (out / "results.json").write_text(json.dumps(result, indent=1))
    return result


def _ms(values: list) -> str:
    a = np.asarray(values, float)
    return f"{a.mean():.3f} ± {a.std():.3f}" if len(a) > 1 else f"{a[0]:.3f}"


def table(result: dict) -> str:
    rows = result["seeds"]
    lines = [f"seeds: {len(rows)}; per seed values: " + ", ".join(f"seed {r['seed']}" for r in rows), "",
             "| classifier (on x_test, 2,000 images) | accuracy | macro-F1 | balanced accuracy |", "|---|---|---|---|"]
    for name, key in (("ssgan K+1 discriminator (labeled + unlabeled)", "kplus1_head"), ("evaluation CNN, labeled 10% only", "cnn_labeled_only")):
        lines.append(f"| {name} | " + " | ".join(_ms([r[key][m] for r in rows]) for m in ("accuracy", "macro_f1", "balanced_accuracy")) + " |")
    lines += ["", "| training set of the CNN (uniform batches) | size | pseudo rows (right labels) per seed | macro-F1 | balanced accuracy | accuracy |", "|---|---|---|---|---|---|"]
    for name in rows[0]["utility"]:
        used = ", ".join(f"{r['utility'][name].get('pseudo_rows', 0)} ({r['utility'][name].get('pseudo_label_accuracy', float('nan')):.2f})" for r in rows)
        lines.append(f"| {name} | {rows[0]['utility'][name]['train_size']} | {used} | " + " | ".join(_ms([r["utility"][name][m] for r in rows]) for m in ("macro_f1", "balanced_accuracy", "accuracy")) + " |")
    lines += ["", "| pseudo-labels of the unlabeled images | " + " | ".join(f"seed {r['seed']}" for r in rows) + " |", "|---|" + "---|" * len(rows)]
    for key in ("accuracy_all", "confident", "accuracy_confident"):
        lines.append(f"| {key} | " + " | ".join(str(round(r["pseudo_labels"].get(key, float("nan")), 3)) for r in rows) + " |")
    for key in [k for k in rows[0]["pseudo_labels"] if k.startswith("at_")]:
        lines.append(f"| confident / accuracy {key} | " + " | ".join(f"{r['pseudo_labels'][key]['confident']} / {r['pseudo_labels'][key]['accuracy']:.3f}" for r in rows) + " |")
    lines.append("| confidence quantiles 0.1 / 0.5 / 0.9 / max | " + " | ".join(" / ".join(f"{v:.2f}" for v in r["pseudo_labels"]["confidence_quantiles"].values()) for r in rows) + " |")
    lines += ["", "wall s per seed: " + "; ".join(", ".join(f"{k} {v:.0f}" for k, v in r["wall_s"].items()) for r in rows)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DATA)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-start", type=int, default=0, help="first seed; with > 0 the rows of seeds below it in --out/results.json are kept")
    p.add_argument("--label-fraction", type=float, default=0.1)
    p.add_argument("--gan-steps", type=int, default=400)
    p.add_argument("--img-size", type=int, default=32, choices=(16, 32, 64))
    p.add_argument("--width", type=int, default=0, help="model.g_ch and d_ch (0: the preset's, 64)")
    p.add_argument("--classifier-steps", type=int, default=400)
    p.add_argument("--min-confidence", type=float, default=0.9, help="plan.pseudo_min_confidence (the default's)")
    p.add_argument("--low-confidence", type=float, nargs="*", default=[0.5], help="also copy+pseudo at these thresholds (the same GAN)")
    p.add_argument("--out", default="/tmp/ssgan-mnist")
    p.add_argument("--quick", action="store_true", help="smoke test: 1 seed, 5 GAN steps, 20 classifier steps")
    p.add_argument("--table", help="print markdown tables from this results.json and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    if args.quick:
        args.seeds, args.gan_steps, args.classifier_steps = 1, 5, 20
    result = run(args)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
