"""SMOTE and its variants (imbalanced-learn 0.14.2) on images, with counts and parents checked.

Images are flattened and cast to float32 (SMOTE on uint8 wraps around: 10..200 inputs give
values of 243-249), resampled, then clipped to [0, 255] and rounded back to uint8.

imbalanced-learn resamples every class jointly and needs at least two classes; the dict
``sampling_strategy`` holds final counts. Rows after ``len(X)`` are the synthetic ones.

Guarantees beyond imbalanced-learn's:

- ``k_neighbors`` is lowered to (smallest grown class - 1) with a warning: each grown class
  needs k + 1 images. A class with fewer than 2 images cannot be grown (DataError; the planner
  moves its share to other sources beforehand).
- Counts are checked after resampling: BorderlineSMOTE, SVMSMOTE and ADASYN can return fewer
  (or, ADASYN, slightly more) samples than asked without a word. A shortfall is topped up with
  plain SMOTE (with a warning), a surplus is cut, so the result is always exact.
- k-means SMOTE, ADASYN and SVM-SMOTE grow one class at a time (k-means SMOTE with the threshold the
  joint call would use): a class the method cannot serve (no k-means cluster suits it, on long-tailed
  data the rarest; ADASYN: no image near another class; SVM-SMOTE: only noise support vectors) gets
  plain SMOTE's samples and a warning saying why, where imbalanced-learn alone fails every class.
- Parents: SMOTE-style samples lie on a segment ``x_i + lambda (x_j - x_i)``, lambda in [0, 1],
  between a real image of the class and one of its neighbours. The parent recorded is the
  endpoint of such a segment closest to the sample (the image it resembles most; the base and
  its neighbour cannot be told apart from the point alone). Endpoints are searched among the 8
  nearest real images of the class; the other end among those, the 8 nearest images of any
  class, the 8 nearest neighbours of the first end in its class and the images of the class that
  have the first end among their 8 nearest (SMOTE's neighbours are not symmetric; with
  ``k_neighbors`` <= 7 its segments are all found); where none of those lies on a segment with the
  sample, every image of the class is tried as the other end of the two nearest (k-means SMOTE
  pairs images of one cluster, not neighbours). A sample on no such segment (SVMSMOTE's
  extrapolation) gets parent -1.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Optional

import numpy as np

from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import AugmentganWarning, ConfigError, DataError

_CANDIDATES = 8


def _smote(strategy: dict[int, int], seed: int, k: int, n_total: int) -> Any:
    from imblearn.over_sampling import SMOTE

    return SMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k)


def _borderline(strategy: dict[int, int], seed: int, k: int, n_total: int) -> Any:
    from imblearn.over_sampling import BorderlineSMOTE

    return BorderlineSMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k, m_neighbors=min(10, n_total - 1), kind="borderline-1")


def _adasyn(strategy: dict[int, int], seed: int, k: int, n_total: int) -> Any:
    from imblearn.over_sampling import ADASYN

    return ADASYN(sampling_strategy=strategy, random_state=seed, n_neighbors=k)


def _svm(strategy: dict[int, int], seed: int, k: int, n_total: int) -> Any:
    from imblearn.over_sampling import SVMSMOTE

    return SVMSMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k, m_neighbors=min(10, n_total - 1))


def _kmeans(strategy: dict[int, int], seed: int, k: int, n_total: int, threshold: Any = "auto") -> Any:
    from imblearn.over_sampling import KMeansSMOTE

    return KMeansSMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k, cluster_balance_threshold=threshold)


SMOTE_METHODS: dict[str, Callable[[dict[int, int], int, int, int], Any]] = {
    "smote": _smote,
    "borderline-smote": _borderline,
    "adasyn": _adasyn,
    "svm-smote": _svm,
    "kmeans-smote": _kmeans,
}
MIN_IMAGES = 2
"""A class needs at least this many real images to be grown by SMOTE (a segment needs two ends)."""


def _empty(data: LabeledImages) -> LabeledImages:
    h, w, c = data.image_shape
    return LabeledImages(np.zeros((0, h, w, c), np.uint8), np.zeros(0, np.int64), data.class_names, np.zeros(0, np.uint8), np.zeros(0, np.int64))


def _resample(method: str, X: np.ndarray, y: np.ndarray, strategy: dict[int, int], seed: int, k: int,
              names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """New rows and their classes, and why a class got none (class -> reason; k-means SMOTE, ADASYN, SVM-SMOTE)."""
    if method in ("kmeans-smote", "adasyn", "svm-smote"):
        return _by_class(method, X, y, strategy, seed, k, names)
    sampler = SMOTE_METHODS[method](strategy, seed, k, len(X))
    try:
        X_res, y_res = _quiet_fit(sampler, X, y)
    except (ValueError, RuntimeError) as err:
        raise _cannot_grow(method, strategy, err, names) from None
    return np.asarray(X_res[len(X):], np.float32), np.asarray(y_res[len(X):], np.int64), {}


def _quiet_fit(sampler: Any, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn/imblearn chatter (KMeans n_init, convergence)
        return sampler.fit_resample(X, y)


def _cannot_grow(method: str, classes: Any, err: Exception, names: tuple[str, ...]) -> DataError:
    grown = ", ".join(repr(names[c]) for c in classes)
    reason = " ".join(str(err).split())[:200]
    return DataError(f"{method} could not grow class(es) {grown} ({reason}); use smote.method=smote or give SMOTE's share to other sources")


def _by_class(method: str, X: np.ndarray, y: np.ndarray, strategy: dict[int, int], seed: int, k: int,
              names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    """k-means SMOTE, ADASYN or SVM-SMOTE one class at a time, so that a class the method cannot serve
    gets no samples (and a reason, and plain SMOTE's from :func:`resample_exact`) instead of failing
    every class. imbalanced-learn grows the classes in one call and raises for all of them when one
    class has no k-means cluster holding k + 1 of its images at the balance threshold (on long-tailed
    data, the rarest: mnist-lt's classes 7-9 of 10), no image with a neighbour of another class (ADASYN:
    a class set apart from the others), or only support vectors whose neighbours are all of other
    classes (SVM-SMOTE: a class of a few images inside another's). All three treat the classes
    independently, so one call per class changes only the random stream: k-means SMOTE gets the
    threshold the joint call would use ("auto": the class's share of all new samples / 2) and the same
    seeded clustering of the same images."""
    if method == "kmeans-smote":
        # float64: imbalanced-learn weighs clusters by mean distance ** (up to ~50), which overflows
        # float32 for a few hundred images of 32x32 pixels and turns every weight into NaN
        X = np.asarray(X, np.float64)
    have = np.bincount(y, minlength=len(names))
    grow = {c: int(t) - int(have[c]) for c, t in strategy.items() if int(t) > int(have[c])}
    total = sum(grow.values())
    parts_x, parts_y, reasons = [np.zeros((0, X.shape[1]), np.float32)], [np.zeros(0, np.int64)], {}
    for c, n in grow.items():
        if method == "kmeans-smote":
            threshold = n / total / 2
            sampler = _kmeans({c: int(strategy[c])}, seed, k, len(X), threshold)
        else:
            sampler = SMOTE_METHODS[method]({c: int(strategy[c])}, seed, k, len(X))
        try:
            X_res, y_res = _quiet_fit(sampler, X, y)
        except (RuntimeError, ValueError) as err:
            text = str(err)
            if "No clusters found" in text:
                reasons[c] = (f"none of the {sampler.kmeans_estimator_.n_clusters} k-means clusters holds {k + 1} or more of its images "
                              f"making up {threshold:.1%} or more of the cluster")
            elif "Not any neigbours belong to the majority" in text:  # sic, imbalanced-learn's spelling
                reasons[c] = f"none of its images has an image of another class among its {k} nearest, and ADASYN weighs by those"
            elif "No samples will be generated" in text:
                reasons[c] = "ADASYN's rounded weights asked for no samples"
            elif "All support vectors are considered as noise" in text:
                reasons[c] = "every support vector of the SVM for it has only other classes' images among its nearest, so SVM-SMOTE calls them noise"
            else:
                raise _cannot_grow(method, [c], err, names) from None
            continue
        parts_x.append(np.asarray(X_res[len(X):], np.float32))
        parts_y.append(np.asarray(y_res[len(X):], np.int64))
    return np.concatenate(parts_x), np.concatenate(parts_y), reasons


def _shortfall_why(method: str, m: int) -> Optional[str]:
    """Why a variant that ran made fewer samples than asked (imbalanced-learn 0.14's rules; m: m_neighbors)."""
    return {
        "borderline-smote": f"it interpolates only from images in danger (more than half, not all, of their {m} nearest of other classes), "
                            f"and none of this class's is",
        "svm-smote": f"it makes a Beta(10, 10) share of them at the class's support vectors in danger (more than half, not all, of their {m} "
                     f"nearest of other classes) and the rest at the safe ones, so only one share when all are of one kind",
        "adasyn": "it rounds each image's share of them, weighted by its other-class neighbours, to a whole number",
    }.get(method)


def resample_exact(
    method: str, X: np.ndarray, y: np.ndarray, strategy: Mapping[int, int], *, seed: int, k: int, names: tuple[str, ...], what: str = "samples"
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """New rows only (X's dtype), exactly ``strategy[c] - count(c)`` of each class, in ``strategy``
    order, and notes. A variant's shortfall is topped up with plain SMOTE (said in a note), a
    surplus is cut; a shortfall of plain SMOTE is a DataError."""
    have = np.bincount(y, minlength=len(names))
    new, new_y, reasons = _resample(method, X, y, dict(strategy), seed, k, names)
    parts_x, parts_y, notes = [], [], []
    for c, target in strategy.items():
        want = target - int(have[c])
        got_x = new[new_y == c][:want]
        if len(got_x) < want:
            missing = want - len(got_x)
            if method != "smote":
                reason = reasons.get(c) or _shortfall_why(method, min(10, len(X) - 1))
                why = f" ({reason})" if reason else ""
                notes.append(f"{method} made {len(got_x)} of {want} {what} for class {names[c]!r}{why}; the other {missing} come from plain SMOTE")
                more, more_y, _ = _resample("smote", X, y, {c: int(have[c]) + missing}, seed, min(k, int(have[c]) - 1), names)
                got_x = np.concatenate([got_x, more[more_y == c][:missing]])
            if len(got_x) < want:
                raise DataError(f"SMOTE made {len(got_x)} of {want} {what} for class {names[c]!r}; use smote.method=smote or another source")
        parts_x.append(got_x)
        parts_y.append(np.full(want, c, np.int64))
    return np.concatenate(parts_x), np.concatenate(parts_y), notes


def _parents(X: np.ndarray, y: np.ndarray, new: np.ndarray, new_y: np.ndarray) -> np.ndarray:
    """Index in X of the nearest endpoint of a segment of reals the new sample lies on, else -1."""
    from sklearn.neighbors import NearestNeighbors

    parents = np.full(len(new), -1, np.int64)
    if not len(new):
        return parents
    all_nn = NearestNeighbors(n_neighbors=min(_CANDIDATES, len(X))).fit(X)
    _, all_idx = all_nn.kneighbors(new)
    for c in np.unique(new_y):
        members = np.flatnonzero(y == c)
        rows = np.flatnonzero(new_y == c)
        nn = NearestNeighbors(n_neighbors=min(_CANDIDATES, len(members))).fit(X[members])
        dist, idx = nn.kneighbors(new[rows])
        member_nn = members[nn.kneighbors(X[members], return_distance=False)]  # each real's own SMOTE neighbours
        position = {int(m): i for i, m in enumerate(members)}
        reverse: dict[int, list[int]] = {int(m): [] for m in members}  # reals that have m among their neighbours
        for m, row in zip(members, member_nn):
            for n in row:
                reverse[int(n)].append(int(m))
        for r, d_row, i_row in zip(rows, dist, idx):
            s = new[r].astype(np.float64)
            own = members[i_row]
            scale = 1e-3 * (1.0 + np.abs(s).max())
            if d_row[0] <= scale:  # a copy of a real image (lambda 0)
                parents[r] = own[0]
                continue
            near = np.concatenate([own, all_idx[r]])
            for a in own:  # nearest first: the first a on a segment is the closest endpoint of the class
                if _on_segment(X, a, np.unique(np.concatenate([near, member_nn[position[int(a)]], reverse[int(a)]]).astype(np.int64)), s, scale):
                    parents[r] = a
                    break
            else:  # k-means SMOTE pairs an image with any image of its cluster, beyond the neighbour sets: the whole class
                parents[r] = next((a for a in own[:2] if _on_segment(X, a, members, s, scale)), -1)
    return parents


def _on_segment(X: np.ndarray, a: int, others: np.ndarray, s: np.ndarray, scale: float) -> bool:
    """Whether ``s`` lies (within ``scale``) on a segment from ``X[a]`` to one of ``X[others]``."""
    xa = X[a].astype(np.float64)
    diff = X[others].astype(np.float64) - xa
    norm2 = np.einsum("ij,ij->i", diff, diff)
    ok = norm2 > 0
    t = np.where(ok, diff @ (s - xa) / np.where(ok, norm2, 1.0), -1.0)
    resid = np.abs(xa + t[:, None] * diff - s).max(axis=1)
    return bool(np.any(ok & (t >= -1e-6) & (t <= 1 + 1e-6) & (resid <= scale)))


def smote_class_counts(
    data: LabeledImages, targets: Mapping[int, int], method: str = "smote", *, seed: int, k_neighbors: int = 5
) -> LabeledImages:
    """New samples (only) that bring each class in ``targets`` to its final count.

    ``targets`` maps class index -> final count (>= the current count; equal means nothing to
    add). ``method``: a key of :data:`SMOTE_METHODS`. Returns ``source`` smote and ``parent`` as
    described in the module docstring; the order is by class, then as imbalanced-learn made them.
    """
    if method not in SMOTE_METHODS:
        raise ConfigError(f"smote.method {method!r}: choose one of {', '.join(SMOTE_METHODS)}")
    if int(k_neighbors) < 1:
        raise ConfigError(f"smote.k_neighbors {k_neighbors}: must be >= 1")
    counts = data.class_counts()
    names = data.class_names
    strategy: dict[int, int] = {}
    for c, target in sorted((int(c), int(t)) for c, t in targets.items()):
        if not 0 <= c < data.num_classes:
            raise ConfigError(f"SMOTE target for class index {c}: the data has classes 0..{data.num_classes - 1}")
        if target < counts[c]:
            raise ConfigError(f"SMOTE target {target} for class {names[c]!r} is below its {counts[c]} images; SMOTE only adds samples")
        if target > counts[c]:
            if counts[c] < MIN_IMAGES:
                raise DataError(f"class {names[c]!r} has {counts[c]} image(s); SMOTE needs at least {MIN_IMAGES} to interpolate, give its share to gan, classical or copy")
            strategy[c] = target
    if not strategy:
        return _empty(data)
    if np.count_nonzero(counts) < 2:
        raise DataError(f"SMOTE needs at least two classes with images, the data has {np.count_nonzero(counts)}; use classical or copy instead")
    smallest = min(int(counts[c]) for c in strategy)
    k = int(k_neighbors)
    if smallest - 1 < k:
        small = [names[c] for c in strategy if counts[c] == smallest]
        warnings.warn(f"SMOTE k_neighbors lowered from {k} to {smallest - 1}: class {small[0]!r} has only {smallest} images", AugmentganWarning, stacklevel=2)
        k = smallest - 1
    present = counts > 0
    keep = present[data.labels]
    X = data.images.reshape(len(data), -1).astype(np.float32)[keep]
    y = data.labels[keep]
    index = np.flatnonzero(keep)
    new, new_y, shortfalls = resample_exact(method, X, y, strategy, seed=seed, k=k, names=names)
    for note in shortfalls:
        warnings.warn(note, AugmentganWarning, stacklevel=2)
    parents = _parents(X, y, new, new_y)
    parents = np.where(parents >= 0, index[np.maximum(parents, 0)], -1)
    images = np.rint(np.clip(new, 0, 255)).astype(np.uint8).reshape((len(new), *data.image_shape))
    return LabeledImages(images, new_y, names, np.full(len(new), Source.smote.value, np.uint8), parents)
