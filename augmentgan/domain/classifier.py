"""A small domain classifier trained on the real data: class probabilities and image features.

Generation uses it for the ``confidence`` filter (probability of the conditioned class), for the
``memorization`` and ``dedup`` filters and ``--truncation auto`` (distances between features), and
evaluation reuses it as the feature extractor of its metrics. It is a plain CNN trained from
scratch on the user's own images, so it knows their domain (an ImageNet network knows neither
8x8 digits nor microscope slides).

Architecture: ``S`` stages of conv3x3-BatchNorm-ReLU-maxpool(2) with 16, 32, 64, 64 channels
(``S`` = 1..4, fewer for tiny images so every stage still halves a map of at least 2x2), a
linear head on the global-average-pooled last stage. :meth:`DomainClassifier.features` is the
concatenation of every stage's global-average-pooled map (16 + 32 + ... values: low-level and
class-level information), L2-normalised, so feature distances lie in [0, 2].

Training: Adam (lr 1e-3) on class-balanced batches (every class equally often, like the GAN's
real batches; ``sampling="uniform"`` draws every image equally often instead, which the utility
benchmark uses so that imbalance is left to the method it measures) with DiffAugment's random translation, for a fixed number of steps; fully
determined by ``seed``. The trained weights are cached in
``CACHE/classifiers/<data fingerprint>-<settings hash>.pt`` (CACHE: :func:`augmentgan.cache.cache_root`,
``$AUGMENTGAN_CACHE_DIR``, ``$XDG_CACHE_HOME/augmentgan`` or ``~/.cache/augmentgan``), written
atomically and read with ``weights_only=True``; the first copy trained is reused on any device.
The entry is locked while it is looked up and trained: a second process that needs the same
classifier waits (saying so) and then reads it instead of training it again.

Every forward pass runs on fixed-size, freshly laid out chunks of :data:`EVAL_CHUNK` images (the
last one zero-padded), so the outputs for an image never depend on how many images are evaluated
with it, nor on the memory layout of the input.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.cache import cache_root, entry_lock, mark_used
from augmentgan.data.types import LabeledImages
from augmentgan.errors import AugmentganWarning, ConfigError, DataError, OutputError
from augmentgan.gan import checkpoint as ckpt
from augmentgan.gan.diffaug import rand_translation
from augmentgan.gan.gan import resolve_device
from augmentgan.gan.sampling import RealSampler, check_class_counts
from augmentgan.progress import ProgressCallback, report

__all__ = ["ClassifierSettings", "DomainClassifier", "EVAL_CHUNK", "cache_path", "cache_root", "train_classifier"]

FORMAT = "augmentgan-classifier"
ARCH_VERSION = 1  # part of the cache key: bump it when the architecture or training changes
EVAL_CHUNK = 64
WIDTHS = (16, 32, 64, 64)


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything that determines the trained weights besides the data (the cache key)."""

    steps: int = 400
    batch: int = 64
    lr: float = 1e-3
    seed: int = 0
    sampling: str = "balanced"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or not self.lr > 0:
            raise ConfigError(f"classifier settings need steps >= 1, batch >= 1 and lr > 0, got {asdict(self)}")
        if self.sampling not in ("balanced", "uniform"):
            raise ConfigError(f"classifier sampling must be balanced or uniform, got {self.sampling!r}")

    def key(self) -> str:
        text = json.dumps({**asdict(self), "arch": ARCH_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def num_stages(height: int, width: int) -> int:
    """Stages that each halve a map of at least 2x2 (1..4)."""
    return max(1, min(len(WIDTHS), int(math.log2(max(min(height, width), 2)))))


class DomainClassifier(nn.Module):
    """CNN on (N, C, H, W) images in [-1, 1]; ``features`` and ``predict_proba`` also take uint8 (N, H, W, C) arrays."""

    def __init__(self, image_shape: tuple[int, int, int], class_names: tuple[str, ...]) -> None:
        super().__init__()
        h, w, c = image_shape
        self.image_shape = (int(h), int(w), int(c))
        self.class_names = tuple(class_names)
        stages, in_ch = [], c
        for out_ch in WIDTHS[: num_stages(h, w)]:
            stages.append(nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
                nn.MaxPool2d(2, ceil_mode=True),
            ))
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(in_ch, len(class_names))
        self.feature_dim = sum(WIDTHS[: len(stages)])
        self.info: dict = {}  # fingerprint, settings, train accuracy, cache file (set by train_classifier)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    def _pooled(self, x: Tensor) -> list[Tensor]:
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(x.mean(dim=(2, 3)))
        return pooled

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes) of float images in [-1, 1]."""
        return self.head(self._pooled(x)[-1])

    # --- inference on arbitrary many images, in fixed-size chunks ---------------------------
    def as_input(self, images: np.ndarray | Tensor) -> Tensor:
        """uint8 (N, H, W, C) arrays or tensors, or float (N, C, H, W) tensors in [-1, 1] -> float tensor on the device."""
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8:
                raise DataError(f"classifier input arrays must be uint8 (N, H, W, C), got {images.dtype}")
            images = torch.from_numpy(np.ascontiguousarray(images))
        if images.dtype == torch.uint8:
            x = images.to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
        else:
            x = images.to(self.device, torch.float32)
        h, w, c = self.image_shape
        if tuple(x.shape[1:]) != (c, h, w):
            raise DataError(f"the classifier was trained on {h}x{w}x{c} images, got {tuple(x.shape[2:])}x{x.shape[1]}; resize them to the data size")
        return x

    @torch.no_grad()
    def _chunked(self, images: np.ndarray | Tensor, fn: Callable[[Tensor], Tensor]) -> Tensor:
        was_training = self.training
        self.eval()
        try:
            x = self.as_input(images)
            outs = []
            for chunk in x.split(EVAL_CHUNK):
                # a fresh zero-padded buffer: the same shape and memory layout (strides decide
                # which kernels run and in which order they sum) for every chunk
                buf = x.new_zeros((EVAL_CHUNK, *x.shape[1:]))
                buf[: len(chunk)] = chunk
                outs.append(fn(buf)[: len(chunk)])
            return torch.cat(outs) if outs else fn(x[:0])
        finally:
            self.train(was_training)

    def features(self, images: np.ndarray | Tensor) -> Tensor:
        """(N, feature_dim) L2-normalised features: every stage's pooled map, concatenated."""
        return self._chunked(images, lambda x: F.normalize(torch.cat(self._pooled(x), dim=1), dim=1))

    def predict_proba(self, images: np.ndarray | Tensor) -> Tensor:
        """(N, num_classes) class probabilities."""
        return self._chunked(images, lambda x: self(x).softmax(dim=1))

    def predict(self, images: np.ndarray | Tensor) -> Tensor:
        """(N,) most probable class index."""
        return self.predict_proba(images).argmax(dim=1)


# --- training and the cache (root: augmentgan.cache.cache_root, re-exported here) -------------
def _build(data: LabeledImages, seed: int) -> DomainClassifier:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DomainClassifier(data.image_shape, data.class_names)


def _load_cached(path: Path, data: LabeledImages, settings: ClassifierSettings, fingerprint: str) -> Optional[DomainClassifier]:
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format") != FORMAT or payload["data"]["fingerprint"] != fingerprint or payload["settings"] != asdict(settings):
            raise ValueError("it belongs to other data or settings")
        model = _build(data, settings.seed)
        model.load_state_dict(payload["state"])
        model.info = dict(payload["info"])
    except Exception as err:  # corrupt or foreign file: retrain and overwrite it
        warnings.warn(f"classifier cache {path} ignored ({type(err).__name__}: {str(err)[:120]}); training it again", AugmentganWarning, stacklevel=3)
        return None
    return model


def _train(model: DomainClassifier, data: LabeledImages, settings: ClassifierSettings, device: torch.device, callback: Optional[ProgressCallback]) -> float:
    seeds = np.random.SeedSequence([settings.seed, 0xC1A55]).spawn(2)
    sampler = RealSampler(data.labels, data.num_classes, settings.sampling, np.random.default_rng(seeds[0]))
    aug = torch.Generator(device="cpu").manual_seed(int(seeds[1].generate_state(1)[0]))
    images = torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2).contiguous().to(device)
    labels = torch.from_numpy(data.labels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    model.train()
    every = max(1, settings.steps // 20)
    for step in range(1, settings.steps + 1):
        idx = torch.from_numpy(sampler(settings.batch)).to(device)
        x = rand_translation(images[idx].float().div_(127.5).sub_(1.0), aug)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == settings.steps:
            report(callback, "classifier", step, settings.steps, loss=float(loss.detach()))
    if not math.isfinite(float(loss.detach())):
        raise DataError(f"the domain classifier's loss became {float(loss.detach())} while training on the real data; check the images for constant or corrupt content")
    predicted = model.predict(data.images).cpu().numpy()
    # class-balanced accuracy on the training data: a sanity check, not a held-out score
    return float(np.mean([np.mean(predicted[data.labels == k] == k) for k in range(data.num_classes)]))


def cache_path(data: LabeledImages, settings: ClassifierSettings = ClassifierSettings(), cache_dir: str | os.PathLike | None = None, fingerprint: Optional[str] = None) -> Path:
    """Where :func:`train_classifier` caches the classifier of ``data`` with ``settings``."""
    folder = Path(cache_dir) if cache_dir is not None else cache_root() / "classifiers"
    return folder / f"{(fingerprint or data.fingerprint())[:32]}-{settings.key()}.pt"


def train_classifier(
    data: LabeledImages,
    *,
    seed: int = 0,
    steps: int = ClassifierSettings.steps,
    batch: int = ClassifierSettings.batch,
    lr: float = ClassifierSettings.lr,
    sampling: str = ClassifierSettings.sampling,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    callback: Optional[ProgressCallback] = None,
) -> DomainClassifier:
    """The domain classifier of ``data`` (eval mode, on ``device``), from the cache or trained now.

    ``sampling``: "balanced" batches (every class equally often) or "uniform" (every image).
    ``cache_dir`` defaults to :func:`cache_root` ``/ "classifiers"``. ``model.info`` holds the
    data fingerprint, the settings, the class-balanced training accuracy and the cache file.
    Progress: stage ``"classifier"`` while training.
    """
    settings = ClassifierSettings(steps=steps, batch=batch, lr=lr, seed=seed, sampling=sampling)
    check_class_counts(data.class_counts(), data.class_names)
    fingerprint = data.fingerprint()
    path = cache_path(data, settings, cache_dir, fingerprint)
    device = resolve_device(device)
    held = ExitStack()
    if use_cache:
        try:  # another process training the same classifier: wait for it, then read its file
            held.enter_context(entry_lock(path, "cached domain classifier", callback=callback))
        except OutputError as err:
            warnings.warn(f"{err}; training the classifier without caching it", AugmentganWarning, stacklevel=2)
            use_cache = False
    with held:
        model = _train_or_load(data, settings, fingerprint, path, device, use_cache, callback)
    model.info["cache"] = str(path) if use_cache else None
    return model.to(device).eval().requires_grad_(False)


def _train_or_load(
    data: LabeledImages, settings: ClassifierSettings, fingerprint: str, path: Path, device: torch.device, use_cache: bool,
    callback: Optional[ProgressCallback],
) -> DomainClassifier:
    folder = path.parent
    model = _load_cached(path, data, settings, fingerprint) if use_cache else None
    if model is not None:
        mark_used(path)  # reused: not "untouched" for cache clear --older-than
    if model is None:
        model = _build(data, settings.seed).to(device)
        accuracy = _train(model, data, settings, device, callback)
        model.info = {"fingerprint": fingerprint, "settings": asdict(settings), "train_accuracy": accuracy}
        if use_cache:
            payload = {
                "format": FORMAT, "version": 1, "settings": asdict(settings), "info": model.info,
                "data": {"fingerprint": fingerprint, "image_shape": list(data.image_shape), "class_names": list(data.class_names)},
                "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            }
            try:
                folder.mkdir(parents=True, exist_ok=True)
                ckpt.atomic_write(path, lambda f: torch.save(payload, f))
            except OSError as err:
                warnings.warn(f"cannot cache the classifier in {folder} ({err.strerror}); set AUGMENTGAN_CACHE_DIR to a writable folder", AugmentganWarning, stacklevel=3)
    return model
