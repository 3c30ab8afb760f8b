"""The utility benchmark: does an expansion help a classifier more than the simple baselines?

For each seed ``i`` (``SeedSequence([recipe.seed, i])``):

1. the real data is divided into a train part and a scoring set, in one of two modes:

   - holdout (the default): a stratified split of ``data`` into train and holdout (``holdout`` of
     every class, at least one image of each class with two or more; the rule of
     :func:`augmentgan.pipeline.split_holdout`), a different split for every seed;
   - test set (``test=...``): no split; every seed trains on all of ``data`` and scores on
     ``test``, which must have the same class names (same order) and image shape. Use it when a
     holdout of the rarest classes would be a handful of images (recall quantised at 1/n);
     the seeds then vary only the methods' and the classifier's randomness;

2. the methods build a training set from the train part only:

   - ``none``: the train part as it is;
   - ``ros``: random oversampling, the recipe's plan with ``mix: {copy: 1}``;
   - ``classical``: ``mix: {classical: 1}`` with the recipe's classical pipeline;
   - ``smote``: ``mix: {smote: 1}`` with the recipe's SMOTE settings (classes too small for SMOTE
     fall back to classical/copies, as the planner notes);
   - ``recipe``: the recipe itself (:func:`augmentgan.pipeline.expand_data`), GAN included;

   every method uses the recipe's plan target, and a seed derived from ``i`` for its randomness;
3. the same small domain CNN (:func:`~augmentgan.domain.classifier.train_classifier`, not cached)
   is trained on each set with the same seed and number of steps (``classifiers`` > 1: that many
   times, with that many seeds, the same for every method, and the scores averaged per seed). Its batches are drawn
   **uniformly over images** (``sampling="uniform"``), not class-balanced: a balanced sampler would
   already rebalance ``none`` and hide what the methods do about the imbalance;
4. scores on the holdout (or the test set): macro-F1 and balanced accuracy (scikit-learn), recall
   per class, and the minority-class recall (mean recall of the third of the classes with the
   fewest real images in ``data``, at least one class).

Mean and (population) standard deviation over seeds; the winner has the best mean macro-F1.
:meth:`UtilityResult.difference` pairs the recipe with a baseline seed by seed and classifier by
classifier (the same classifier seeds: common random numbers) and gives the mean difference in
macro-F1 with its standard error: over the seeds (each seed's mean over its classifiers) where
there are two or more, else over the one seed's classifiers, which then leaves out the
expansion's own randomness (a GAN's seed). :func:`verdict` reads it: "beats" or "is below" only
beyond two standard errors, "is level with" inside them. A classifier trained on synthetic images
varies more from seed to seed than one trained on copies (up to 2.4x on mnist-lt,
benchmarks/RESULTS.md), so one classifier per seed often cannot tell two methods a point apart;
``classifiers`` lowers that part of the noise without retraining the GAN.
``settings["scored_on"]`` says which mode was used (``"holdout"`` or ``"test"``) and
``settings["test_size"]`` how many images were scored per seed.

Cost: the recipe's GAN is trained once per seed (each split is different data; with a test set,
each seed has its own GAN seed), cached under ``$AUGMENTGAN_CACHE_DIR/runs`` by the training
data's fingerprint and the GAN settings, so a rerun reuses it. Lower the cost with overrides such
as ``gan.steps=300``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError, DataError
from augmentgan.progress import ProgressCallback, report

__all__ = ["BASELINE_MIX", "METHODS", "UtilityResult", "classifier_runs", "classifier_seeds", "minority_classes", "paired_difference", "score", "seed_streams", "utility", "verdict"]

BASELINE_MIX: dict[str, Optional[dict[str, float]]] = {
    "none": None,
    "ros": {"copy": 1.0},
    "classical": {"classical": 1.0},
    "smote": {"smote": 1.0},
}
METHODS: tuple[str, ...] = (*BASELINE_MIX, "recipe")
METRICS: tuple[str, ...] = ("macro_f1", "balanced_accuracy", "minority_recall")


@dataclass
class UtilityResult:
    methods: dict[str, dict[str, Any]]  # method -> metric -> {"mean", "std", "values"}; per_class_recall -> class -> {...}
    winner: str
    class_names: tuple[str, ...]
    minority_classes: list[str]
    seeds: list[int]
    settings: dict[str, Any]
    sizes: dict[str, list[int]]  # method -> training-set size per seed
    notes: list[str] = field(default_factory=list)
    mixes: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # method -> the mix it used per seed (what plan.mix: auto chose)
    mix_decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # method -> per seed: plan.mix auto's decision
    per_classifier: dict[str, list[list[float]]] = field(default_factory=dict)  # method -> per seed -> macro-F1 of each classifier

    def best_baseline(self) -> Optional[str]:
        baselines = [m for m in self.methods if m != "recipe"]
        return max(baselines, key=lambda m: self.methods[m]["macro_f1"]["mean"]) if baselines else None

    def difference(self, method: str = "recipe", baseline: Optional[str] = None) -> Optional[dict[str, Any]]:
        """``method`` minus ``baseline`` (default the best baseline) in macro-F1, paired by seed and
        classifier: ``{"method", "baseline", "macro_f1" (mean difference), "stderr", "over"
        ("seeds", "classifiers" or None), "n" (values the standard error is over), "verdict"}``;
        None when either method was not run (or there is no baseline). ``stderr`` is None for one
        seed with one classifier."""
        baseline = baseline or self.best_baseline()
        if baseline is None or method not in self.per_classifier or baseline not in self.per_classifier:
            return None
        return {"method": method, "baseline": baseline, **paired_difference(self.per_classifier[method], self.per_classifier[baseline])}

    def comparison(self, method: str = "recipe") -> Optional[str]:
        """One line: ``method`` against the best baseline, with the standard error of the paired
        difference (:meth:`difference`); None when there is nothing to compare."""
        diff = self.difference(method)
        if diff is None:
            return None
        head = f"the {method} {diff['verdict']} the best baseline ({diff['baseline']}) in macro-F1: {diff['macro_f1']:+.3f}"
        if diff["stderr"] is None:
            return head + " (one seed, one classifier: no standard error; add --seeds or --classifiers)"
        over = f"{diff['n']} seeds" if diff["over"] == "seeds" else f"the {diff['n']} classifiers of one seed, which leave out the expansion's own randomness"
        if diff["stderr"] == 0 and diff["macro_f1"] == 0:
            return head + f": the same score on every one of {over} (the two built the same training set, or sets no classifier here tells apart)"
        if diff["verdict"] == "is level with":
            return head + f", within two standard errors ({diff['stderr']:.3f} over {over}); more --seeds or --classifiers can tell them apart"
        return head + f", more than two standard errors ({diff['stderr']:.3f} over {over})"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; a score that is not a number (no minority class in the test set) is None."""
        from augmentgan.evaluate.evaluation import nan_to_none

        out: dict[str, Any] = {"methods": self.methods, "winner": self.winner}
        diff = self.difference("recipe")  # against the best baseline; None without one or without the recipe
        if diff is not None:
            out["recipe_minus_best_baseline"] = {k: v for k, v in diff.items() if k != "method"}
        out.update(class_names=list(self.class_names), minority_classes=self.minority_classes, seeds=self.seeds, settings=self.settings,
                   train_sizes=self.sizes, mixes=self.mixes, mix_decisions=self.mix_decisions, per_classifier=self.per_classifier, notes=list(self.notes))
        return nan_to_none(out)


def verdict(difference: float, stderr: Optional[float]) -> str:
    """How a difference in macro-F1 reads: "beats" / "is below" beyond two standard errors, "is level
    with" inside them; without a standard error (one seed, one classifier) only its sign:
    "beats" or "does not beat"."""
    if stderr is None:
        return "beats" if difference > 0 else "does not beat"
    if difference > 2 * stderr:
        return "beats"
    if difference < -2 * stderr:
        return "is below"
    return "is level with"


def paired_difference(scores: Sequence[Sequence[float]], baseline: Sequence[Sequence[float]]) -> dict[str, Any]:
    """``scores`` minus ``baseline`` (seeds x classifiers, trained on the same splits with the same
    classifier seeds), paired: ``{"macro_f1" (mean difference), "stderr", "over" ("seeds",
    "classifiers" or None), "n" (values the standard error is over), "verdict"}``. The standard error
    is over the seeds' mean differences, over the classifiers with one seed, None for one of each."""
    d = np.asarray(scores, np.float64) - np.asarray(baseline, np.float64)
    if d.shape[0] >= 2:
        over, per = "seeds", d.mean(axis=1)
    elif d.shape[1] >= 2:
        over, per = "classifiers", d[0]
    else:
        over, per = None, d.ravel()
    stderr = float(np.std(per, ddof=1) / np.sqrt(len(per))) if over else None
    mean = float(d.mean())
    return {"macro_f1": mean, "stderr": stderr, "over": over, "n": len(per) if over else 1, "verdict": verdict(mean, stderr)}


def classifier_runs(train_set: LabeledImages, scored: LabeledImages, seed: int, classifiers: int, steps: int, minority: np.ndarray,
                    device: str = "cpu") -> list[dict[str, Any]]:
    """:func:`score` of ``classifiers`` classifiers (:func:`classifier_seeds` of ``seed``; the evaluation
    CNN, ``steps`` steps, batches drawn uniformly over images) trained on ``train_set``, on ``scored``."""
    from augmentgan.domain.classifier import train_classifier

    runs = []
    for classifier_seed in classifier_seeds(seed, classifiers):
        model = train_classifier(train_set, seed=classifier_seed, steps=steps, sampling="uniform", use_cache=False, device=device)
        runs.append(score(scored.labels, model.predict(scored.images).cpu().numpy(), len(train_set.class_names), minority))
    return runs


def seed_streams(recipe_seed: int, i: int) -> tuple[np.random.SeedSequence, int]:
    """Utility seed ``i`` of a recipe: the stream of its holdout split, and the seed its methods' recipes
    (so its GAN runs, cached by recipe) and its first classifier get."""
    split_seq, method_seq = np.random.SeedSequence([int(recipe_seed), int(i)]).spawn(2)
    return split_seq, int(method_seq.generate_state(1, np.uint32)[0])


def classifier_seeds(seed: int, n: int) -> list[int]:
    """The seeds of a utility seed's ``n`` classifiers: ``seed`` itself first (so one classifier is
    what it always was), then seeds drawn from ``SeedSequence([seed, k])``."""
    return [int(seed)] + [int(np.random.SeedSequence([int(seed), k]).generate_state(1, np.uint32)[0]) for k in range(1, n)]


def _mean_scores(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The scores of one training set's classifiers, averaged (per-class recall class by class)."""
    out: dict[str, Any] = {m: float(np.mean([r[m] for r in runs])) for m in METRICS}
    out["per_class_recall"] = {c: float(np.mean([r["per_class_recall"][c] for r in runs])) for c in runs[0]["per_class_recall"]}
    return out


def minority_classes(counts: np.ndarray) -> np.ndarray:
    """Indices of the third of the classes with the fewest images (at least one; ties by index)."""
    n = max(1, len(counts) // 3)
    return np.sort(np.argsort(counts, kind="stable")[:n])


def score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, minority: np.ndarray) -> dict[str, Any]:
    """macro-F1, balanced accuracy, minority recall and per-class recall over the classes in ``y_true``."""
    present = np.flatnonzero(np.bincount(y_true, minlength=num_classes) > 0)
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    per_class = dict(zip(present.tolist(), recalls.tolist()))
    minority_present = [per_class[c] for c in minority.tolist() if c in per_class]
    return {
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "minority_recall": float(np.mean(minority_present)) if minority_present else float("nan"),
        "per_class_recall": per_class,
    }


def _check_test(data: LabeledImages, test: LabeledImages) -> None:
    """A test set must have the data's classes (same names, same order) and image shape."""
    if test.class_names != data.class_names:
        raise DataError(f"the test set's class names {list(test.class_names)} differ from the data's {list(data.class_names)}; "
                        "give a test set with the same classes in the same order (e.g. the other split of the same file)")
    if test.image_shape != data.image_shape:
        (h, w, c), (th, tw, tc) = data.image_shape, test.image_shape
        how = f" (augmentgan convert TEST OUT --size {h} --channels {c})" if h == w else ""
        raise DataError(f"the test set's images are {th}x{tw}x{tc} (HxWxC) but the data's are {h}x{w}x{c}; "
                        f"convert the test set to the data's size and channels{how}")
    if len(test) == 0:
        raise DataError("the test set has no images; give a test set with images of the data's classes")


def _stats(values: Sequence[float]) -> dict[str, Any]:
    arr = np.asarray(values, np.float64)
    return {"mean": float(np.mean(arr)), "std": float(np.std(arr)), "values": [float(v) for v in arr]}


def _unseen(data: LabeledImages, test: LabeledImages) -> tuple[LabeledImages, list[str]]:
    """The test images that are not also training images (byte-identical), and a note when some were
    left out; a test set that is all training images is refused."""
    from augmentgan.data.arrays import row_keys

    known = set(row_keys(data.images))
    seen = np.array([key in known for key in row_keys(test.images)], bool)
    if seen.all():
        raise DataError(f"all {len(test)} test images are also in the data (identical images): scores on them would not be on unseen images; "
                        "give a test set the data does not hold (e.g. the other split of the same file)")
    if not seen.any():
        return test, []
    note = (f"{int(seen.sum())} of {len(test)} test images are identical to images in the data and were left out of scoring: "
            f"every score is on the other {int((~seen).sum())}")
    return test[np.flatnonzero(~seen)], [note]


def utility(
    data: LabeledImages,
    recipe: Union[str, os.PathLike, Mapping[str, Any], Any],
    *,
    seeds: int = 3,
    holdout: float = 0.2,
    steps: int = 400,
    overrides: Union[Mapping[str, Any], Iterable[str]] = (),
    methods: Sequence[str] = METHODS,
    device: str = "cpu",
    callback: Optional[ProgressCallback] = None,
    test: Optional[LabeledImages] = None,
    data_spec: Optional[str] = None,
    classifiers: int = 1,
) -> UtilityResult:
    """Benchmark ``methods`` on ``data`` over ``seeds`` stratified splits (see the module docstring).

    ``recipe``: a recipe file, mapping or Recipe; its ``data``, ``holdout`` and ``output`` sections
    are not used (``data`` and ``holdout`` here replace them). ``overrides``: dotted ``--set`` pairs
    applied to the recipe. ``test``: score on this set instead of a holdout; every seed then
    trains on all of ``data`` and ``holdout`` is unused. Progress: stage ``"utility"`` per
    (seed, method), plus the inner stages. ``data_spec`` (where ``data`` came from) is only
    recorded, in the config.yaml of the GAN runs the recipe trains. ``classifiers``: classifiers
    trained per training set (:func:`classifier_seeds`), their scores averaged per seed.
    """
    from augmentgan.pipeline import auto_validation, expand_data, split_holdout
    from augmentgan.recipe import load_recipe

    methods = list(dict.fromkeys(methods))  # a method named twice is run once (twice, its scores would count as more seeds)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"unknown utility method(s) {unknown}; choose from {', '.join(METHODS)}")
    if seeds < 1 or steps < 1 or classifiers < 1 or (test is None and not 0 < holdout < 1):
        raise ConfigError(f"utility needs seeds >= 1, classifiers >= 1, 0 < holdout < 1 and steps >= 1, "
                          f"got seeds={seeds}, classifiers={classifiers}, holdout={holdout}, steps={steps}")
    early_notes: list[str] = []
    if test is not None:
        _check_test(data, test)
        test, early_notes = _unseen(data, test)
    checked = load_recipe(recipe, overrides)
    if "recipe" in methods:  # the recipe must not choose its mix on the images it is scored on
        auto_validation(checked, data, None if test is None else test.images, "the test set")
    base = checked.model_dump(mode="json")
    counts = data.class_counts()
    if test is not None and np.any(counts < 1):
        raise DataError(f"class(es) {[data.class_names[i] for i in np.flatnonzero(counts < 1)]} have no images in the data: the classifier cannot learn them; add images or drop them")
    if test is None and np.any(counts < 2):
        raise DataError(f"class(es) {[data.class_names[i] for i in np.flatnonzero(counts < 2)]} have fewer than 2 images: they cannot be in both the training part and the holdout; add images, drop them or give a separate test set")
    minority = minority_classes(counts)
    scores: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    per_classifier: dict[str, list[list[float]]] = {m: [] for m in methods}
    sizes: dict[str, list[int]] = {m: [] for m in methods}
    mixes: dict[str, list[dict[str, float]]] = {m: [] for m in methods if m != "none"}
    decisions: dict[str, list[dict[str, Any]]] = {}
    notes: list[str] = list(early_notes)
    seed_values: list[int] = []
    total, done = seeds * len(methods), 0
    for i in range(seeds):
        split_seq, seed_i = seed_streams(base["seed"], i)
        seed_values.append(seed_i)
        if test is None:
            train_idx, hold_idx, _ = split_holdout(data, holdout, np.random.default_rng(split_seq))
            train = LabeledImages(data.images[train_idx], data.labels[train_idx], data.class_names)
            scored = data[hold_idx]
        else:
            train = LabeledImages(data.images, data.labels, data.class_names)  # all of data, as real rows like the split's train part
            scored = test
        for method in methods:
            report(callback, "utility", done, total, method=f"seed {i + 1}/{seeds}: {method}")
            if method == "none":
                train_set = train
            else:
                spec = copy.deepcopy(base)
                spec["seed"] = seed_i
                part = "train split" if test is None else "all images"
                spec["data"]["path"] = f"{data_spec or 'in-memory data'} (utility seed {i + 1}/{seeds}: {part})"
                if BASELINE_MIX.get(method) is not None:
                    spec["plan"]["mix"] = BASELINE_MIX[method]
                # the scored images are never pseudo rows, auto's validation images nor the GAN's unlabeled images
                expanded = expand_data(train, spec, callback=callback, _exclude=scored.images)
                train_set = expanded.data
                mixes[method].append(dict(expanded.plan.mix))
                if expanded.mix_decision is not None:
                    decisions.setdefault(method, []).append(expanded.mix_decision.to_dict())
                if i == 0:
                    notes += [f"{method}: {n}" for n in expanded.notes if not n.startswith("GAN: ")]
            runs = classifier_runs(train_set, scored, seed_i, classifiers, steps, minority, device)
            scores[method].append(_mean_scores(runs))
            per_classifier[method].append([r["macro_f1"] for r in runs])
            sizes[method].append(len(train_set))
            done += 1
    report(callback, "utility", total, total)
    results: dict[str, dict[str, Any]] = {}
    for method, rows in scores.items():
        entry: dict[str, Any] = {metric: _stats([r[metric] for r in rows]) for metric in METRICS}
        entry["per_class_recall"] = {
            data.class_names[c]: _stats([r["per_class_recall"][c] for r in rows if c in r["per_class_recall"]])
            for c in range(data.num_classes) if any(c in r["per_class_recall"] for r in rows)
        }
        results[method] = entry
    winner = max(results, key=lambda m: results[m]["macro_f1"]["mean"])
    settings = {"seeds": seeds, "scored_on": "holdout" if test is None else "test", "test_size": len(scored),
                "holdout": holdout if test is None else None, "classifier_steps": steps, "classifier_sampling": "uniform", "classifiers": classifiers,
                "recipe_seed": base["seed"], "gan_steps": base["gan"]["steps"], "plan": base["plan"]}
    return UtilityResult(results, winner, data.class_names, [data.class_names[c] for c in minority], seed_values, settings, sizes, list(dict.fromkeys(notes)), mixes, decisions,
                         per_classifier)
