"""Quality tracked during training: the monitor that :func:`augmentgan.gan.trainer.train` calls.

``quality_monitor(real)`` measures, every ``train.eval_every`` G steps, ``per_class`` generated
samples of every class against the real training images, in the features ``augmentgan evaluate``
uses (the domain classifier of :mod:`augmentgan.domain.classifier`, trained once on the real
data and cached; built at the first evaluation, not before):

- ``diversity/<class>``: the class's diversity ratio, mean pairwise feature distance of its
  samples over that of its real images (:func:`~augmentgan.evaluate.metrics.diversity`; below
  :data:`~augmentgan.evaluate.metrics.COLLAPSE_RATIO` = 0.5 ``augmentgan evaluate`` flags the class
  as collapsed); ``diversity_mean``, ``diversity_min`` and ``collapsed`` (how many classes are below 0.5).
- ``kid``: the mean over classes of the class's KID (samples of class c against real images of
  class c). Per class, because the samples are class-balanced and the data is not: a KID of the
  pooled sets would punish the class proportions, not the images. ``kid/<class>`` per class.
  KID here is the unbiased MMD^2 with KID's kernel ``(x.y / D + 1)^3`` computed once on all
  samples and all real images of the class (:func:`kid_all`), not averaged over equal-size random
  subsets as in ``augmentgan evaluate``: the same kernel and the same expected value, less
  variance on a class of 8 real images, and no random draw at all. ``fidelity_mean``: the mean of
  the per-class fidelities below.
- ``score`` (higher is better, in [0, 1], decides ``best.pt``)::

      score = mean over classes c of  min(diversity ratio_c, 1) * fidelity_c
      fidelity_c = clip(1 - KID_c / KID_other_c, 0, 1)

  where ``KID_other_c`` is the KID of class c's real images against the real images of the other
  classes (computed once from the data): fidelity is 1 when the samples are as close to the class
  as its own images are, 0 when they are as far as another class. Why this form: the mean over
  classes of *capped* ratios rewards every class for reaching its real diversity and nothing
  beyond it, and a class that collapses (ratio near 0) contributes nothing whatever its fidelity,
  whichever class it is (the rare classes, which collapse first, count as much as the head).
  Diversity alone is blind to fidelity (noise and images of the wrong class are diverse), and KID
  alone is nearly blind to collapse (one real image per class repeated has a small KID), so each
  gates the other. The scale of KID depends on the feature space and the data, hence the
  data-derived ``KID_other_c`` rather than a fixed weight. Rejected: the worst class's ratio alone
  (with 8 real images the rarest class's ratio is the noisiest number of all, and it ignores every
  other class and fidelity), and ratio minus a fixed multiple of KID (no weight both ranks a
  collapsed GAN above one real image per class and ranks pixel noise below a collapsed GAN;
  measured in benchmarks/RESULTS.md).

Cost: one generator pass over ``per_class * C`` latents, the classifier's features of those
images, and ``C`` small kernel matrices (measured in benchmarks/RESULTS.md). Nothing is random:
the trainer's latents are fixed and KID uses every sample, so a step's score depends on the
weights alone (a resumed run scores exactly as an uninterrupted one) and the monitor keeps no
state between calls.
"""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np
import torch

from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError
from augmentgan.evaluate import metrics as M
from augmentgan.domain.features import FeatureExtractor, build_extractor
from augmentgan.gan.monitoring import SampleFn
from augmentgan.progress import ProgressCallback

__all__ = ["DEFAULT_PER_CLASS", "QualityMonitor", "kid_all", "quality_monitor", "quality_score"]

DEFAULT_PER_CLASS = 64
_MAX_REAL = 1000  # real images per class measured (a seeded subset of larger classes)


def kid_all(real: torch.Tensor, synth: torch.Tensor) -> float:
    """Unbiased MMD^2 of two feature sets (any sizes >= 2) with KID's cubic kernel, on all rows."""
    x, y = real.double(), synth.double()
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        return math.nan
    d = x.shape[1]
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def fidelity(kid: np.ndarray, kid_other: np.ndarray) -> np.ndarray:
    """``clip(1 - kid / kid_other, 0, 1)`` per class (NaN where either is unknown or kid_other <= 0)."""
    kid, other = np.asarray(kid, np.float64), np.asarray(kid_other, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.clip(1.0 - kid / other, 0.0, 1.0)
    return np.where(np.isfinite(kid) & np.isfinite(other) & (other > 0), out, np.nan)


def quality_score(ratios: np.ndarray, fidelities: np.ndarray) -> float:
    """Mean over classes of ``min(ratio, 1) * fidelity``; a class with a NaN fidelity counts its ratio alone, one with a NaN ratio is left out."""
    r, f = np.asarray(ratios, np.float64), np.asarray(fidelities, np.float64)
    ok = np.isfinite(r)
    if not ok.any():
        return math.nan
    return float((np.minimum(r[ok], 1.0) * np.where(np.isfinite(f[ok]), f[ok], 1.0)).mean())


class QualityMonitor:
    """Call it as ``monitor(step, sample)``; see the module docstring for what it returns."""

    def __init__(
        self, real: LabeledImages, *, per_class: int = DEFAULT_PER_CLASS, seed: int = 0, classifier_steps: Optional[int] = None,
        extractor: Optional[FeatureExtractor] = None, device: str | torch.device = "cpu",
        callback: Optional[ProgressCallback] = None,
    ) -> None:
        if per_class < 2:
            raise ConfigError(f"quality monitor: per_class={per_class}; diversity needs at least 2 samples per class")
        self.real, self.per_class, self.seed = real, int(per_class), int(seed)
        self.classifier_steps, self.device, self.callback = classifier_steps, device, callback
        self.extractor = extractor
        self._real_f: Optional[list[torch.Tensor]] = None
        self._real_div: Optional[np.ndarray] = None
        self._kid_other: Optional[np.ndarray] = None

    def _prepare(self) -> None:
        if self._real_f is not None:
            return
        if self.extractor is None:
            self.extractor = build_extractor("domain", self.real, seed=self.seed, steps=self.classifier_steps, device=self.device, callback=self.callback)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x40A1]))
        feats, divs = [], []
        for c in range(self.real.num_classes):
            idx = np.flatnonzero(self.real.labels == c)
            if len(idx) > _MAX_REAL:
                idx = np.sort(rng.choice(idx, _MAX_REAL, replace=False))
            f = self.extractor.features(self.real.images[idx]).double().cpu()
            feats.append(f)
            divs.append(M.diversity(f))
        others = []
        for c in range(self.real.num_classes):  # how far another class is: the KID that means "wrong images"
            rest = torch.cat([f for k, f in enumerate(feats) if k != c]) if len(feats) > 1 else feats[c][:0]
            if len(rest) > _MAX_REAL:
                rest = rest[torch.from_numpy(np.sort(rng.choice(len(rest), _MAX_REAL, replace=False)))]
            others.append(kid_all(feats[c], rest))
        self._real_f, self._real_div, self._kid_other = feats, np.asarray(divs), np.asarray(others)

    def __call__(self, step: int, sample: SampleFn) -> dict[str, float]:
        self._prepare()
        assert self._real_f is not None and self._real_div is not None and self._kid_other is not None and self.extractor is not None
        images, labels = sample(self.per_class)
        synth_f = self.extractor.features(images).double().cpu()
        names = self.real.class_names
        ratios, kids = np.full(len(names), math.nan), np.full(len(names), math.nan)
        for c in range(len(names)):
            s_f = synth_f[torch.from_numpy(labels == c)]
            div_r = self._real_div[c]
            if len(s_f) >= 2 and math.isfinite(div_r) and div_r > 0:
                ratios[c] = M.diversity(s_f) / div_r
            kids[c] = kid_all(self._real_f[c], s_f)
        kid = float(np.nanmean(kids)) if np.isfinite(kids).any() else math.nan
        fid = fidelity(kids, self._kid_other)
        finite = ratios[np.isfinite(ratios)]
        out = {
            "score": quality_score(ratios, fid),
            "diversity_mean": float(finite.mean()) if finite.size else math.nan,
            "diversity_min": float(finite.min()) if finite.size else math.nan,
            "collapsed": float(np.sum(finite < M.COLLAPSE_RATIO)),
            "kid": kid,
            "fidelity_mean": float(np.nanmean(fid)) if np.isfinite(fid).any() else math.nan,
        }
        out.update({f"diversity/{n}": float(r) for n, r in zip(names, ratios)})
        out.update({f"kid/{n}": float(k) for n, k in zip(names, kids)})
        return out


def quality_monitor(
    real: LabeledImages,
    *,
    per_class: int = DEFAULT_PER_CLASS,
    seed: int = 0,
    classifier_steps: Optional[int] = None,
    device: str | torch.device | os.PathLike = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> QualityMonitor:
    """A monitor for :func:`augmentgan.gan.trainer.train` measuring samples against ``real`` (the GAN's training data).

    ``seed`` and ``classifier_steps`` select the domain classifier exactly as ``augmentgan evaluate``
    does (the same cached one by default). The classifier is trained (or read from the cache) at
    the first evaluation; ``callback`` sees its ``"classifier"`` progress stage.
    """
    return QualityMonitor(real, per_class=per_class, seed=seed, classifier_steps=classifier_steps, device=str(device), callback=callback)
