"""Feature extractors for the metrics: the domain classifier (default) or Inception-v3 (local weights only).

An extractor has ``features(images) -> Tensor (N, D)`` for uint8 ``(N, H, W, C)`` arrays.

- ``domain``: :func:`~augmentgan.domain.classifier.train_classifier` on the real data (cached by
  the data fingerprint), so evaluation works offline on any domain. Its numbers are comparable
  between runs on the same real data, not with papers.
- ``inception``: torchvision's Inception-v3 pool3 features (2048-D), the space of published FID and
  KID numbers. The weights are never downloaded: they are read from ``--inception-weights PATH`` or,
  when that is not given, from the torch hub cache (``torch.hub.get_dir()/checkpoints/
  inception_v3_google-*.pth``) if a copy is already there. Images are resized to 299x299
  (bilinear), gray is repeated to 3 channels, and ImageNet normalisation is applied.

:class:`RealFeatures` holds the features of the real images of each class and their
nearest-neighbour distances, computed once on demand; the generation filters (memorization,
dedup, harmful), ``--truncation auto`` and the memorization metric measure against it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError
from augmentgan.progress import ProgressCallback

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CHUNK = 32
EPS = 1e-6
"""Smallest distance threshold: exact copies (distance 0) are always below it."""
_NN_ROWS = 1024


class FeatureExtractor(Protocol):
    def features(self, images: np.ndarray) -> Tensor: ...


# --- distances to the real data --------------------------------------------------------------------
def distances(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances (len(a), len(b)) in float64, computed pair by pair (exact zeros for copies)."""
    if len(a) == 0 or len(b) == 0:
        return torch.empty(len(a), len(b), dtype=torch.float64, device=a.device)
    return torch.cdist(a.double(), b.double(), compute_mode="donot_use_mm_for_euclid_dist")


class RealFeatures:
    """Features of the real images of each class (an extractor's, usually the domain classifier's)
    and their nearest-neighbour distances, computed once per class on first use.

    ``classifier`` and ``real`` may be set after construction (the sampler loads them only when a
    filter needs them); they must be set before the first call.
    """

    def __init__(self, *, class_names: Sequence[str], classifier: Optional[FeatureExtractor] = None, real: Optional[LabeledImages] = None) -> None:
        self.class_names, self.classifier, self.real = tuple(class_names), classifier, real
        self._features: dict[int, Tensor] = {}
        self._nn: dict[int, np.ndarray] = {}

    def real_features(self, cls: int) -> Tensor:
        """Classifier features of the real images of class ``cls`` (cached)."""
        if cls not in self._features:
            if self.classifier is None or self.real is None:
                raise RuntimeError("real features need the classifier and the real data (Sampler.prepare sets them)")
            self._features[cls] = self.classifier.features(self.real.images[self.real.labels == cls])
        return self._features[cls]

    def real_nn_distances(self, cls: int) -> np.ndarray:
        """Distance from each real image of class ``cls`` to its nearest other one (empty for one image)."""
        if cls not in self._nn:
            feats = self.real_features(cls)
            nearest = []
            for i in range(0, len(feats), _NN_ROWS):
                d = distances(feats[i : i + _NN_ROWS], feats)
                rows = torch.arange(d.shape[0], device=d.device)
                d[rows, rows + i] = float("inf")
                nearest.append(d.min(dim=1).values)
            values = torch.cat(nearest).cpu().numpy() if len(feats) > 1 else np.empty(0)
            self._nn[cls] = values
        return self._nn[cls]

    def nn_quantile(self, cls: int, q: float) -> float:
        """The ``q``-quantile of the class's real NN distances (all classes' if it has one image), >= EPS."""
        values = self.real_nn_distances(cls)
        if values.size == 0:
            values = np.concatenate([self.real_nn_distances(c) for c in range(len(self.class_names))])
        return max(float(np.quantile(values, q)), EPS) if values.size else EPS


# --- extractors ---------------------------------------------------------------------------------------


def find_inception_weights(path: Optional[str | os.PathLike] = None) -> Path:
    """The local Inception-v3 weights file: ``path`` or the torch hub cache copy; ConfigError otherwise."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"Inception-v3 weights not found at {p}; download them yourself or use --features domain")
        return p
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(folder.glob("inception_v3_google-*.pth"))
    if not found:
        raise ConfigError(
            f"Inception-v3 weights not found at {folder / 'inception_v3_google-*.pth'}; download them yourself "
            "(torchvision Inception_V3_Weights.IMAGENET1K_V1) and pass --inception-weights PATH, or use --features domain"
        )
    return found[-1]


class InceptionFeatures(nn.Module):
    """Inception-v3 pool3 features (2048-D) of uint8 images, from a local weights file."""

    def __init__(self, weights: str | os.PathLike, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from torchvision.models import inception_v3

        model = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as err:
            raise ConfigError(f"Inception-v3 weights {weights} cannot be loaded ({type(err).__name__}: {str(err)[:160]}); use torchvision's inception_v3_google-*.pth") from None
        model.fc = nn.Identity()
        self.net = model.eval().requires_grad_(False).to(device)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1).to(device))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1).to(device))

    @torch.no_grad()
    def features(self, images: np.ndarray) -> Tensor:
        outs = []
        for i in range(0, len(images), _CHUNK):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + _CHUNK])).to(self.mean.device).permute(0, 3, 1, 2).float() / 255.0
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            outs.append(self.net((x - self.mean) / self.std))
        return torch.cat(outs) if outs else torch.zeros(0, 2048)


def _inception(real: LabeledImages, *, inception_weights: Optional[str | os.PathLike], device: str | torch.device, **_: object) -> FeatureExtractor:
    return InceptionFeatures(find_inception_weights(inception_weights), device)


def _domain(real: LabeledImages, *, seed: int, steps: Optional[int], device: str | torch.device, callback: Optional[ProgressCallback], **_: object) -> FeatureExtractor:
    from augmentgan.domain.classifier import ClassifierSettings, train_classifier

    # its features do not depend on the class numbers: a real set without some classes (a holdout) trains on those it has
    return train_classifier(real.present_classes(), seed=seed, steps=steps or ClassifierSettings.steps, device=device, callback=callback)


EXTRACTORS: dict[str, Callable[..., FeatureExtractor]] = {"domain": _domain, "inception": _inception}


def build_extractor(
    name: str,
    real: LabeledImages,
    *,
    inception_weights: Optional[str | os.PathLike] = None,
    seed: int = 0,
    steps: Optional[int] = None,
    device: str | torch.device = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> FeatureExtractor:
    """The extractor ``name`` ("domain" or "inception") for evaluating against ``real``."""
    factory = EXTRACTORS.get(name)
    if factory is None:
        raise ConfigError(f"unknown feature space {name!r}; use one of {', '.join(EXTRACTORS)}")
    return factory(real, inception_weights=inception_weights, seed=seed, steps=steps, device=device, callback=callback)
