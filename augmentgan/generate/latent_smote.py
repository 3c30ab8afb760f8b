"""``latent-smote``: SMOTE between the GAN latent codes of two real images of a class, decoded by G.

Pixel SMOTE blends two images into a ghost; interpolating in a learned representation instead
(DeVries & Taylor 2017, "Dataset augmentation in feature space") keeps samples on the class's
manifold, and a GAN is the decoder that turns a code back into an image. Steps:

1. the real training images SMOTE needs are encoded (:mod:`augmentgan.generate.encode`: the
   encoder the run trained jointly (BiGAN, ``bigan.weight`` > 0) or one fitted to the generator, as
   ``EncodeSettings.encoder`` / the recipe's ``latent_smote.encoder`` says, then per-image latent
   optimisation): with plain SMOTE those of the classes that grow (it interpolates within a class),
   with the variants every image;
2. images whose reconstruction error is above the ``quantile`` of their class's errors are not
   used as parents, since G cannot draw them (per class, so that a class G draws badly overall is
   not left without parents); a class left with fewer than two parents keeps its two
   best-reconstructed images (noted). The default depends on the anchor (step 5): 0.9 (the
   worst-reconstructed tenth of every class left out) when G's decoding is the sample, 1 (every
   image a parent) with ``anchor="residual"``, where the sample keeps its parent's real pixels and a
   poor reconstruction costs little, while leaving a real image out costs a rare class a tenth of
   its variety (mnist-lt: 0.887 -> 0.923 macro-F1 from 0.9 to 1, benchmarks/RESULTS.md);
3. imbalanced-learn's SMOTE (or the recipe's ``smote.method``: borderline-smote, adasyn,
   svm-smote, kmeans-smote) runs on the codes of the parents of every class, float64, with the
   plan's counts as its ``sampling_strategy``; shortfalls of a variant are topped up with plain
   SMOTE, as for pixel SMOTE;
   With ``partners="all"`` (the recipe's ``latent_smote.partners``) the second end of a segment is
   not a neighbour of the same class but the code of a real image of **another** class, drawn
   uniformly from their images, and the sample moves from its parent (drawn uniformly from its
   class's parents) a step drawn from U(0, ``step``) towards it; the decoded class stays the
   parent's. In a class-conditional G the code carries what the classes share (slant, stroke
   width, size) and the label the class, so a small step towards another class's image gives a
   rare class's real image a style only the head classes show it: knowledge shared between classes,
   where SMOTE within a class of 10 images can only mix those 10. The step must stay small (one
   mnist-lt GAN, one draw, 6 classifier seeds, paired against copies: U(0, 0.25) +1.0 points,
   U(0, 0.35) +1.4, U(0, 0.5) +0.6, U(0, 1) -2.0). Judged by ``augmentgan utility`` (3 seeds x 4
   classifiers) it beats partners within the class by 2.0 points on mnist-lt and 1.1 on
   digits-lt-test, and is level with copies on both (benchmarks/RESULTS.md). ``smote.method`` and
   ``k_neighbors`` do not apply here;
4. each new code is decoded by the (EMA) generator with its class, at the data's size;
5. with ``anchor="residual"`` (the recipe's ``latent_smote.anchor``) the decoded change is carried
   onto the real image instead: sample = parent + (G(new code) - G(parent's code)), clipped to the
   pixel range, where ``parent`` is the nearer end of the sample's segment. The sample keeps the
   real image's detail that G cannot draw (its reconstruction error) and takes from G only the
   difference between two of its drawings, the edit that latent interpolation makes; a step of 0
   is the parent itself. This is the residual trick of GAN-inversion editing, and the default:
   on mnist-lt it lifted latent-smote from 0.832 to 0.923 macro-F1 (BiGAN generator) and from
   0.769 to 0.896 (plain); ``"none"`` decodes the code alone.

Provenance: a new code lies on a segment between two parent codes of its class; both ends are
found again (imbalanced-learn keeps no indices) by checking, for the nearest parent codes of the
sample, which other parent of the class the sample lies in line with. ``parent`` is the nearer
end, ``parent2`` the other (indices of the real rows given); a sample on no such segment
(SVM-SMOTE's extrapolation) gets ``parent`` = its nearest parent code and ``parent2`` = -1. With
``partners="all"`` both are known as drawn: ``parent`` the real image of the sample's class,
``parent2`` the other class's image it moved towards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import torch

from augmentgan.augment.smote import MIN_IMAGES, SMOTE_METHODS, resample_exact
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError
from augmentgan.domain.classifier import DomainClassifier, train_classifier
from augmentgan.gan.gan import resolve_device
from augmentgan.gan.checkpoint import GeneratorCheckpoint, GeneratorSource, open_generator
from augmentgan.generate.encode import Codes, EncodeSettings, check_data, decode, encode_images, encoder_kind
from augmentgan.progress import ProgressCallback, report

__all__ = ["ANCHORS", "DEFAULT_QUANTILE", "DEFAULT_STEP", "PARTNERS", "LatentSmoteResult", "anchor_residual", "encode_for_smote", "latent_smote", "parent_quantile", "segment_parents", "smote_codes", "take_codes"]

_CANDIDATES = 8
ANCHORS = ("none", "residual")
PARTNERS = ("class", "all")
DEFAULT_STEP = 0.35  # partners "all": the sample moves U(0, step) of the way towards the other class's code
DEFAULT_QUANTILE = {"none": 0.9, "residual": 1.0}  # step 2's default per anchor
_CHUNK = 1024  # rows per step of anchor_residual (int16 temporaries)


@dataclass
class LatentSmoteResult:
    samples: LabeledImages  # source latent-smote, parent = the nearer parent (a row of the real data given)
    parent2: np.ndarray  # int64 (len(samples),): the other parent, -1 if none was found
    codes: Codes  # one row per real image given; NaN codes and errors for images not encoded (plain SMOTE: classes that do not grow)
    thresholds: dict[str, float]  # class -> reconstruction error above which its real images are not parents
    quantile: float
    excluded: dict[str, int]  # class -> real images not used as parents
    notes: list[str] = field(default_factory=list)


def segment_parents(X: np.ndarray, y: np.ndarray, new: np.ndarray, new_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearer, other) end of a segment between two rows of ``X`` of the sample's class that each
    ``new`` row lies on; (nearest row of the class, -1) for a sample on no such segment."""
    p1 = np.full(len(new), -1, np.int64)
    p2 = np.full(len(new), -1, np.int64)
    for c in np.unique(new_y):
        members = np.flatnonzero(y == c)
        if not len(members):
            continue
        Xc = X[members].astype(np.float64)
        for r in np.flatnonzero(new_y == c):
            s = new[r].astype(np.float64)
            dist = np.linalg.norm(Xc - s, axis=1)
            order = np.argsort(dist, kind="stable")[:_CANDIDATES]
            p1[r] = members[order[0]]
            scale = 1e-6 * (1.0 + np.abs(s).max())
            if dist[order[0]] <= scale:  # the parent itself (a step of 0): no second end to tell
                continue
            for a in order:
                diff = Xc - Xc[a]
                norm2 = np.einsum("ij,ij->i", diff, diff)
                ok = norm2 > 0
                t = np.where(ok, diff @ (s - Xc[a]) / np.where(ok, norm2, 1.0), -1.0)
                resid = np.abs(Xc[a] + t[:, None] * diff - s).max(axis=1)
                valid = ok & (t >= -1e-9) & (t <= 1 + 1e-9) & (resid <= scale)
                if valid.any():
                    p1[r] = members[a]
                    p2[r] = members[int(np.argmin(np.where(valid, resid, np.inf)))]
                    break
    return p1, p2


def anchor_residual(decoded: np.ndarray, parents: np.ndarray, parent_reconstructions: np.ndarray) -> np.ndarray:
    """``parents + (decoded - parent_reconstructions)``, clipped to 0-255, uint8 (step 5 of the module
    docstring); all three are (N, H, W, C) uint8 and row i of each belongs to sample i."""
    if not (decoded.shape == parents.shape == parent_reconstructions.shape):
        raise ValueError(f"anchor_residual: shapes differ: {decoded.shape}, {parents.shape}, {parent_reconstructions.shape}")
    out = np.empty(decoded.shape, np.uint8)
    for i in range(0, len(decoded), _CHUNK):
        part = slice(i, i + _CHUNK)
        moved = parents[part].astype(np.int16) + decoded[part].astype(np.int16) - parent_reconstructions[part].astype(np.int16)
        out[part] = np.clip(moved, 0, 255)
    return out


def _rows_to_encode(real: LabeledImages, counts: Mapping[int, int], method: str, partners: str = "class") -> np.ndarray:
    """Rows of ``real`` whose codes SMOTE needs. Plain SMOTE interpolates within each class: the grown
    classes (plus the smallest other one when a single class grows: imbalanced-learn needs two).
    The variants (borderline, ADASYN, SVM, k-means) look at the other classes too, and so does
    ``partners="all"``: every row."""
    if method != "smote" or partners == "all":
        return np.arange(len(real))
    classes = sorted(counts)
    have = real.class_counts()
    if len(classes) < 2:
        others = [c for c in np.argsort(have, kind="stable") if have[c] > 0 and c not in classes]
        classes += [int(others[0])] if others else []
    return np.flatnonzero(np.isin(real.labels, classes))


def _full(codes: Codes, rows: np.ndarray, n: int) -> Codes:
    """``codes`` of ``rows`` spread over all ``n`` rows (NaN codes and errors, black reconstructions elsewhere)."""
    def spread(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.full((n, *values.shape[1:]), fill, values.dtype)
        out[rows] = values
        return out

    return Codes(
        spread(codes.codes, np.nan), spread(codes.labels, -1), codes.class_names, spread(codes.error, np.nan), spread(codes.error_encoder, np.nan),
        spread(codes.pixel_rmse, np.nan), spread(codes.feature_distance, np.nan), spread(codes.reconstructions, 0), codes.attrs,
    )


def latent_smote(
    run_or_ckpt: GeneratorSource,
    real: LabeledImages,
    counts: Mapping[int, int],
    *,
    seed: int,
    method: str = "smote",
    k_neighbors: int = 5,
    quantile: Optional[float] = None,
    anchor: str = "residual",
    partners: str = "class",
    step: Optional[float] = None,
    checkpoint: str | int = "auto",
    ema: bool = True,
    settings: Optional[EncodeSettings] = None,
    classifier: Optional[DomainClassifier] = None,
    device: str | torch.device = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> LatentSmoteResult:
    """``counts[c]`` new samples of class c (see the module docstring); ``real`` is the GAN's real
    training data (its classes and size must be the checkpoint's). ``parent``/``parent2`` index
    ``real``. Progress: the encoding stages, then ``"latent-smote"``. ``run_or_ckpt`` may be a
    checkpoint read already (:class:`~augmentgan.gan.checkpoint.GeneratorCheckpoint`)."""
    if method not in SMOTE_METHODS:
        raise ConfigError(f"smote.method {method!r}: choose one of {', '.join(SMOTE_METHODS)}")
    quantile = parent_quantile(quantile, anchor)
    partner_step(partners, step)  # checked before any work
    if int(k_neighbors) < 1:
        raise ConfigError(f"smote.k_neighbors {k_neighbors}: must be >= 1")
    names = real.class_names
    counts = {int(c): int(n) for c, n in counts.items() if int(n) > 0}
    have = real.class_counts()
    for c in counts:
        if have[c] < MIN_IMAGES:
            raise DataError(f"class {names[c]!r} has {have[c]} image(s); latent-smote needs at least {MIN_IMAGES} to interpolate, give its share to gan, classical or copy")
    device = resolve_device(device)
    source = open_generator(run_or_ckpt, checkpoint)
    G, info = source.generator(ema=ema, device=device)
    check_data(real, info, where="the real training images")
    settings = settings or EncodeSettings(seed=seed)
    encoder_kind(source, settings)  # latent_smote.encoder joint on a run without one fails before any work
    if not counts:
        return smote_codes(G, info, real, _full(_no_codes(G.z_dim, real), np.zeros(0, np.int64), len(real)), {}, seed=seed, device=device)
    if np.count_nonzero(have) < 2:
        raise DataError(f"latent-smote needs at least two classes with images (imbalanced-learn's SMOTE does), the data has {np.count_nonzero(have)}; use gan, classical or copy instead")
    codes = encode_for_smote(G, info, real, counts, method=method, partners=partners, settings=settings, source=source, classifier=classifier, device=device,
                             callback=callback)
    return smote_codes(G, info, real, codes, counts, seed=seed, method=method, k_neighbors=k_neighbors, quantile=quantile, anchor=anchor, partners=partners,
                       step=step, device=device, callback=callback)


def parent_quantile(quantile: Optional[float], anchor: str) -> float:
    """The parents' error quantile (step 2): ``quantile``, or the anchor's default when None; checks both."""
    if anchor not in ANCHORS:
        raise ConfigError(f"latent_smote.anchor {anchor!r}: choose one of {', '.join(ANCHORS)}")
    q = DEFAULT_QUANTILE[anchor] if quantile is None else float(quantile)
    if not 0 < q <= 1:
        raise ConfigError(f"latent_smote.quantile {quantile}: must be in (0, 1] (1 = every real image may be a parent)")
    return q


def partner_step(partners: str, step: Optional[float]) -> float:
    """The largest step towards the other class's code (``partners="all"``; :data:`DEFAULT_STEP` when
    None); checks both. With ``partners="class"`` imbalanced-learn draws the step in [0, 1) itself."""
    if partners not in PARTNERS:
        raise ConfigError(f"latent_smote.partners {partners!r}: choose one of {', '.join(PARTNERS)}")
    if partners == "class":
        if step is not None:
            raise ConfigError(f"latent_smote.step {step}: applies to partners all only (with partners class imbalanced-learn's SMOTE draws the step); "
                              "remove it or set latent_smote.partners: all")
        return 1.0
    value = DEFAULT_STEP if step is None else float(step)
    if not 0 < value <= 1:
        raise ConfigError(f"latent_smote.step {step}: must be in (0, 1] (the largest fraction of the way towards the other class's code)")
    return value


def _no_codes(z_dim: int, real: LabeledImages) -> Codes:
    empty = np.zeros(0, np.float32)
    return Codes(np.zeros((0, z_dim), np.float32), np.zeros(0, np.int64), real.class_names, empty, empty, empty, empty, np.zeros((0, *real.image_shape), np.uint8))


def encode_for_smote(
    G: torch.nn.Module, info: Any, real: LabeledImages, counts: Mapping[int, int], *, method: str = "smote", partners: str = "class", settings: EncodeSettings,
    source: Optional[GeneratorCheckpoint] = None, classifier: Optional[DomainClassifier] = None, device: torch.device,
    callback: Optional[ProgressCallback] = None,
) -> Codes:
    """The codes SMOTE needs to grow ``counts`` (step 1 of the module docstring), one row per row of
    ``real``: NaN codes and errors where an image was not encoded. ``source``: the checkpoint ``G`` came
    from, whose joint encoder ``settings.encoder`` may ask for."""
    encoder_kind(source, settings)  # before the classifier is trained
    if classifier is None and settings.feature_weight > 0:  # of all the real images, as generation filters train it
        classifier = train_classifier(real, steps=settings.classifier_steps, device=device, callback=callback)
    rows = _rows_to_encode(real, {int(c): int(n) for c, n in counts.items() if int(n) > 0}, method, partners)
    return _full(encode_images(G, info, real[rows], source=source, classifier=classifier, settings=settings, device=device, callback=callback), rows, len(real))


def take_codes(codes: Codes, rows: np.ndarray) -> Codes:
    """The codes of ``rows`` (as :func:`encode_for_smote` returns them for a subset of its images)."""
    return Codes(
        codes.codes[rows], codes.labels[rows], codes.class_names, codes.error[rows], codes.error_encoder[rows], codes.pixel_rmse[rows],
        codes.feature_distance[rows], codes.reconstructions[rows], codes.attrs,
    )


def smote_codes(
    G: torch.nn.Module, info: Any, real: LabeledImages, codes: Codes, counts: Mapping[int, int], *, seed: int, method: str = "smote",
    k_neighbors: int = 5, quantile: Optional[float] = None, anchor: str = "residual", partners: str = "class", step: Optional[float] = None,
    device: torch.device, callback: Optional[ProgressCallback] = None,
) -> LatentSmoteResult:
    """Steps 2-5 of the module docstring on codes already found (one row per row of ``real``, NaN where
    not encoded): parents under their class's error quantile, SMOTE on their codes, decoded by ``G``
    (and anchored to the nearer parent).
    ``plan.mix: auto`` encodes the training images once and calls this for every fold's part.
    ``anchor``: step 5 (``"residual"``) or not (``"none"``); ``quantile`` None: the anchor's default;
    ``partners``/``step``: the second end within the class (SMOTE) or of another class (step 3)."""
    quantile = parent_quantile(quantile, anchor)
    step = partner_step(partners, step)
    names = real.class_names
    counts = {int(c): int(n) for c, n in counts.items() if int(n) > 0}
    if not counts:
        empty = LabeledImages(np.zeros((0, *real.image_shape), np.uint8), np.zeros(0, np.int64), names, np.zeros(0, np.uint8), np.zeros(0, np.int64))
        return LatentSmoteResult(empty, np.zeros(0, np.int64), codes, {}, float(quantile), {})
    rows = np.flatnonzero(~np.isnan(codes.error))
    missing = [names[c] for c in counts if not np.any(real.labels[rows] == c)]
    if missing:
        raise DataError(f"latent-smote: class(es) {missing} have no encoded images to interpolate between; encode them first")
    notes: list[str] = []
    thresholds: dict[str, float] = {}
    excluded: dict[str, int] = {}
    eligible = np.zeros(len(real), bool)
    for c in range(real.num_classes):
        members = np.intersect1d(np.flatnonzero(real.labels == c), rows)
        if not len(members):
            continue
        errors = codes.error[members]
        thresholds[names[c]] = float(np.quantile(errors, quantile)) if quantile < 1 else float(errors.max())
        eligible[members] = errors <= thresholds[names[c]]
        if c in counts and np.count_nonzero(eligible[members]) < MIN_IMAGES:
            eligible[members[np.argsort(errors, kind="stable")[:MIN_IMAGES]]] = True
            notes.append(f"latent-smote: class {names[c]!r} had fewer than {MIN_IMAGES} images under its error threshold; its {MIN_IMAGES} best-reconstructed images are parents")
        excluded[names[c]] = int(len(members) - np.count_nonzero(eligible[members]))
    grown = [names[c] for c in counts]
    if partners == "all":
        others = [names[c] for c in counts if not np.any(eligible & (real.labels != c))]
        if others:
            raise DataError(f"latent-smote with partners all: class(es) {others} have no encoded image of another class to move towards; "
                            "encode the other classes too, or use latent_smote.partners: class")
    notes.append(
        f"latent-smote: {len(rows)} real images encoded (reconstruction error mean {np.nanmean(codes.error):.4f}, median {np.nanmedian(codes.error):.4f}); "
        f"parents: images at or under their class's {quantile:g} error quantile ("
        + ", ".join(f"{n} {thresholds[n]:.4f}" for n in grown) + f"); {sum(excluded[n] for n in grown)} images of the grown classes left out; "
        + ("samples: the nearer parent plus G's change between the codes (anchor residual)" if anchor == "residual" else "samples: G's drawing of the new code (anchor none)")
        + (f"; partners all: each sample moves U(0, {step:g}) of the way from its parent's code towards a real image's of another class "
           f"(smote.method and k_neighbors do not apply)" if partners == "all" else "")
    )
    report(callback, "latent-smote", 0, sum(counts.values()))
    if partners == "all":
        new, new_y, p1, p2 = _towards_other_classes(codes.codes, real.labels, eligible, counts, step, seed)
    else:
        new, new_y, p1, p2 = _smote_within_classes(codes.codes, real, eligible, counts, method, k_neighbors, seed, notes)
    images = decode(G, new.astype(np.float32), new_y, tuple(int(v) for v in info.data_size), info.channels, device, info.fit)
    if anchor == "residual":
        images = anchor_residual(images, real.images[p1], codes.reconstructions[p1])
    report(callback, "latent-smote", len(new), sum(counts.values()))
    samples = LabeledImages(images, new_y, names, np.full(len(new), Source.latent_smote.value, np.uint8), p1)
    return LatentSmoteResult(samples, p2, codes, thresholds, float(quantile), excluded, notes)


def _towards_other_classes(codes: np.ndarray, labels: np.ndarray, eligible: np.ndarray, counts: Mapping[int, int], step: float,
                           seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``partners="all"`` (step 3): per grown class, ``counts[c]`` parents drawn uniformly from its eligible
    rows, each moved U(0, ``step``) of the way towards the code of an eligible row of another class.
    Returns (codes, classes, parent rows, other rows); one random stream, drawn class by class."""
    rng = np.random.default_rng(int(seed))
    new, new_y, p1, p2 = [], [], [], []
    for c, n in sorted(counts.items()):
        own = np.flatnonzero(eligible & (labels == c))
        other = np.flatnonzero(eligible & (labels != c))
        a, b = rng.choice(own, n), rng.choice(other, n)
        t = rng.uniform(0.0, step, n)[:, None]
        za, zb = codes[a].astype(np.float64), codes[b].astype(np.float64)
        new.append(za + t * (zb - za))
        new_y.append(np.full(n, c, np.int64))
        p1.append(a)
        p2.append(b)
    return np.concatenate(new), np.concatenate(new_y), np.concatenate(p1).astype(np.int64), np.concatenate(p2).astype(np.int64)


def _smote_within_classes(codes: np.ndarray, real: LabeledImages, eligible: np.ndarray, counts: Mapping[int, int], method: str, k_neighbors: int,
                          seed: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``partners="class"`` (step 3): imbalanced-learn's SMOTE (or ``method``) on the eligible codes; both
    ends of each sample's segment found again. Returns (codes, classes, nearer-end rows, other-end rows)."""
    names = real.class_names
    index = np.flatnonzero(eligible)
    X, y = codes[index].astype(np.float64), real.labels[index]
    parents_per_class = np.bincount(y, minlength=real.num_classes)
    strategy = {c: int(parents_per_class[c]) + n for c, n in sorted(counts.items())}
    k = int(k_neighbors)
    smallest = min(int(parents_per_class[c]) for c in strategy)
    if smallest - 1 < k:
        notes.append(f"latent-smote: k_neighbors lowered from {k} to {smallest - 1} (a class has {smallest} parent images)")
        k = smallest - 1
    new, new_y, shortfalls = resample_exact(method, X, y, strategy, seed=int(seed), k=k, names=names, what="codes")
    notes += [f"latent-smote: {n}" for n in shortfalls]
    p1, p2 = segment_parents(X, y, new, new_y)
    p1 = np.where(p1 >= 0, index[np.maximum(p1, 0)], -1)
    p2 = np.where(p2 >= 0, index[np.maximum(p2, 0)], -1)
    return new, new_y, p1, p2
