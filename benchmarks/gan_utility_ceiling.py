"""How much can a classifier gain from a trained GAN's samples, however they are selected?

    python benchmarks/gan_utility_ceiling.py --data ../shared/data/mnist-lt.npz --test ../shared/data/mnist-lt.npz \\
        --run RUN_DIR --run OTHER_RUN@6400 --select none,confidence,harmful,oracle --classifier-seeds 6 --json out.json

``augmentgan utility`` answers "does the recipe help", one classifier per seed. This asks a narrower
question about the GAN itself: with the samples of these runs (``RUN[@CHECKPOINT]``, default the
checkpoint generation uses), what macro-F1 on ``--test`` does a classifier reach when every class is
filled up to the largest one (``plan.target: max``) with

- ``gan``: the GAN's samples alone (the real images plus samples, as ``plan.mix={gan: 1.0}``);
- ``copy+gan``: half of each class's gap with copies of its real images, half with samples
  (``plan.mix={copy: 0.5, gan: 0.5}``);
- ``ros``: copies alone (random oversampling), the reference;
- ``copy+gan-every``: every class filled with copies as ``ros``, then every class, the largest
  included, given as many samples as the rarest class's gap: about half of every class is
  synthetic. Beside ``copy+gan`` (half of the rare classes synthetic, none of the largest) it
  asks whether the samples hurt through their look: where only rare classes hold synthetic
  images, a classifier can learn "looks generated" as a cue for them, which real test images do
  not carry;

where the samples are selected by each ``--select`` entry: ``none`` (the first ones drawn), a
generation filter (``confidence``, ``harmful``, ``confidence:p=0.9``, ...; judged against the
training data, as ``generate`` does), ``psi=0.7`` (drawn with the latents truncated at 0.7, no filter), ``latent-smote`` (the plan source: SMOTE between the codes of
two real images of the class, decoded by G, with its defaults), ``latent-smote-all=0.35`` (the same
with ``latent_smote.partners: all`` and that step: towards a real image of another class), ``smote`` (pixel SMOTE, no GAN: the
run only names the row), ``classical=PIPELINE`` (e.g. ``classical=strokes``: that classical pipeline on the real
images, no GAN either), ``classical-oracle=PIPELINE`` (the same drawn 3x, keeping what the judge below places in
its class: does any critic of classical samples, a GAN's discriminator included, have room to help?),
``classical-critic=PIPELINE`` (the same, kept by a classifier trained on the real training images, balanced batches),
``classical-selfcritic=PIPELINE`` (kept by a classifier of the real images plus another draw of the pipeline's samples),
``classical-dcritic=PIPELINE`` (kept by the run's own discriminator used as a classifier, argmax over y of D(x, y)), or ``oracle``: only samples that a judge classifier trained on
``--test`` itself places in the class they were drawn for. No user can select that way (it reads
the test set); it bounds what any class filter could buy, so a GAN whose oracle-selected samples
lose to copies cannot win by filtering, only by better samples.

The classifier is ``augmentgan utility``'s (the evaluation CNN, ``--steps`` steps, batches drawn
uniformly over images), trained ``--classifier-seeds`` times per expanded set with different seeds
(copies drawn anew per seed, the same for every set: common random numbers; ``ros`` is trained once,
as it depends on neither the run nor the selection): a classifier trained on synthetic images varies far more from seed to
seed than one trained on copies, so one seed per configuration cannot rank them. Reported per run
and pooled over runs: mean macro-F1, its standard error over all (run, seed) pairs, minority
recall (the classes ``augmentgan utility`` calls minority), recall per class and the judge's
in-class share of the samples used. CPU model and the flags that decide ``precision: auto`` are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.data.io import load  # noqa: E402
from augmentgan.data.types import LabeledImages  # noqa: E402
from augmentgan.domain.classifier import DomainClassifier, train_classifier  # noqa: E402
from augmentgan.gan.precision import cpu_flags  # noqa: E402
from augmentgan.generate.generation import sample_dataset  # noqa: E402
from augmentgan.augment.classical import augment_class, build_pipeline  # noqa: E402
from augmentgan.augment.smote import smote_class_counts  # noqa: E402
from augmentgan.generate.latent_smote import latent_smote  # noqa: E402
from augmentgan.utility import minority_classes, score  # noqa: E402

SETS = ("ros", "gan", "copy+gan", "copy+gan-every")


def parse_run(text: str) -> tuple[Path, str | int]:
    path, _, ckpt = text.partition("@")
    return Path(path), (int(ckpt) if ckpt.isdigit() else ckpt or "auto")


def select(run: Path, ckpt: str | int, selection: str, need: np.ndarray, train: LabeledImages, judge: DomainClassifier, filter_steps: int = 400) -> LabeledImages:
    """``need[c]`` samples of each class, chosen by ``selection``."""
    if selection == "oracle":  # draw 3x, keep the first ones the test-set judge places in their class
        pool, _ = sample_dataset(run, counts=3 * need, seed=0, checkpoint=ckpt, device="cpu")
        ok = judge.predict(pool.images).cpu().numpy() == pool.labels
        rows = [np.flatnonzero((pool.labels == c) & ok)[: need[c]] for c in range(len(need))]
        short = [pool.class_names[c] for c, r in enumerate(rows) if len(r) < need[c]]
        if short:
            print(f"oracle: too few in-class samples for {short} in 3x the request; using what there is", file=sys.stderr)
        return pool[np.concatenate(rows)]
    if selection.startswith(("classical=", "classical-oracle=", "classical-critic=", "classical-selfcritic=", "classical-dcritic=")):  # a classical pipeline on the real images (no GAN; the run only names the row)
        pipeline = build_pipeline(selection.split("=", 1)[1], seed=0)
        streams = np.random.SeedSequence(0).spawn(len(need))
        kind = selection.split("=", 1)[0]  # -oracle / -critic: draw 3x, keep the first the test-set judge / a classifier of the training images places in their class
        parts = [augment_class(train, c, int(n) * (1 if kind == "classical" else 3), pipeline, np.random.default_rng(streams[c])) for c, n in enumerate(need)]
        pool = LabeledImages(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]), train.class_names)
        if kind == "classical":
            return pool
        if kind == "classical-oracle":
            critic = judge
        elif kind == "classical-dcritic":  # the run's projection D as a classifier: argmax over y of D(x, y)
            return pool[_dcritic_rows(run, ckpt, pool, need)]
        elif kind == "classical-critic":
            critic = train_classifier(train, steps=filter_steps, sampling="balanced", use_cache=False)
        else:  # classical-selfcritic: a classifier of the real images plus another draw of the pipeline's samples (cross-fitted)
            other = [augment_class(train, c, int(n), pipeline, np.random.default_rng(s)) for (c, n), s in zip(enumerate(need), np.random.SeedSequence(1).spawn(len(need)))]
            critic = train_classifier(LabeledImages(np.concatenate([train.images, *[p.images for p in other]]), np.concatenate([train.labels, *[p.labels for p in other]]),
                                                    train.class_names), steps=filter_steps, sampling="balanced", use_cache=False)
        ok = critic.predict(pool.images).cpu().numpy() == pool.labels
        return pool[np.concatenate([np.flatnonzero((pool.labels == c) & ok)[: need[c]] for c in range(len(need))])]
    if selection == "smote":  # pixel SMOTE (the plan source; no GAN), for comparison with latent-smote
        return smote_class_counts(train, {c: int(n) + int(have) for c, (n, have) in enumerate(zip(need, train.class_counts()))}, seed=0)
    if selection == "latent-smote" or selection.startswith("latent-smote-all="):  # the plan source, its defaults (fitted encoder, residual
        # anchoring), or with latent_smote.partners all and the step given
        options = {"partners": "all", "step": float(selection.split("=", 1)[1])} if "=" in selection else {}
        return latent_smote(run, train, {c: int(n) for c, n in enumerate(need)}, seed=0, checkpoint=ckpt, device="cpu", **options).samples
    truncation = None
    if selection.startswith("psi="):  # truncated latents (sample_dataset's truncation), no filter
        truncation, selection = float(selection[4:]), "none"
    filters = [] if selection == "none" else [selection]
    samples, _ = sample_dataset(run, counts=need, seed=0, checkpoint=ckpt, truncation=truncation, filters=filters, real=train if filters else None,
                                classifier_steps=filter_steps, max_tries=20, device="cpu")
    return samples


def _dcritic_rows(run: Path, ckpt: str | int, pool: LabeledImages, need: np.ndarray) -> np.ndarray:
    """Rows of ``pool`` (need[c] per class at most) that the run's discriminator places in their class:
    argmax over y of D(x, y), the images resized to the GAN's size as ``expand`` does."""
    import torch

    from augmentgan.data.io import conform
    from augmentgan.gan.checkpoint import open_generator
    from augmentgan.generate.sampler import load_discriminator

    checkpoint = open_generator(run, ckpt)
    _, info = checkpoint.generator(device="cpu")
    D = load_discriminator(info, checkpoint.payload, torch.device("cpu"))
    pred = []
    for start in range(0, len(pool), 512):
        x = conform(pool[np.arange(start, min(start + 512, len(pool)))], size=info.img_size, channels=info.channels).images
        x = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        with torch.no_grad():
            scores = torch.stack([D(x, torch.full((len(x),), c, dtype=torch.long)).reshape(-1) for c in range(len(info.class_names))], 1)
        pred.append(scores.argmax(1).numpy())
    ok = np.concatenate(pred) == pool.labels
    print("dcritic: share kept per class " + ", ".join(f"{pool.class_names[c]} {ok[pool.labels == c].mean():.2f}" for c in range(len(need)) if need[c]), file=sys.stderr)
    return np.concatenate([np.flatnonzero((pool.labels == c) & ok)[: need[c]] for c in range(len(need))])


def expanded(kind: str, train: LabeledImages, samples: LabeledImages | None, need: np.ndarray, rng: np.random.Generator) -> LabeledImages:
    """The real images plus, per class, the copies and samples ``kind`` takes (``need``: each class's gap to the largest)."""
    n_copy, n_sample = {
        "ros": (need, 0 * need),
        "gan": (0 * need, need),
        "copy+gan": (need - need // 2, need // 2),
        "copy+gan-every": (need, np.full_like(need, need.max())),
    }[kind]
    copies = np.concatenate([rng.choice(np.flatnonzero(train.labels == c), int(n), replace=True) for c, n in enumerate(n_copy)])
    parts = [(train.images, train.labels), (train.images[copies], train.labels[copies])]
    if samples is not None:
        rows = np.concatenate([np.flatnonzero(samples.labels == c)[: n_sample[c]] for c in range(len(need))])
        parts.append((samples.images[rows], samples.labels[rows]))
    return LabeledImages(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), train.class_names)


def machine() -> dict[str, Any]:
    model = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    flags = cpu_flags()
    return {"cpu": model or platform.processor(), "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "amx", "fma"))), "cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="the GAN's training data (a run's, e.g. ../shared/data/mnist-lt.npz)")
    ap.add_argument("--test", required=True, help="the test set (for an .npz with x_test/y_test, the same file)")
    ap.add_argument("--run", action="append", required=True, help="RUN_DIR[@CHECKPOINT] (repeatable; checkpoint: a step, best, final, auto)")
    ap.add_argument("--select", default="none,oracle", help="comma-separated: none, oracle, psi=F (truncation), latent-smote, latent-smote-all=STEP (partners all), smote, "
                    "classical=PIPELINE, classical-oracle=PIPELINE, classical-critic=PIPELINE, classical-selfcritic=PIPELINE, classical-dcritic=PIPELINE, or a generation filter spec")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated of {', '.join(SETS)}")
    ap.add_argument("--classifier-seeds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=400, help="classifier steps (augmentgan utility's default)")
    ap.add_argument("--filter-classifier-steps", type=int, default=400, help="steps of the domain classifier the filters judge with (generate's default 400)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        ap.error(f"unknown --sets {unknown}; choose from {', '.join(SETS)}")
    train = load(args.data)
    test = load(args.test, split="test") if str(args.test).endswith(".npz") else load(args.test)
    counts = train.class_counts()
    need = counts.max() - counts
    minority = minority_classes(counts)
    judge = train_classifier(test, steps=400, use_cache=False)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def trial(kind: str, run_text: str, selection: str, samples: LabeledImages | None, in_class: float | None) -> None:
        """Train the classifier --classifier-seeds times on one expanded set and print the mean."""
        for k in range(args.classifier_seeds):
            data = expanded(kind, train, samples, need, np.random.default_rng([k, 7]))  # the same copies per seed in every set
            model = train_classifier(data, seed=1000 + k, steps=args.steps, sampling="uniform", use_cache=False)
            s = score(test.labels, model.predict(test.images).cpu().numpy(), train.num_classes, minority)
            rows.append({"run": run_text, "selection": selection, "set": kind, "seed": k, "in_class": in_class, "macro_f1": s["macro_f1"],
                         "minority_recall": s["minority_recall"], "per_class_recall": {train.class_names[c]: r for c, r in s["per_class_recall"].items()}})
        f1 = [r["macro_f1"] for r in rows[-args.classifier_seeds:]]
        se = np.std(f1, ddof=1) / np.sqrt(len(f1)) if len(f1) > 1 else 0.0
        print(f"{run_text} {kind:9s} {selection:14s} macro-F1 {np.mean(f1):.4f} ± {se:.4f} (se)", flush=True)

    if "ros" in sets:  # copies depend on neither the run nor the selection: once
        trial("ros", "-", "-", None, None)
    draw = np.full_like(need, need.max()) if "copy+gan-every" in sets else need  # copy+gan-every: every class as many as the rarest's gap
    for run_text in args.run:
        run, ckpt = parse_run(run_text)
        for selection in [s for s in args.select.split(",") if s] if set(sets) - {"ros"} else []:
            samples = select(run, ckpt, selection, draw, train, judge, args.filter_classifier_steps)
            in_class = float(np.mean(judge.predict(samples.images).cpu().numpy() == samples.labels))
            for kind in sets:
                if kind != "ros":
                    trial(kind, run_text, selection, samples, in_class)
    summary = []
    for key in dict.fromkeys((r["set"], r["selection"]) for r in rows):
        sel = [r for r in rows if (r["set"], r["selection"]) == key]
        f1 = np.array([r["macro_f1"] for r in sel])
        per_run = [float(np.mean([r["macro_f1"] for r in sel if r["run"] == run])) for run in dict.fromkeys(r["run"] for r in sel)]
        inc = [r["in_class"] for r in sel if r["in_class"] is not None]
        summary.append({"set": key[0], "selection": key[1], "macro_f1": float(f1.mean()), "stderr": float(f1.std(ddof=1) / np.sqrt(len(f1))) if len(f1) > 1 else 0.0,
                        "per_run": per_run, "minority_recall": float(np.mean([r["minority_recall"] for r in sel])),
                        "in_class": float(np.mean(inc)) if inc else None, "n": len(f1),
                        "per_class_recall": {c: float(np.mean([r["per_class_recall"][c] for r in sel])) for c in train.class_names}})
    print(f"\n{'set':9s} {'selection':14s} macro-F1 (se)      minority  in-class  per run")
    for s in summary:
        inc = f"{s['in_class']:.3f}" if s["in_class"] is not None else "-"
        print(f"{s['set']:9s} {s['selection']:14s} {s['macro_f1']:.4f} ({s['stderr']:.4f})  {s['minority_recall']:.3f}     {inc:8s}  {', '.join(f'{v:.3f}' for v in s['per_run'])}")
    print(f"\nper-class recall (classes {', '.join(train.class_names)}):")
    for s in summary:
        print(f"{s['set']:9s} {s['selection']:14s} " + " ".join(f"{s['per_class_recall'][c]:.2f}" for c in train.class_names))
    out = {"machine": machine(), "data": args.data, "test": args.test, "runs": args.run, "classifier_seeds": args.classifier_seeds, "steps": args.steps,
           "filter_classifier_steps": args.filter_classifier_steps,
           "wall_s": round(time.perf_counter() - t0, 1), "summary": summary, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
