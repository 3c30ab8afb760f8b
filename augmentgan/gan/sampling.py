"""Randomness of a training run: derived seeds, real-batch sampling, fake labels and fixed noise.

Every stream is derived from the run's one seed with :class:`numpy.random.SeedSequence` and lives
in an explicit generator object, so a run never touches (or depends on) global RNG state and a
checkpoint can hold every stream's state.

Imbalance defaults (see :class:`RealSampler` and :class:`LatentSampler`): real batches are drawn
class-balanced and fake labels uniformly, so a minority class - the one the user wants samples for
- gets as many D and G updates as the majority class. ``uniform`` real sampling and ``empirical``
fake labels reproduce the data distribution instead (StyleGAN2-ADA's choice on balanced data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, Sequence

import numpy as np
import torch

from augmentgan.errors import DataError

RealSampling = Literal["balanced", "uniform"]
FakeLabels = Literal["uniform", "empirical"]

_STREAMS = ("model", "batches", "latent", "augment", "penalty", "fixed_noise", "unlabeled")  # append only: spawned children depend on their index alone


@dataclass(frozen=True)
class Seeds:
    """One 64-bit seed per random stream of a run, all derived from the run seed."""

    model: int
    batches: int
    latent: int
    augment: int
    penalty: int
    fixed_noise: int
    unlabeled: int


def derive_seeds(seed: int) -> Seeds:
    """Spawn independent child seeds (``SeedSequence.spawn``) for each stream of a run."""
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    values = [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]
    return Seeds(**dict(zip(_STREAMS, values)))


def child_seed(seed: int, *key: int) -> int:
    """A 64-bit seed of its own for ``key`` (e.g. a step) under ``seed`` (``SeedSequence([seed, *key])``)."""
    return int(np.random.SeedSequence([seed, *key]).generate_state(1, dtype=np.uint64)[0])


def torch_generator(seed: int, device: torch.device | str) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device`` (draws made on that device use it directly)."""
    return torch.Generator(device=device).manual_seed(seed)


def check_class_counts(counts: np.ndarray, class_names: Sequence[str]) -> None:
    """A class without images cannot be learned: refuse it with its name."""
    empty = [class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"class(es) {empty} have no images; a conditional GAN cannot learn them: drop them (LabeledImages.select_classes) or add images")


class RealSampler:
    """Draws indices of real images, independently with replacement, from a ``numpy`` Generator.

    ``balanced``: the class of each sample is uniform over classes, then the image is uniform within
    its class - every class is seen equally often whatever its size (the default for imbalanced data).
    ``uniform``: every image is equally likely, so classes appear in proportion to their counts.
    Drawing with replacement keeps the sampler stateless apart from its generator, which makes
    checkpoint/resume exact.
    """

    def __init__(self, labels: np.ndarray, num_classes: int, mode: RealSampling, rng: np.random.Generator) -> None:
        self.mode = mode
        self.rng = rng
        labels = np.asarray(labels)
        self._n = len(labels)
        self._order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=num_classes)
        self._counts = counts
        self._offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def __call__(self, batch: int) -> np.ndarray:
        if self.mode == "uniform":
            return self.rng.integers(0, self._n, batch)
        classes = self.rng.integers(0, len(self._counts), batch)
        within = np.floor(self.rng.random(batch) * self._counts[classes]).astype(np.int64)
        return self._order[self._offsets[classes] + within]


class LatentSampler:
    """Draws ``(z, y)`` for the generator on ``generator``'s device.

    z ~ N(0, I). y is uniform over classes (``uniform``, the default: G practises every class
    equally, minority classes included) or follows the real class frequencies (``empirical``).
    """

    def __init__(self, z_dim: int, class_counts: Sequence[int], mode: FakeLabels, generator: torch.Generator) -> None:
        self.z_dim = z_dim
        self.num_classes = len(class_counts)
        self.generator = generator
        self.device = generator.device
        self._probs: Optional[torch.Tensor] = None
        if mode == "empirical":
            counts = torch.as_tensor(np.asarray(class_counts, dtype=np.float64))
            self._probs = (counts / counts.sum()).to(device=self.device, dtype=torch.float32)

    def __call__(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(batch, self.z_dim, generator=self.generator, device=self.device)
        if self._probs is None:
            y = torch.randint(0, self.num_classes, (batch,), generator=self.generator, device=self.device)
        else:
            y = torch.multinomial(self._probs, batch, replacement=True, generator=self.generator)
        return z, y


def fixed_noise(seed: int, num_classes: int, per_class: int, z_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The noise of the sample grids: ``per_class`` latents, the same for every class (one row per class).

    Drawn on the CPU from its own seed, so the grids show the same latents on every device and at
    every step; sharing z across rows makes the class the only thing that changes down a column.
    """
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(per_class, z_dim, generator=g).repeat(num_classes, 1)
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return z, y


class RealBatches:
    """``next_real()`` for the train step: a real batch ``(x, y)`` on the images' device.

    ``images`` is the whole training set as uint8 ``(N, C, S, S)`` (kept in uint8 to hold 4x
    more images in device memory); a batch is gathered and scaled to [-1, 1] on the device.

    ``shard``: under torchrun every rank draws the same global batch of ``batch`` indices and
    keeps only its slice (see :mod:`augmentgan.gan.distributed`).
    """

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, sampler: RealSampler, batch: int,
        memory_format: torch.memory_format = torch.contiguous_format, shard: Optional[slice] = None,
    ) -> None:
        self.images, self.labels, self.sampler = images, labels, sampler
        self.batch, self.memory_format, self.shard = batch, memory_format, shard

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        drawn = self.sampler(self.batch)
        idx = torch.from_numpy(drawn if self.shard is None else drawn[self.shard]).to(self.images.device)
        x = self.images[idx].float().div_(127.5).sub_(1.0)
        return x.contiguous(memory_format=self.memory_format), self.labels[idx]
