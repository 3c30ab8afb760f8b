"""``--truncation auto``: per class, the threshold that best trades fidelity against diversity.

For each class ``c`` and each threshold ``T`` of :data:`GRID` the first :data:`SAMPLES`
candidates of ``c`` at ``T`` are generated and scored with the domain classifier::

    score(T) = fidelity x diversity
    fidelity  = mean classifier probability of class c over the samples
    diversity = min(1, mean pairwise feature distance of the samples
                       / mean pairwise feature distance of the real images of class c)

The highest score wins (the lower threshold on a tie). Fidelity favours low thresholds (typical,
recognisable samples); diversity favours high ones, but only up to the spread of the real class:
a generator that spreads wider than the real data is not rewarded for it. A class with a single
real image is compared with the mean spread of the other classes. The chosen thresholds and
every score are recorded in the output's metadata and the report.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from augmentgan.domain.features import distances
from augmentgan.generate.filters import CHUNK, Chunk, FilterContext
from augmentgan.progress import ProgressCallback, report

GRID: tuple[Optional[float], ...] = (0.5, 0.75, 1.0, 1.5, 2.0, None)
SAMPLES = 256
_SPREAD_LIMIT = 1024


def spread(features: Tensor) -> float:
    """Mean pairwise distance of the features (at most 1,024 of them, evenly spaced); NaN for fewer than 2."""
    n = len(features)
    if n < 2:
        return float("nan")
    if n > _SPREAD_LIMIT:
        features = features[np.linspace(0, n - 1, _SPREAD_LIMIT).round().astype(np.int64)]
        n = _SPREAD_LIMIT
    return float(distances(features, features).sum()) / (n * (n - 1))


def score(proba: np.ndarray, features: Tensor, real_spread: float) -> float:
    """Fidelity (mean probability of the class) x diversity (spread relative to the real class, capped at 1)."""
    diversity = 1.0 if not real_spread > 0 else min(1.0, spread(features) / real_spread)
    return float(np.mean(proba)) * diversity


def label(threshold: Optional[float]) -> str:
    return "none" if threshold is None else f"{threshold:g}"


class Candidates(Protocol):
    """What threshold choice needs of a sampler (:class:`augmentgan.generate.sampler.Sampler` is one):
    the real features of each class and candidates rendered at a given threshold."""

    context: FilterContext
    callback: Optional[ProgressCallback]

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def render(self, cls: int, start: int, threshold: Optional[float]) -> Chunk: ...


def choose_thresholds(
    sampler: Candidates, classes: Sequence[int], grid: Sequence[Optional[float]] = GRID, samples: int = SAMPLES
) -> tuple[dict[int, Optional[float]], dict[int, dict[str, float]]]:
    """``({class: threshold}, {class: {threshold label: score}})`` for ``classes`` (``samples`` >= 1)."""
    ctx = sampler.context
    spreads = {c: spread(ctx.real_features(c)) for c in range(len(sampler.class_names))}
    known = [s for s in spreads.values() if np.isfinite(s)]
    fallback = float(np.mean(known)) if known else float("nan")
    chosen: dict[int, Optional[float]] = {}
    scores: dict[int, dict[str, float]] = {}
    report(sampler.callback, "truncation", 0, len(classes))
    for done, c in enumerate(classes, 1):
        real_spread = spreads[c] if np.isfinite(spreads[c]) else fallback
        per_t: dict[str, float] = {}
        best: tuple[float, Optional[float]] = (-1.0, None)
        for t in grid:
            chunks = [sampler.render(c, start, t) for start in range(0, samples, CHUNK)]
            proba = np.concatenate([ch.proba() for ch in chunks])[:samples]
            feats = torch.cat([ch.features() for ch in chunks])[:samples]
            per_t[label(t)] = s = score(proba, feats, real_spread)
            if s > best[0]:
                best = (s, t)
        chosen[c], scores[c] = best[1], per_t
        report(sampler.callback, "truncation", done, len(classes), cls=sampler.class_names[c])
    return chosen, scores
