"""``plan.mix: auto``: the expansion chooses its own blend of sources by cross-validation.

A user wants a better classifier, not GAN samples; which sources help depends on their data. So
inside the training set (the user's holdout is never touched):

1. **Folds.** The real training images are split into ``plan.auto.folds`` (3) stratified folds:
   each class with at least :data:`MIN_VALIDATED` (4) images is shuffled (seeded) and dealt round
   robin into the folds. **Classes with 1-3 images are never validated**: they stay in the
   training part of every fold (a class of 3 would leave 2 to learn from and 1 to score on) and get
   the mix chosen for the other classes. Without any validated class (every class below 4 images)
   there is nothing to score on, and the mix falls back to random oversampling (``{copy: 1}``),
   with a note.
2. **GAN checks, per class.** The GAN is trained once on all training images. A pool of its
   samples is drawn per class (as many as a GAN-only plan needs, through the recipe's generation
   filters), and a class's GAN samples are ruled out for that class when (a) the class has a
   single real image (its samples cannot be checked), (b) the filters could not fill the pool,
   (c) they look like another class: the domain classifier trained on the real images assigns
   most of them to one other class and fewer than :data:`MIN_RECOGNIZED` (25%) to theirs (the
   bar is low because a classifier that saw 5 images of a class recognizes only about a third of
   unseen real images of it), (d) fewer than :data:`MIN_REALISTIC` (10%)
   of them lie on the real images' manifold (improved precision in the domain features: inside
   the 5-nearest-neighbour ball of some real image of the class; noise and blur fail), or (e)
   they are collapsed: their diversity in the domain features is below ``COLLAPSE_RATIO`` (0.5)
   of the real images' (the flag of ``augmentgan evaluate``). The reasons are recorded.
3. **No leakage from the GAN.** The GAN saw every training image, so it could copy a validation
   image into the fold's training set. When a fold is scored, GAN samples whose nearest real
   image of their class (domain features) is one of that fold's validation images are withheld
   from it: the GAN candidate learns only from samples near images the fold trains on, roughly
   what a GAN trained without the fold would give (and biased against the GAN, not for it). A
   class all of whose samples are withheld gets no GAN samples in that fold (its share goes to the
   other sources, as for a class the GAN is ruled out for). Identical images (duplicates in the
   data) share a fold, so no fold validates on an image its training part holds.
   **Nor from the generation filters.** Filters that judge samples against the real images
   (``confidence``, ``harmful``, ``informative``, ``memorization``, ``dedup``; also ``truncation:
   auto``) would otherwise have learned from the fold's validation images (``harmful``'s classifier,
   trained on every training image, keeps the GAN samples that look like its classes' images, the
   fold's validation images among them). With such filters each fold draws its own pool: the same
   candidates (same seed) judged by the filters against the fold's training part alone (a domain
   classifier trained on it); a class whose pool the fold's filters cannot fill gets no GAN samples
   in that fold. Neither rule removes all of the GAN's advantage in the folds: on mnist-lt with
   ``harmful`` the folds scored the GAN alone 0.954 against copies' 0.935 in one seed (0.962 with the
   filter fitted on all training images), and on the test set it scored 0.824 against copies' 0.917
   (benchmarks/RESULTS.md). A validation set or a split the GAN never saw (below) has no such bias.
4. **Candidates.** Every single source (``copy`` = random oversampling, ``classical``, ``smote``,
   ``gan``, ``latent-smote``; those in ``plan.auto.sources`` that can serve some class) and, with
   ``plan.auto.blends``, the 50/50 blends of the best single source with each other one. Each
   candidate expands every fold's training part to the plan's target with the same seeds
   (common random numbers), the proxy classifier (the evaluation CNN, ``plan.auto.steps`` steps,
   batches drawn uniformly over images as in ``augmentgan utility``) is trained on it with the
   same seed, and scores macro-F1 on the fold's validation images.
5. **Choice.** The one-standard-error rule (Breiman et al. 1984, CART; Hastie, Tibshirani &
   Friedman, ESL 7.10): the simplest candidate, in the order listed (single sources before blends),
   whose mean macro-F1 over the folds is within one standard error of the best mean (the best's
   fold standard deviation over sqrt(folds)) wins. A blend that beats copies by less than the folds'
   own noise is not chosen: on mnist-lt such wins (0.952 against 0.950, 0.928 against 0.927) lost
   0.2-0.9 points of macro-F1 on the test set (benchmarks/RESULTS.md). Its shares are used for the export, with the GAN ruled out of the
   classes that failed the checks. The decision (candidates, per-fold scores, mean and spread,
   the chosen shares, the GAN checks and why the GAN got its share) is returned as a
   :class:`MixDecision`.

**With a validation set** (``plan.auto.validation``): cross-validation inside the training split
answers "which expansion is best for images like these", and on our benchmarks that is not the
question a user's classifier faces. On digits-lt the folds chose copies over the ``strokes``
augmentation in 3 of 5 seeds (in 5 of 5 with folds clustered within each class or cut in file
order), and a stratified 20% holdout agrees that copies are better on images like the training
images (ros 0.978, strokes 0.963, 10 seeds), but on the images that follow them in scikit-learn's
digits (digits-lt-val, digits-lt-test) strokes wins by 2-3 points (benchmarks/RESULTS.md): what
augmentation buys shows on images unlike the training set's. So a user who has labeled images like
those the classifier will meet (a later session, another site, other writers; a few per class)
names them, and every candidate then expands *all* training images and ``plan.auto.folds`` proxy
classifiers (seeds) per candidate are scored on them; the one-standard-error rule (step 5) over
those seeds.
Steps 1 and 3 do not apply (the GAN never saw these images); classes without validation images get
the mix chosen for the others. The caller checks that no validation image is a training image.

**With a split held out of the GAN** (``plan.auto.split``, :func:`held_out_split`): the pipeline
sets aside a stratified fraction of the training images before the GAN trains, and calls
:func:`choose_mix` with the rest as ``train`` (the GAN's training images, which its filters, checks
and the candidates use) and the held-out images as ``validation``: scored as with a validation set,
on images the GAN never saw, without asking the user for any. The export expands all training
images with the chosen mix. latent-smote's codes are found once for all training images (the
inversion's feature classifier trained on all of them); its candidates interpolate only between
the codes of the part the GAN trained on.

The exported GAN samples are the first ones of the same pool (drawn from the GAN trained on all
training images), so generation runs once. ``latent-smote`` likewise encodes the training images
once (with the GAN trained on all of them); a fold interpolates only between the codes of its own
training part, so no validation image is a parent, and the export reuses the codes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from sklearn.metrics import f1_score

from augmentgan.planner import AutoMixConfig
from augmentgan.data.arrays import twin_groups
from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError
from augmentgan.progress import ProgressCallback, report

__all__ = ["MIN_RECOGNIZED", "MIN_VALIDATED", "CandidateScore", "GanCheck", "MixDecision", "check_gan_pool", "choose_mix", "held_out_split", "one_se_choice", "stratified_folds"]

MIN_VALIDATED = 4
"""A class needs this many real training images to be split across validation folds."""
MIN_RECOGNIZED = 0.25
"""Share of a class's GAN samples the real-data classifier must assign to the class (when most go to another)."""
MIN_REALISTIC = 0.1
"""Share of a class's GAN samples that must lie on the real images' manifold (improved precision)."""
PREFERENCE: tuple[str, ...] = ("copy", "classical", "smote", "gan", "latent-smote")
"""Order of the single-source candidates; ties go to the earlier (simpler) one."""

# (fold training part, mix, sources ruled out per class, GAN samples for counts, seed) -> expanded set;
# with latent-smote among the sources also the keyword latent_fn: (rows of the part kept, counts, seed) -> samples
BuildFn = Callable[..., LabeledImages]
# rows of the training images in a fold's part -> (the GAN pool drawn with filters fitted on that part, class -> why it could not be filled)
FoldPoolFactory = Callable[[np.ndarray], tuple[LabeledImages, Mapping[int, str]]]
# rows of the training images in a fold's part -> that fold's latent_fn
LatentFactory = Callable[[np.ndarray], Callable[[np.ndarray, Mapping[int, int], int], LabeledImages]]


@dataclass
class CandidateScore:
    name: str
    mix: dict[str, float]
    fold_scores: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.fold_scores))

    @property
    def std(self) -> float:
        """The folds' spread as reported (population standard deviation); the rule uses :attr:`stderr`."""
        return float(np.std(self.fold_scores))

    @property
    def stderr(self) -> float:
        """Standard error of :attr:`mean`: the folds' sample standard deviation over sqrt(folds) (0 for one fold)."""
        n = len(self.fold_scores)
        return float(np.std(self.fold_scores, ddof=1) / np.sqrt(n)) if n > 1 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mix": dict(self.mix),
                "macro_f1": {"mean": self.mean, "std": self.std, "stderr": self.stderr, "folds": list(self.fold_scores)}}


def one_se_choice(candidates: Sequence[CandidateScore]) -> CandidateScore:
    """The one-standard-error rule (step 5 of the module docstring): the first of ``candidates`` (listed
    simplest first) whose mean is at least the best mean minus the best candidate's standard error."""
    best = max(candidates, key=lambda c: c.mean)
    return next(c for c in candidates if c.mean >= best.mean - best.stderr)


@dataclass
class GanCheck:
    """Whether the GAN's samples of one class may be used, and why not."""

    pool: int  # samples drawn for the class
    recognized: Optional[float] = None  # share the domain classifier assigns to the class
    realistic: Optional[float] = None  # improved precision against the real images of the class
    diversity_ratio: Optional[float] = None  # diversity of the samples / of the real images
    reason: Optional[str] = None  # why the GAN is ruled out for the class (None: usable)

    def to_dict(self) -> dict[str, Any]:
        return {"pool": self.pool, "recognized": self.recognized, "realistic": self.realistic, "diversity_ratio": self.diversity_ratio, "usable": self.reason is None, "reason": self.reason}


@dataclass
class MixDecision:
    mix: dict[str, float]  # the chosen shares (sources with a share > 0)
    candidates: list[CandidateScore]
    folds: int
    steps: int
    validated_classes: list[str]
    gan: dict[str, GanCheck] = field(default_factory=dict)  # class name -> check (classes the GAN was asked for)
    unavailable: dict[int, dict[str, str]] = field(default_factory=dict)  # class index -> source -> reason
    why: list[str] = field(default_factory=list)  # the decision in words
    notes: list[str] = field(default_factory=list)
    validation: Optional[str] = None  # plan.auto.validation's name when the candidates were scored on it (None: cross-validation)

    @property
    def winner(self) -> Optional[CandidateScore]:
        """The chosen candidate (:func:`one_se_choice`), which need not have the best mean."""
        return one_se_choice(self.candidates) if self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mix": dict(self.mix), "winner": None if self.winner is None else self.winner.name,
            "candidates": [c.to_dict() for c in self.candidates],
            "proxy": {"model": "evaluation CNN", "steps": self.steps, "sampling": "uniform", "metric": "macro-F1", "folds": self.folds,
                      "scored_on": "cross-validation" if self.validation is None else self.validation},
            "validated_classes": list(self.validated_classes), "gan_checks": {k: v.to_dict() for k, v in self.gan.items()},
            "why": list(self.why), "notes": list(self.notes),
        }


def stratified_folds(labels: np.ndarray, num_classes: int, folds: int, rng: np.random.Generator, images: Optional[np.ndarray] = None) -> np.ndarray:
    """Fold number of every image (-1: never validated; classes below :data:`MIN_VALIDATED`). With
    ``images``, identical images (duplicates in the data) share the fold of the first of them, so no
    fold validates on an image its training part holds."""
    out = np.full(len(labels), -1, np.int64)
    offset = 0
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < MIN_VALIDATED:
            continue
        order = rng.permutation(members)
        out[order] = (np.arange(len(order)) + offset) % folds  # rotate, so small classes do not all start in fold 0
        offset += len(order)
    return out if images is None else out[twin_groups(images)]


def held_out_split(labels: np.ndarray, num_classes: int, fraction: float, rng: np.random.Generator, images: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray]:
    """``plan.auto.split``: (rows the GAN trains on, rows held out to score on), both sorted. Of each
    class with at least :data:`MIN_VALIDATED` images, ``round(fraction * n)`` images are held out (at
    least 1, at most n - 2, so the GAN and SMOTE keep two); smaller classes are never held out. With
    ``images``, a held-out image identical to one the GAN trains on goes back to the GAN's rows."""
    held = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        n = len(members)
        if n < MIN_VALIDATED:
            continue
        k = min(max(1, int(round(fraction * n))), n - 2)
        held.append(rng.choice(members, size=k, replace=False))
    val = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    if images is not None and len(val):
        groups = twin_groups(images)
        kept = np.isin(groups, groups[np.setdiff1d(np.arange(len(labels)), val)])  # rows with a twin among the GAN's rows
        val = val[~kept[val]]
    return np.setdiff1d(np.arange(len(labels)), val), val


def _diversity(features: torch.Tensor) -> float:
    from augmentgan.evaluate.metrics import diversity

    return diversity(features.double().cpu())


def check_gan_pool(pool: LabeledImages, train: LabeledImages, wanted: Mapping[int, int], failed: Mapping[int, str], classifier: Any) -> dict[int, GanCheck]:
    """The per-class GAN checks of the module docstring (step 2), for the classes in ``wanted``."""
    from augmentgan.evaluate.metrics import COLLAPSE_RATIO, precision_recall

    checks: dict[int, GanCheck] = {}
    counts = train.class_counts()
    for c in sorted(wanted):
        rows = pool.images[pool.labels == c]
        check = GanCheck(pool=len(rows))
        checks[c] = check
        if c in failed:
            check.reason = f"the generation filters could not fill the pool ({failed[c]})"
            continue
        if len(rows) == 0:
            check.reason = "no GAN samples"
            continue
        predicted = classifier.predict(rows).cpu().numpy()
        check.recognized = float(np.mean(predicted == c))
        most = int(np.bincount(predicted, minlength=train.num_classes).argmax())
        if counts[c] < 2:
            check.reason = "the class has 1 real image: its GAN samples cannot be checked for collapse"
            continue
        real_f, synth_f = classifier.features(train.images[train.labels == c]).double().cpu(), classifier.features(rows).double().cpu()
        check.realistic = precision_recall(real_f, synth_f)[0]
        if len(rows) >= 2:
            real_div = _diversity(real_f)
            check.diversity_ratio = _diversity(synth_f) / real_div if real_div > 0 else math.nan
        if check.recognized < MIN_RECOGNIZED and most != c:
            check.reason = (f"off-class: the classifier trained on the real images takes most of its GAN samples for {train.class_names[most]!r} "
                            f"and {check.recognized:.0%} for the class (needs {MIN_RECOGNIZED:.0%})")
        elif math.isfinite(check.realistic) and check.realistic < MIN_REALISTIC:
            check.reason = f"unrealistic: {check.realistic:.0%} of its GAN samples lie near the real images of the class (improved precision; needs {MIN_REALISTIC:.0%})"
        elif check.diversity_ratio is not None and math.isfinite(check.diversity_ratio) and check.diversity_ratio < COLLAPSE_RATIO:
            check.reason = f"collapsed: its GAN samples have {check.diversity_ratio:.2f} of the real images' diversity (flagged below {COLLAPSE_RATIO})"
    return checks


def _nearest_real(pool: LabeledImages, train: LabeledImages, classifier: Any) -> np.ndarray:
    """For each pool sample, the index (into ``train``) of its nearest real image of its class."""
    out = np.full(len(pool), -1, np.int64)
    for c in np.unique(pool.labels):
        rows = np.flatnonzero(pool.labels == c)
        members = np.flatnonzero(train.labels == c)
        if len(members) == 0:
            continue
        d = torch.cdist(classifier.features(pool.images[rows]).double(), classifier.features(train.images[members]).double())
        out[rows] = members[d.argmin(dim=1).cpu().numpy()]
    return out


def _gan_source(pool: LabeledImages, allowed: np.ndarray) -> Callable[[Mapping[int, int]], LabeledImages]:
    """GAN samples for a fold: the allowed pool rows of each class in order, cycled if too few."""

    def take(counts: Mapping[int, int]) -> LabeledImages:
        parts = []
        for c, n in sorted(counts.items()):
            rows = np.flatnonzero((pool.labels == c) & allowed)
            if len(rows) == 0:  # the fold's plan reroutes such classes (choose_mix marks them unavailable)
                raise ValueError(f"class {c}: every GAN sample lies nearest to a validation image of this fold, and none may be used")
            parts.append(rows[np.arange(n) % len(rows)])
        return pool[np.concatenate(parts)] if parts else pool[np.zeros(0, np.int64)]

    return take


def _withheld(pool: LabeledImages, allowed: np.ndarray, wanted: Mapping[int, int], unavailable: Mapping[int, Mapping[str, str]]) -> dict[int, dict[str, str]]:
    """``unavailable`` plus, for a fold, the GAN for each wanted class whose samples all lie nearest to the
    fold's validation images (withheld, so the fold's plan gives the class's share to the other sources)."""
    out = {c: dict(v) for c, v in unavailable.items()}
    for c in wanted:
        in_class = pool.labels == c
        if np.any(in_class) and not np.any(in_class & allowed):
            out.setdefault(c, {}).setdefault("gan", "every GAN sample of the class lies nearest to one of this fold's validation images (withheld)")
    return out


def _score(expanded: LabeledImages, val: LabeledImages, *, steps: int, seed: int, device: Any) -> float:
    from augmentgan.domain.classifier import train_classifier

    model = train_classifier(expanded, seed=seed, steps=steps, sampling="uniform", use_cache=False, device=device)
    predicted = model.predict(val.images).cpu().numpy()
    present = np.unique(val.labels)
    return float(f1_score(val.labels, predicted, labels=present, average="macro", zero_division=0))


def choose_mix(
    train: LabeledImages,
    cfg: AutoMixConfig,
    build: BuildFn,
    *,
    seed: int,
    gan_pool: Optional[LabeledImages] = None,
    gan_failed: Mapping[int, str] = {},
    gan_wanted: Mapping[int, int] = {},
    classifier: Any = None,
    gan_fold_pool: Optional[FoldPoolFactory] = None,
    unavailable_sources: Sequence[str] = (),
    latent: Optional[LatentFactory] = None,
    latent_classes: Sequence[int] = (),
    validation: Optional[LabeledImages] = None,
    validation_name: str = "plan.auto.validation",
    device: Any = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> MixDecision:
    """Choose the mix for expanding ``train`` (real images) as the module docstring says.

    ``build(part, mix, unavailable, gan, seed)`` expands a fold's training part with a mix (the
    pipeline's stages). ``gan_pool``: samples of the GAN trained on ``train`` (None: no GAN), with
    ``gan_failed`` (class -> why the filters could not fill it) and ``gan_wanted`` (class -> pool
    size asked); ``classifier``: the domain classifier of ``train`` (needed with a pool).
    ``gan_fold_pool``: with generation filters that judge against the real images, given the rows of
    ``train`` in a fold's part, the pool drawn from the same GAN with the filters fitted on that
    part and the classes it could not fill; a fold then learns from that pool instead of ``gan_pool``
    (cross-validation only; see the module docstring, step 3).
    ``unavailable_sources``: sources the run cannot use at all (with the reason in a note).
    ``latent``: for latent-smote, the codes of the training images found once (with the GAN trained
    on all of them) turned into a fold's source: given the rows of ``train`` in the fold's part, a
    function (rows of the part kept, counts, seed) -> samples whose parents are all in the part;
    ``latent_classes``: the classes whose images were encoded (latent-smote is ruled out elsewhere).
    ``validation``: real images outside ``train`` with its class names (``plan.auto.validation``, read and
    checked by the caller; ``validation_name`` names it): every candidate expands all of ``train`` and
    ``cfg.folds`` proxy classifiers (seeds) are scored on them instead of cross-validation folds (see
    the module docstring, "With a validation set").
    """
    if validation is not None and validation.class_names != train.class_names:
        raise ValueError(f"choose_mix: the validation set's classes {list(validation.class_names)} are not the training data's {list(train.class_names)}")
    notes: list[str] = []
    sources = [s for s in PREFERENCE if s in cfg.sources and s not in unavailable_sources]
    for s in cfg.sources:
        if s in unavailable_sources:
            notes.append(f"{s} is not available in this run and was not considered")
        elif s not in PREFERENCE:
            notes.append(f"{s} is not scored by auto (yet) and was not considered; pin it with a fixed plan.mix")
    if "gan" in sources and gan_pool is None:
        sources.remove("gan")
    if "latent-smote" in sources and latent is None:
        sources.remove("latent-smote")
        notes.append("latent-smote was not scored: no class can grow with it (it needs two classes with images and a class with 2 or more to interpolate)")
    if not sources:
        raise ConfigError(f"plan.mix auto: none of plan.auto.sources {list(cfg.sources)} can be used in this run; add copy or classical to plan.auto.sources")
    counts = train.class_counts()
    unavailable: dict[int, dict[str, str]] = {}
    checks: dict[int, GanCheck] = {}
    why: list[str] = []
    if "gan" in sources:
        checks = check_gan_pool(gan_pool, train, gan_wanted, gan_failed, classifier)  # type: ignore[arg-type]
        for c, check in checks.items():
            if check.reason is not None:
                unavailable.setdefault(c, {})["gan"] = check.reason
                why.append(f"gan ruled out for class {train.class_names[c]!r}: {check.reason}")
        for c in range(train.num_classes):  # a fold's part can fall below a fixed target that all images reach
            if c not in checks:
                unavailable.setdefault(c, {})["gan"] = "no GAN samples were drawn for it (no deficit on all training images)"
        if checks and all(ch.reason is not None for ch in checks.values()):
            sources.remove("gan")
            why.append("gan: share 0, its samples failed the checks for every class that needs samples")
    if "latent-smote" in sources:
        for c in range(train.num_classes):
            if c not in latent_classes:
                unavailable.setdefault(c, {})["latent-smote"] = "none of its images were encoded (no deficit on all training images)"
    for s in ("smote", "latent-smote"):
        if s in sources and not np.any(counts >= 2):
            sources.remove(s)
    if validation is None:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA070]))
        fold_of = stratified_folds(train.labels, train.num_classes, cfg.folds, rng, images=train.images)
        validated = [train.class_names[c] for c in range(train.num_classes) if np.any(fold_of[train.labels == c] >= 0)]
        small = [train.class_names[c] for c in range(train.num_classes) if 0 < counts[c] < MIN_VALIDATED]
        if small:
            notes.append(f"class(es) {small} have fewer than {MIN_VALIDATED} images: never validated, they get the mix chosen for the others")
    else:
        held = validation.class_counts()
        validated = [train.class_names[c] for c in range(train.num_classes) if held[c] > 0]
        unscored = [train.class_names[c] for c in range(train.num_classes) if held[c] == 0 and counts[c] > 0]
        if unscored:
            notes.append(f"class(es) {unscored} have no images in {validation_name}: not scored, they get the mix chosen for the others")
    decision = MixDecision(
        {}, [], cfg.folds, cfg.steps, validated, {train.class_names[c]: ch for c, ch in checks.items()}, unavailable, why, notes,
        validation=None if validation is None else validation_name,
    )
    if not sources:  # every source given was ruled out here (the GAN by its checks, SMOTE-like ones by classes of one image)
        decision.mix = {"copy": 1.0}
        decision.why.append(f"none of plan.auto.sources {list(cfg.sources)} can serve this data: copy (random oversampling) is used instead; "
                            f"add copy or classical to plan.auto.sources to have them scored")
        return decision
    if len(validated) == 0 or len(sources) == 1:
        fallback = "copy" if not validated and "copy" in sources else sources[0]
        decision.mix = {fallback: 1.0}
        if validated:
            decision.why.append(f"{fallback} is the only usable source")
        else:
            reason = f"no class has {MIN_VALIDATED} or more images to validate on" if validation is None else f"{validation_name} has no images of a class in the training data"
            decision.why.append(f"{reason}: {fallback} is used without scoring")
        return decision

    def fold_seed(f: int) -> int:
        return int(np.random.SeedSequence([seed, 0xF01D, f]).generate_state(1, np.uint32)[0])

    folds = []
    if validation is not None:  # one split: all of train against the validation set, a proxy seed per "fold"
        gan_fn = _gan_source(gan_pool, np.ones(len(gan_pool), bool)) if "gan" in sources else None  # type: ignore[arg-type]
        latent_fn = latent(np.arange(len(train))) if latent is not None and "latent-smote" in sources else None
        folds = [(train, validation, gan_fn, latent_fn, fold_seed(f), unavailable) for f in range(cfg.folds)]
    else:
        nearest = _nearest_real(gan_pool, train, classifier) if "gan" in sources and gan_fold_pool is None else None  # type: ignore[arg-type]
        for f in range(cfg.folds):
            val_idx = np.flatnonzero(fold_of == f)
            part_idx = np.flatnonzero(fold_of != f)
            part = LabeledImages(train.images[part_idx], train.labels[part_idx], train.class_names)
            gan_fn, fold_unavailable = None, unavailable
            if "gan" in sources and gan_fold_pool is not None:
                report(callback, "auto mix: filtered GAN pool per fold", f, cfg.folds)
                fold_pool, fold_failed = gan_fold_pool(part_idx)
                allowed = ~np.isin(_nearest_real(fold_pool, train, classifier), val_idx)
                gan_fn = _gan_source(fold_pool, allowed)
                fold_unavailable = {c: dict(v) for c, v in unavailable.items()}
                for c in gan_wanted:
                    if c in fold_failed or not np.any(fold_pool.labels == c):
                        fold_unavailable.setdefault(c, {}).setdefault("gan", f"the generation filters fitted on this fold could not fill its pool ({fold_failed.get(c, 'no samples')})")
                fold_unavailable = _withheld(fold_pool, allowed, gan_wanted, fold_unavailable)
            elif nearest is not None:
                allowed = ~np.isin(nearest, val_idx)
                gan_fn = _gan_source(gan_pool, allowed)  # type: ignore[arg-type]
                fold_unavailable = _withheld(gan_pool, allowed, gan_wanted, unavailable)  # type: ignore[arg-type]
            latent_fn = latent(part_idx) if latent is not None and "latent-smote" in sources else None
            folds.append((part, train[val_idx], gan_fn, latent_fn, fold_seed(f), fold_unavailable))

    total = len(sources) * cfg.folds + (max(len(sources) - 1, 0) * cfg.folds if cfg.blends else 0)
    done = 0

    def run(name: str, mix: dict[str, float]) -> CandidateScore:
        nonlocal done
        scores = []
        for part, val, gan_fn, latent_fn, fold_seed, fold_unavailable in folds:
            report(callback, "auto mix", done, total, name=name)
            kw = {"latent_fn": latent_fn} if latent_fn is not None else {}
            expanded = build(part, mix, fold_unavailable, gan_fn, fold_seed, **kw)
            scores.append(_score(expanded, val, steps=cfg.steps, seed=fold_seed, device=device))
            done += 1
        return CandidateScore(name, mix, scores)

    singles = [run(s, {s: 1.0}) for s in sources]
    decision.candidates.extend(singles)
    if cfg.blends and len(singles) > 1:
        best = max(singles, key=lambda c: c.mean)  # max keeps the first of equals: the simpler source
        b = best.name
        for other in sources:
            if other != b:
                decision.candidates.append(run(f"{b}+{other}", {b: 0.5, other: 0.5}))
    report(callback, "auto mix", total, total)
    best = max(decision.candidates, key=lambda c: c.mean)  # the first of equals: the simpler one
    winner = one_se_choice(decision.candidates)
    over = f"{cfg.folds} folds" if validation is None else f"{cfg.folds} proxy seeds on {validation_name} ({len(validation)} images)"
    decision.mix = {s: v for s, v in winner.mix.items() if v > 0}
    if winner is best:
        runner_up = max((c for c in decision.candidates if c is not winner), key=lambda c: c.mean, default=None)
        decision.why.append(
            f"{winner.name} scored the best mean macro-F1 over {over}: {winner.mean:.3f} ± {winner.std:.3f}"
            + (f" (next: {runner_up.name} {runner_up.mean:.3f} ± {runner_up.std:.3f})" if runner_up is not None else "")
        )
    else:
        decision.why.append(
            f"{winner.name} ({winner.mean:.3f} ± {winner.std:.3f}) is within one standard error ({best.stderr:.3f}) of the best mean macro-F1 "
            f"over {over}, {best.name}'s {best.mean:.3f} ± {best.std:.3f}, and simpler: the one-standard-error rule chose it"
        )
    if "gan" in sources and "gan" not in decision.mix:
        with_gan = [c for c in decision.candidates if c.mix.get("gan", 0) > 0]
        best_gan = max(with_gan, key=lambda c: c.mean)
        beaten = "scored below" if best_gan.mean < winner.mean else "scored higher but within one standard error of the simpler"
        decision.why.append(f"gan: share 0, the best candidate with it ({best_gan.name}, {best_gan.mean:.3f} ± {best_gan.std:.3f}) {beaten} {winner.name}")
    return decision

