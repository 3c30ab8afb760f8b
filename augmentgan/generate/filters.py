"""Quality filters: composable per-sample accept/reject decisions on generated candidates.

Syntax (CLI ``--filter``, repeatable; API: the same strings, :class:`FilterSpec` or dicts)::

    confidence[:p=0.5]                      keep if the domain classifier gives the conditioned class probability >= p
    memorization[:q=0.01]                   reject near-copies of the training images
    dedup[:r=0.1 | :d=DIST]                 reject near-duplicates of samples already kept
    discriminator[:keep=0.8 | :percentile=95][,mode=auto|drs|top][,burn=512]
    harmful[:k=5]                           reject samples the real data places in another class
    informative[:keep=0.5]                  over-generate 1/keep x, keep the most uncertain in-class ones

Filters run in the order given (dedup always last, as it compares with the final kept set);
each sees only the candidates the ones before it kept, and the report counts, per class, how
many each rejected. Every decision depends only on the candidate and on samples of lower index
of the same class, so batch boundaries never change the outcome.

Features are those of :class:`~augmentgan.domain.classifier.DomainClassifier` (L2-normalised,
distances in [0, 2]), computed once per chunk and shared.

- ``memorization``: a candidate whose nearest real image *of its class* is closer than the
  ``q``-quantile of the class's real-to-real nearest-neighbour distances (leave-one-out) is a
  near-copy and rejected; ``near_copies`` in the report counts them. The threshold is at least
  1e-6, so a pixel-identical copy is always caught. A class with a single image uses the
  distances of all classes.
- ``dedup``: a candidate closer than the threshold to a sample of its class already kept (in
  index order) is rejected. The threshold is ``d``, or ``r`` times the median real-to-real
  nearest-neighbour distance of the class (default 0.1: ten times closer than two real images
  typically are). It is deliberately not a quantile of those distances: nearest neighbours get
  closer as more samples are drawn, so a quantile calibrated on a few hundred real images would
  reject ever more of a large request even from a perfect generator. It keeps the features of
  the kept samples of the class being generated: memory grows with kept samples x feature
  dimension x 4 bytes (200,000 samples of a class x 176 features ~ 140 MB).
- ``discriminator``: the run's discriminator scores each candidate (at the generator's size,
  without DiffAugment), after a burn-in of ``burn`` samples per class from a separate latent
  stream. ``mode=drs`` is discriminator rejection sampling (Azadi et al. 2019): with ``D_M``
  the running maximum logit (burn-in, then every candidate seen), ``F = D - D_M - log(1 -
  exp(D - D_M - 1e-6)) - gamma``, ``gamma`` the ``percentile`` of F over the burn-in, and the
  candidate is accepted with probability ``sigmoid(F)`` (the uniform draw depends only on seed,
  class and index). It needs a D trained with the ``bce`` or ``minimax`` loss, whose logit
  estimates log p_data/p_g; other losses (hinge, wasserstein, least squares, relativistic)
  give no such ratio, so ``mode=top`` keeps candidates scoring at least the ``(1 - keep)``
  quantile of the burn-in scores (about a fraction ``keep`` of them). ``mode=auto`` picks
  ``top`` when ``keep`` is given, else ``drs`` for bce/minimax and ``top`` otherwise. D's
  BatchNorm layers (DCGAN presets) run with their running statistics. Not available for
  PacGAN runs (D judges packs, not single images).

Usefulness filters (DiffuLT, Shao et al. 2024; Askari-Hemmat et al., TMLR 2024: generated data
helps long-tailed recognition once samples a classifier of the real data finds harmful are
dropped and the informative ones kept):

- ``harmful``: a candidate is harmful when the domain classifier (trained on the real images)
  assigns it to another class, or when fewer than half of its ``k`` nearest real images (all
  classes, domain features) are of its class - it sits inside another class's neighbourhood and
  would teach a classifier the wrong boundary.
- ``informative``: over-generation with selection. Of the candidates still alive in each chunk
  of the sampler (aligned per class, so the outcome does not depend on batch size or on how many
  samples are asked for), only those the classifier assigns to their class count, and the
  fraction ``keep`` of them with the highest predictive entropy (the most uncertain under the
  real-data classifier, i.e. the most informative while still in-class) is kept: about
  ``1/keep`` candidates are drawn per kept sample. Put it after ``harmful``/``confidence``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping, Optional, Sequence

import numpy as np
import torch
from pydantic import Field, ValidationError, model_validator
from scipy.special import expit
from torch import Tensor, nn

from augmentgan.data.types import LabeledImages
from augmentgan.domain.classifier import DomainClassifier
from augmentgan.domain.features import EPS, RealFeatures, distances
from augmentgan.errors import ConfigError
from augmentgan.overrides import StrictModel, format_validation_error, parse_value

DRS_LOSSES = frozenset({"bce", "minimax"})
CHUNK = 64
"""Candidates per generator call, aligned to the per-class index: part of the output format
(a :class:`Chunk` holds this many; :mod:`augmentgan.generate.sampler` renders them)."""


# --- specs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FilterSpec:
    """A filter name and its parameters, e.g. ``FilterSpec("confidence", {"p": 0.9})``."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "FilterSpec":
        """``"name"`` or ``"name:key=value,key=value"``."""
        name, _, rest = text.strip().partition(":")
        params: dict[str, Any] = {}
        for pair in (p.strip() for p in rest.split(",") if p.strip()):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--filter {text!r}: write NAME:KEY=VALUE,KEY=VALUE (e.g. confidence:p=0.9)")
            params[key.strip()] = parse_value(value.strip())
        return cls(name.strip(), params)


def uniforms(seed: int, cls: int, start: int, n: int) -> np.ndarray:
    """U[0, 1) numbers for candidates ``start .. start+n-1`` of a class (counter-based splitmix64)."""
    digest = hashlib.sha256(f"augmentgan-drs:{seed}:{cls}".encode()).digest()
    key = np.uint64(int.from_bytes(digest[:8], "little"))
    with np.errstate(over="ignore"):
        z = key + (np.arange(start, start + n, dtype=np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


# --- what filters see ------------------------------------------------------------------------------
class FilterContext(RealFeatures):
    """What the filters share: the classifier and real features (:class:`~augmentgan.domain.features.RealFeatures`), the discriminator, seeds."""

    def __init__(
        self,
        *,
        seed: int,
        class_names: Sequence[str],
        classifier: Optional[DomainClassifier] = None,
        real: Optional[LabeledImages] = None,
        discriminator: Optional[nn.Module] = None,
        loss: str = "bce",
        burn_in: Optional[Callable[[int, int], np.ndarray]] = None,
    ) -> None:
        super().__init__(class_names=class_names, classifier=classifier, real=real)
        self.seed, self.discriminator, self.loss, self.burn_in = seed, discriminator, loss, burn_in


@dataclass(eq=False)
class Chunk:
    """Candidates ``start .. start+len-1`` of class ``cls``; classifier and D outputs computed once, on demand."""

    cls: int
    start: int
    x: Tensor  # generator output (n, C, S, S) in [-1, 1], what D sees
    images: Tensor  # uint8 (n, H, W, C) at the data size, what is written and classified
    context: FilterContext
    _cache: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def probs(self) -> np.ndarray:
        """Classifier probabilities of every class, float64 (n, K)."""
        if "probs" not in self._cache:
            self._cache["probs"] = self.context.classifier.predict_proba(self.images).double().cpu().numpy()  # type: ignore[union-attr]
        return self._cache["probs"]

    def proba(self) -> np.ndarray:
        """Classifier probability of the conditioned class, float64 (n,)."""
        return self.probs()[:, self.cls]

    def features(self) -> Tensor:
        """Classifier features (n, feature_dim) on the device."""
        if "features" not in self._cache:
            self._cache["features"] = self.context.classifier.features(self.images)  # type: ignore[union-attr]
        return self._cache["features"]

    @torch.no_grad()
    def dscore(self) -> np.ndarray:
        """Discriminator logits, float64 (n,)."""
        if "dscore" not in self._cache:
            D = self.context.discriminator
            y = torch.full((len(self),), self.cls, dtype=torch.long, device=self.x.device)
            self._cache["dscore"] = D(self.x, y).reshape(-1).double().cpu().numpy()  # type: ignore[misc]
        return self._cache["dscore"]


# --- the filters -----------------------------------------------------------------------------------
class QualityFilter:
    """Base class: ``keep(chunk, alive)`` returns a boolean mask over the chunk (only ``alive`` entries count)."""

    name: ClassVar[str]
    Params: ClassVar[type[StrictModel]]
    needs_classifier: ClassVar[bool] = False
    needs_discriminator: ClassVar[bool] = False
    runs_last: ClassVar[bool] = False

    def __init__(self, params: StrictModel) -> None:
        self.params = params
        self.context: Optional[FilterContext] = None

    def setup(self, context: FilterContext) -> None:
        self.context = context

    def start_class(self, cls: int) -> None:
        """Called before the first chunk of each class."""

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def accepted(self, chunk: Chunk, kept: np.ndarray) -> None:
        """Called with the final decisions of every chunk."""

    def hint(self) -> str:
        """What to relax when this filter rejects too much."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name and resolved parameters, for the output's metadata."""
        return {"name": self.name, **self.params.model_dump()}


class ConfidenceParams(StrictModel):
    p: float = Field(0.5, gt=0.0, le=1.0, description="minimum classifier probability of the conditioned class")


class ConfidenceFilter(QualityFilter):
    name = "confidence"
    Params = ConfidenceParams
    needs_classifier = True

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        return chunk.proba() >= self.params.p

    def hint(self) -> str:
        return f"lower confidence:p (now {self.params.p}), lower --truncation, or train the GAN longer"


class MemorizationParams(StrictModel):
    q: float = Field(0.01, ge=0.0, le=1.0, description="quantile of the class's real-to-real nearest-neighbour distances")


class MemorizationFilter(QualityFilter):
    name = "memorization"
    Params = MemorizationParams
    needs_classifier = True

    def start_class(self, cls: int) -> None:
        self.threshold = self.context.nn_quantile(cls, self.params.q)  # type: ignore[union-attr]

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        nearest = distances(chunk.features(), self.context.real_features(chunk.cls)).min(dim=1).values  # type: ignore[union-attr]
        return nearest.cpu().numpy() >= self.threshold

    def hint(self) -> str:
        return f"the GAN reproduces its training images: lower memorization:q (now {self.params.q}), use an earlier checkpoint or train with more augmentation (tricks.diffaug)"


class DedupParams(StrictModel):
    r: Optional[float] = Field(None, gt=0.0, description="threshold: r x the median real-to-real NN distance of the class (default 0.1)")
    d: Optional[float] = Field(None, gt=0.0, description="threshold: an absolute feature distance (in [0, 2])")

    @model_validator(mode="before")
    @classmethod
    def _one(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            if data.get("r") is not None and data.get("d") is not None:
                raise ValueError("give r or d, not both")
            if data.get("r") is None and data.get("d") is None:
                data = {**data, "r": 0.1}
        return data


class DedupFilter(QualityFilter):
    name = "dedup"
    Params = DedupParams
    needs_classifier = True
    runs_last = True

    def start_class(self, cls: int) -> None:
        p = self.params
        self.threshold = p.d if p.d is not None else max(p.r * self.context.nn_quantile(cls, 0.5), EPS)  # type: ignore[union-attr,operator]
        self.bank: list[Tensor] = []

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        feats = chunk.features()
        bank = torch.cat(self.bank) if self.bank else feats[:0]
        far = (distances(feats, bank).min(dim=1).values if len(bank) else torch.full((len(feats),), float("inf"), dtype=torch.float64)).cpu().numpy() >= self.threshold
        near = (distances(feats, feats) < self.threshold).cpu().numpy()
        keep = np.zeros(len(feats), bool)
        for i in np.flatnonzero(alive & far):  # in index order: compare with the earlier kept ones
            keep[i] = not near[i, keep].any()
        return keep

    def accepted(self, chunk: Chunk, kept: np.ndarray) -> None:
        if kept.any():
            self.bank = [torch.cat([*self.bank, chunk.features()[torch.from_numpy(kept).to(chunk.features().device)]])]

    def hint(self) -> str:
        p = self.params
        what = f"dedup:d (now {p.d})" if p.d is not None else f"dedup:r (now {p.r})"
        return f"samples of the class are too alike: lower {what}, raise --truncation, or ask for fewer samples"


class HarmfulParams(StrictModel):
    k: int = Field(5, ge=1, le=50, description="nearest real images (all classes) whose majority must be of the sample's class")


class HarmfulFilter(QualityFilter):
    name = "harmful"
    Params = HarmfulParams
    needs_classifier = True

    def setup(self, context: FilterContext) -> None:
        super().setup(context)
        self._bank: Optional[tuple[Tensor, np.ndarray]] = None

    def bank(self) -> tuple[Tensor, np.ndarray]:
        """Features and labels of every real image (built once)."""
        if self._bank is None:
            ctx = self.context
            feats = [ctx.real_features(c) for c in range(len(ctx.class_names))]  # type: ignore[union-attr]
            labels = np.concatenate([np.full(len(f), c) for c, f in enumerate(feats)])
            self._bank = (torch.cat(feats), labels)
        return self._bank

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        in_class = chunk.probs().argmax(axis=1) == chunk.cls
        feats, labels = self.bank()
        k = min(self.params.k, len(labels))
        nearest = distances(chunk.features(), feats).topk(k, dim=1, largest=False).indices.cpu().numpy()
        own = (labels[nearest] == chunk.cls).sum(axis=1)
        return in_class & (2 * own >= k)  # harmful only when fewer than half are of its class (an even k's tie is kept)

    def hint(self) -> str:
        return "the GAN's samples of this class look like other classes: train longer, lower --truncation, or leave the GAN out of this class (plan.mix: auto does)"


class InformativeParams(StrictModel):
    keep: float = Field(0.5, gt=0.0, le=1.0, description="fraction of the in-class candidates kept (the most uncertain); 1/keep = over-generation factor")


class InformativeFilter(QualityFilter):
    name = "informative"
    Params = InformativeParams
    needs_classifier = True

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        probs = chunk.probs()
        eligible = alive & (probs.argmax(axis=1) == chunk.cls)
        entropy = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
        n = int(np.ceil(self.params.keep * eligible.sum()))
        order = np.flatnonzero(eligible)[np.argsort(-entropy[eligible], kind="stable")]
        out = np.zeros(len(probs), bool)
        out[order[:n]] = True
        return out

    def hint(self) -> str:
        return f"raise informative:keep (now {self.params.keep}; it draws about {1 / self.params.keep:.1f} candidates per sample)"


class DiscriminatorParams(StrictModel):
    mode: Literal["auto", "drs", "top"] = Field("auto", description="drs: rejection sampling (bce/minimax D); top: keep the best-scored fraction")
    keep: float = Field(0.8, gt=0.0, le=1.0, description="top: fraction of the burn-in score distribution kept")
    percentile: float = Field(95.0, ge=0.0, le=100.0, description="drs: gamma is this percentile of F over the burn-in")
    burn: int = Field(512, ge=1, description="burn-in samples per class")


class DiscriminatorFilter(QualityFilter):
    name = "discriminator"
    Params = DiscriminatorParams
    needs_discriminator = True

    def setup(self, context: FilterContext) -> None:
        super().setup(context)
        p = self.params
        mode = p.mode
        if mode == "auto":
            mode = "top" if "keep" in p.model_fields_set else "drs" if "percentile" in p.model_fields_set or context.loss in DRS_LOSSES else "top"
        if mode == "drs" and context.loss not in DRS_LOSSES:
            raise ConfigError(
                f"discriminator filter: rejection sampling (drs) needs a D trained with the bce or minimax loss, this run used {context.loss!r} "
                "whose logits are no density ratio; use discriminator:keep=0.8 (mode=top)"
            )
        wrong = "percentile" if mode == "top" else "keep"
        if wrong in p.model_fields_set:
            raise ConfigError(f"discriminator filter: {wrong} does not apply to mode={mode}; use keep with mode=top, percentile with mode=drs")
        self.mode = mode

    def start_class(self, cls: int) -> None:
        burn = self.context.burn_in(cls, self.params.burn)  # type: ignore[union-attr,misc]
        if self.mode == "drs":
            self.d_max = float(burn.max())
            self.gamma = float(np.percentile(_drs_f(burn, self.d_max), self.params.percentile))
        else:
            self.threshold = float(np.quantile(burn, 1.0 - self.params.keep))

    def keep(self, chunk: Chunk, alive: np.ndarray) -> np.ndarray:
        score = chunk.dscore()
        if self.mode == "top":
            return score >= self.threshold
        running = np.maximum(self.d_max, np.maximum.accumulate(score))
        self.d_max = float(running[-1])
        accept = expit(_drs_f(score, running) - self.gamma)
        return uniforms(self.context.seed, chunk.cls, chunk.start, len(score)) < accept  # type: ignore[union-attr]

    def hint(self) -> str:
        if self.mode == "top":
            return f"raise discriminator:keep (now {self.params.keep})"
        return f"lower discriminator:percentile (now {self.params.percentile}) to accept more"

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "mode": getattr(self, "mode", self.params.mode), "burn": self.params.burn}
        out.update({"keep": self.params.keep} if out["mode"] == "top" else {"percentile": self.params.percentile})
        return out


def _drs_f(score: np.ndarray, d_max: np.ndarray | float) -> np.ndarray:
    """Azadi et al. 2019: F = D - D_M - log(1 - exp(D - D_M - eps)), before subtracting gamma."""
    delta = np.minimum(score - d_max, 0.0)
    return delta - np.log1p(-np.exp(delta - EPS))


FILTERS: dict[str, type[QualityFilter]] = {
    f.name: f for f in (ConfidenceFilter, MemorizationFilter, DedupFilter, DiscriminatorFilter, HarmfulFilter, InformativeFilter)
}


def build_filter(spec: FilterSpec | str | Mapping[str, Any]) -> QualityFilter:
    """One filter from ``"name:key=value"``, a :class:`FilterSpec` or ``{"name": ..., key: value}``."""
    if isinstance(spec, str):
        spec = FilterSpec.parse(spec)
    elif isinstance(spec, Mapping):
        spec = FilterSpec(str(spec.get("name", "")), {k: v for k, v in spec.items() if k != "name"})
    cls = FILTERS.get(spec.name)
    if cls is None:
        raise ConfigError(f"unknown filter {spec.name!r}; use one of {', '.join(FILTERS)} (e.g. --filter confidence:p=0.9)")
    unknown = sorted(set(spec.params) - set(cls.Params.model_fields))
    if unknown:
        raise ConfigError(f"filter {spec.name}: unknown key(s) {unknown}; valid keys: {', '.join(cls.Params.model_fields)}")
    try:
        params = cls.Params.model_validate(dict(spec.params))
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, f"filter {spec.name}")) from None
    return cls(params)


def build_filters(specs: Sequence[FilterSpec | str | Mapping[str, Any]]) -> list[QualityFilter]:
    """Filters in run order (dedup last); a filter named twice is refused."""
    if isinstance(specs, (str, FilterSpec)):
        specs = [specs]
    filters = [build_filter(s) for s in specs]
    names = [f.name for f in filters]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"filter(s) {twice} given more than once; give each filter once with all its keys")
    return sorted(filters, key=lambda f: f.runs_last)


class FilterPipeline:
    """Runs the filters on a chunk; each sees only the candidates the ones before it kept."""

    def __init__(self, filters: Sequence[QualityFilter], context: FilterContext) -> None:
        self.filters = list(filters)
        for f in self.filters:
            f.setup(context)

    def start_class(self, cls: int) -> None:
        for f in self.filters:
            f.start_class(cls)

    def run(self, chunk: Chunk) -> np.ndarray:
        """Per candidate: the index of the filter that rejected it, -1 when all kept it."""
        alive = np.ones(len(chunk), bool)
        rejected_by = np.full(len(chunk), -1, np.int64)
        for k, f in enumerate(self.filters):
            keep = np.asarray(f.keep(chunk, alive.copy()), bool)
            rejected_by[alive & ~keep] = k
            alive &= keep
        for f in self.filters:
            f.accepted(chunk, alive)
        return rejected_by
