"""Sample-quality metrics of a synthetic set against real data, in a feature space.

Everything here works on features (rows of an ``(N, D)`` array); :mod:`augmentgan.domain.features`
turns images into features (the domain classifier, or Inception-v3 when its weights are local).

- **FID** (Heusel et al. 2017): ``||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^(1/2))``; the trace
  of the square root is computed as ``Tr (S_r^(1/2) S_s S_r^(1/2))^(1/2)`` from symmetric
  eigendecompositions (``torch.linalg.eigh``, float64): the same value as ``scipy.linalg.sqrtm`` of
  the product (a test checks it), exact for PSD matrices, and much faster than scipy 1.17's ``sqrtm``. Both covariances get ``FID_EPS * I`` added before the square
  root: small sets (fewer samples than feature dimensions, e.g. a rare class) have singular
  covariances whose product's square root is numerically unstable; the same ridge on both sides
  keeps FID exactly 0 for identical sets and changes it by far less than its sampling noise.
- **KID** (Binkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  ``k(x, y) = (x.y / D + 1)^3``, averaged over ``KID_SUBSETS`` random subsets of
  ``min(KID_SUBSET_SIZE, n_real, n_synth)`` rows of each set (mean and std over subsets).
- **Precision / recall** (Kynkaanniemi et al. 2019) and **density / coverage** (Naeem et al. 2020):
  k-nearest-neighbour balls (``k`` = 5, clamped to n - 1 for tiny sets) around every real
  (and, for recall, synthetic) feature; a point is inside a ball when its distance is strictly
  smaller than the radius.
- **Diversity**: the mean pairwise distance within a set; a class whose synthetic diversity is
  below ``COLLAPSE_RATIO`` (0.5) of its real diversity is flagged as mode-collapsed.
- **Memorization rate**: the share of synthetic samples whose nearest real neighbour (same class)
  is closer than the ``q``-quantile (default 0.01) of the real images' leave-one-out nearest-neighbour
  distances, the rule of the ``memorization`` generation filter (whose code computes the
  threshold). A generator that draws new samples from the real distribution scores about ``q``;
  exact copies score 1.

Distances are Euclidean, computed in float64 in row chunks so that large sets need no N x N matrix.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = [
    "COLLAPSE_RATIO", "FID_EPS", "KID_SUBSETS", "KID_SUBSET_SIZE", "NN_K",
    "coverage_density", "diversity", "fid", "frechet_distance", "kid", "knn_radii", "nearest_distances",
    "precision_recall", "prdc",
]

FID_EPS = 1e-6
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
NN_K = 5
COLLAPSE_RATIO = 0.5
_ROWS = 1024


def _as64(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"features must be 2-D (N, D), got shape {tuple(t.shape)}")
    return t.to(torch.float64)


def _row_chunks(a: torch.Tensor, b: torch.Tensor, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    """``fn(distances of a chunk of rows of a to all of b, first row index)`` concatenated over chunks."""
    return torch.cat([fn(torch.cdist(a[i : i + _ROWS], b), i) for i in range(0, len(a), _ROWS)])


# --- FID ---------------------------------------------------------------------------------------
def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = FID_EPS) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (both covariances + eps * I)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64)) + eps * np.eye(len(mu1))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64)) + eps * np.eye(len(mu2))
    # Tr (S1 S2)^(1/2) = Tr (S1^(1/2) S2 S1^(1/2))^(1/2): symmetric PSD, so two eigh calls replace
    # sqrtm of a non-symmetric product (same value, faster, no complex round-off)
    t1, t2 = torch.from_numpy(s1), torch.from_numpy(s2)
    w, v = torch.linalg.eigh(t1)
    root1 = (v * w.clamp(min=0).sqrt()) @ v.T
    tr_covmean = float(torch.linalg.eigvalsh(root1 @ t2 @ root1).clamp(min=0).sqrt().sum())
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean, 0.0))


def fid(real: np.ndarray | torch.Tensor, synth: np.ndarray | torch.Tensor, eps: float = FID_EPS) -> float:
    """FID between two feature sets (NaN when either has fewer than 2 rows)."""
    r, s = _as64(real).numpy(), _as64(synth).numpy()
    if len(r) < 2 or len(s) < 2:
        return math.nan
    return frechet_distance(r.mean(0), np.cov(r, rowvar=False), s.mean(0), np.cov(s, rowvar=False), eps)


# --- KID ---------------------------------------------------------------------------------------
def kid(
    real: np.ndarray | torch.Tensor,
    synth: np.ndarray | torch.Tensor,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """(mean, std) over subsets of the unbiased MMD^2 with the cubic polynomial kernel (NaN below 2 rows)."""
    r, s = _as64(real), _as64(synth)
    m = min(subset_size, len(r), len(s))
    if m < 2:
        return math.nan, math.nan
    rng = rng if rng is not None else np.random.default_rng(0)
    d = r.shape[1]
    values = []
    for _ in range(subsets):
        x = r[torch.from_numpy(rng.choice(len(r), m, replace=False))]
        y = s[torch.from_numpy(rng.choice(len(s), m, replace=False))]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = m * (m - 1)
        values.append(float((kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


# --- nearest neighbours ------------------------------------------------------------------------
def knn_radii(features: np.ndarray | torch.Tensor, k: int = NN_K) -> np.ndarray:
    """Distance of each row to its k-th nearest other row (k clamped to n - 1; empty below 2 rows)."""
    x = _as64(features)
    k = min(k, len(x) - 1)
    if k < 1:
        return np.empty(0)

    def kth(d: torch.Tensor, start: int) -> torch.Tensor:
        rows = torch.arange(len(d))
        d[rows, rows + start] = math.inf  # leave each point out of its own neighbours
        return d.topk(k, dim=1, largest=False).values[:, -1]

    return _row_chunks(x, x, kth).numpy()


def nearest_distances(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> np.ndarray:
    """For each row of ``a``, the distance to its nearest row of ``b``."""
    return _row_chunks(_as64(a), _as64(b), lambda d, _: d.min(dim=1).values).numpy()


def _inside_any(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> np.ndarray:
    """For each point: is it strictly inside at least one ball (centre, radius)?"""
    return _row_chunks(points, centres, lambda d, _: (d < radii[None, :]).any(dim=1)).numpy()


def precision_recall(real: np.ndarray | torch.Tensor, synth: np.ndarray | torch.Tensor, k: int = NN_K) -> tuple[float, float]:
    """Improved precision (synthetic inside the real manifold) and recall (real inside the synthetic one)."""
    r, s = _as64(real), _as64(synth)
    r_radii, s_radii = knn_radii(r, k), knn_radii(s, k)
    precision = float(_inside_any(s, r, torch.from_numpy(r_radii)).mean()) if r_radii.size and len(s) else math.nan
    recall = float(_inside_any(r, s, torch.from_numpy(s_radii)).mean()) if s_radii.size and len(r) else math.nan
    return precision, recall


def coverage_density(real: np.ndarray | torch.Tensor, synth: np.ndarray | torch.Tensor, k: int = NN_K) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020 around the real k-NN balls."""
    r, s = _as64(real), _as64(synth)
    radii_np = knn_radii(r, k)
    if not radii_np.size or not len(s):
        return math.nan, math.nan
    k_eff = min(k, len(r) - 1)
    radii = torch.from_numpy(radii_np)
    counts = _row_chunks(s, r, lambda d, _: (d < radii[None, :]).sum(dim=1))
    density = float(counts.sum()) / (k_eff * len(s))
    coverage = float((nearest_distances(r, s) < radii_np).mean())
    return density, coverage


def prdc(real: np.ndarray | torch.Tensor, synth: np.ndarray | torch.Tensor, k: int = NN_K) -> dict[str, float]:
    """Precision, recall, density and coverage in one dict."""
    precision, recall = precision_recall(real, synth, k)
    density, coverage = coverage_density(real, synth, k)
    return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def diversity(features: np.ndarray | torch.Tensor) -> float:
    """Mean Euclidean distance over all pairs of distinct rows (NaN below 2 rows)."""
    x = _as64(features)
    n = len(x)
    if n < 2:
        return math.nan
    total = float(_row_chunks(x, x, lambda d, _: d.sum(dim=1)).sum())
    return total / (n * (n - 1))
