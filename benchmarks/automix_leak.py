"""How much does ``plan.mix: auto`` flatter the GAN by scoring it with a GAN that saw the validation fold?

auto trains one GAN on all training images and, when it scores fold f, withholds the GAN samples
whose nearest real image is one of fold f's validation images. This benchmark measures the leak
that remains on fold 0: the GAN candidate's macro-F1 there with

- ``full+withheld``: what auto does (the GAN trained on all images, near samples withheld);
- ``full``: the same GAN without withholding (the leak auto would have without it);
- ``fold-free``: a GAN trained without fold 0 at all (no leak: the honest number).

The leak is ``full+withheld - fold-free``. Every variant uses the same fold, seeds and proxy
classifier settings as auto; ``--proxy-seeds`` repeats the proxy training to show its noise.

    python benchmarks/automix_leak.py --recipe recipes/digits-lt.yaml --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from contextlib import ExitStack

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.augment.smote import MIN_IMAGES  # noqa: E402
from augmentgan.automix import _gan_source, _nearest_real, _score, stratified_folds  # noqa: E402
from augmentgan.data.io import load  # noqa: E402
from augmentgan.data.types import LabeledImages  # noqa: E402
from augmentgan.domain.classifier import train_classifier  # noqa: E402
from augmentgan.pipeline import _gan_pool, _gan_run, _int_seed, _read_gan, fold_builder  # noqa: E402
from augmentgan.planner import make_plan  # noqa: E402
from augmentgan.recipe import resolve_recipe  # noqa: E402


def _pool(spec, data, seed_gan, seed_gen, notes):
    recipe = spec.recipe
    wanted = make_plan(data.class_counts(), data.class_names, recipe.plan, min_for_smote=MIN_IMAGES, mix={"gan": 1.0}).counts("gan")
    with ExitStack() as held:
        run, checkpoint, _ = _gan_run(spec, data, seed_gan, notes, None, held)
        generator = _read_gan(run, checkpoint, data, notes)
        classifier = train_classifier(data)
        pool, failed, _ = _gan_pool(recipe, generator, data, wanted, seed_gen, classifier, None)
    return pool, classifier, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="recipes/digits-lt.yaml")
    parser.add_argument("--data", default=None, help="DATA (default: the recipe's data.path); the whole set is the training split")
    parser.add_argument("--proxy-seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    spec = resolve_recipe(args.recipe, {"plan.mix": "auto"})
    recipe = spec.recipe
    t0 = time.perf_counter()
    data = load(args.data or recipe.data.path, channels=recipe.data.channels, size=recipe.data.size)
    train = LabeledImages(data.images, data.labels, data.class_names)
    _, seq_gan, seq_gen, _, _, _, seq_auto = np.random.SeedSequence(recipe.seed).spawn(7)
    seed_auto = _int_seed(seq_auto)
    fold_of = stratified_folds(train.labels, train.num_classes, recipe.plan.auto.folds, np.random.default_rng(np.random.SeedSequence([seed_auto, 0xA070])))
    val_idx, part_idx = np.flatnonzero(fold_of == 0), np.flatnonzero(fold_of != 0)
    part = LabeledImages(train.images[part_idx], train.labels[part_idx], train.class_names)
    val = train[val_idx]
    notes: list[str] = []
    full_pool, full_clf, _ = _pool(spec, train, _int_seed(seq_gan), _int_seed(seq_gen), notes)
    free_pool, _, _ = _pool(spec, part, _int_seed(seq_gan), _int_seed(seq_gen), notes)
    nearest = _nearest_real(full_pool, train, full_clf)
    variants = {
        "full+withheld": _gan_source(full_pool, ~np.isin(nearest, val_idx)),
        "full": _gan_source(full_pool, np.ones(len(full_pool), bool)),
        "fold-free": _gan_source(free_pool, np.ones(len(free_pool), bool)),
    }
    build = fold_builder(recipe)
    no_gan: dict[int, dict[str, str]] = {}
    scores: dict[str, dict[str, list[float]]] = {}
    for name, gan_fn in variants.items():
        for mix_name, mix in (("gan", {"gan": 1.0}), ("gan+copy", {"gan": 0.5, "copy": 0.5})):
            values = []
            for s in range(args.proxy_seeds):
                fold_seed = int(np.random.SeedSequence([seed_auto, 0xF01D, 0, s]).generate_state(1, np.uint32)[0])
                expanded = build(part, mix, no_gan, gan_fn, fold_seed)
                values.append(_score(expanded, val, steps=recipe.plan.auto.steps, seed=fold_seed, device="cpu"))
            scores.setdefault(mix_name, {})[name] = values
    copy_scores = []
    for s in range(args.proxy_seeds):
        fold_seed = int(np.random.SeedSequence([seed_auto, 0xF01D, 0, s]).generate_state(1, np.uint32)[0])
        copy_scores.append(_score(build(part, {"copy": 1.0}, no_gan, None, fold_seed), val, steps=recipe.plan.auto.steps, seed=fold_seed, device="cpu"))
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    result = {
        "recipe": args.recipe, "data": args.data or recipe.data.path, "fold0_validation_images": len(val_idx), "proxy_seeds": args.proxy_seeds,
        "macro_f1": {m: {k: {"mean": float(np.mean(v)), "std": float(np.std(v)), "values": v} for k, v in d.items()} for m, d in scores.items()},
        "copy": {"mean": float(np.mean(copy_scores)), "std": float(np.std(copy_scores)), "values": copy_scores},
        "leak": {m: float(np.mean(d["full+withheld"]) - np.mean(d["fold-free"])) for m, d in scores.items()},
        "leak_without_withholding": {m: float(np.mean(d["full"]) - np.mean(d["fold-free"])) for m, d in scores.items()},
        "seconds": time.perf_counter() - t0, "cpu": platform.processor() or platform.machine(),
        "cpu_flags_bf16": sorted({f for f in flags.split() if "bf16" in f or f.startswith("amx")}),
    }
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
