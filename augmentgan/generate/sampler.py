"""The streaming core of generation: load a trained generator, draw candidates, filter, keep.

Candidates of class ``c`` are numbered 0, 1, 2, ...; candidate ``i`` has the latent
``class_latents(seed, c, i, 1, z_dim, T_c)`` (:mod:`augmentgan.gan.truncation`). The generator,
the classifier and the discriminator always run on aligned chunks of :data:`CHUNK` candidates
(``i // CHUNK``), so every tensor shape, and hence every number, is the same whatever ``batch``
and however many samples are asked for. Candidates are judged and accepted in index order, so
class ``c``'s output is its first ``n_c`` accepted candidates: asking for more extends it
(the first 100 of a 1,000-sample request are the 100 of a 100-sample request).

The generator runs at its training size; its images go back to the size of the data it
was trained on the way the trainer brought the real images up (:mod:`augmentgan.gan.fit`: the
center crop of a padded run, the block average of a scaled one, else an antialiased bilinear
resize) and are rounded to uint8 before anything judges them, so filters see exactly what is written.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from augmentgan.data.types import LabeledImages
from augmentgan.errors import CheckpointError, ConfigError, DataError, Flag, GenerationError
from augmentgan.domain.classifier import DomainClassifier, train_classifier
from augmentgan.gan.checkpoint import GeneratorInfo, GeneratorSource, open_generator
from augmentgan.gan.fit import to_data
from augmentgan.gan.gan import resolve_device
from augmentgan.gan.models import build_discriminator
from augmentgan.gan.truncation import MIN_THRESHOLD, class_latents
from augmentgan.generate.auto_truncation import choose_thresholds
from augmentgan.generate.filters import CHUNK, Chunk, FilterContext, FilterPipeline, FilterSpec, build_filters
from augmentgan.generate.report import ClassReport
from augmentgan.progress import ProgressCallback, report

Truncation = Union[None, float, str, Mapping[Union[int, str], Optional[float]]]
Counts = Union[Mapping[Union[int, str], int], Sequence[int], str]


# --- loading ------------------------------------------------------------------------------------
def load_discriminator(info: GeneratorInfo, payload: Mapping[str, Any], device: torch.device) -> nn.Module:
    """The discriminator of the checkpoint ``info`` was read from (``payload``: its contents, as
    :attr:`~augmentgan.gan.checkpoint.GeneratorCheckpoint.payload` keeps them; eval mode, no grad)."""
    gan = info.gan
    if gan.tricks.pac != 1:
        raise ConfigError(f"the discriminator filter scores single images, but run {info.checkpoint} trained a PacGAN D on packs of {gan.tricks.pac}; drop --filter discriminator")
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resolve_d_norm warned when the run was trained
            D = build_discriminator(
                gan.model, img_size=info.img_size, channels=info.channels, num_classes=len(info.class_names),
                pac=1, per_sample_grad=gan.reg.per_sample_grad,
            )
        D.load_state_dict(payload["state"]["D"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise CheckpointError(f"{info.checkpoint}: its discriminator does not match this augmentgan's models ({type(err).__name__}); it was written by another version") from None
    return D.to(device).eval().requires_grad_(False)


def resolve_real(real: Optional[LabeledImages], info: GeneratorInfo, spec: Optional[str], why: str) -> LabeledImages:
    """The data the GAN was trained on: ``real`` if given, else re-read from the run's data spec.

    Either way its fingerprint must match the checkpoint's (same images, labels, classes, size), or
    the real part's that the checkpoint records when synthetic images trained it too
    (``gan.train_on: classical``; the filters then judge against those real images).
    """
    if real is None:
        if not spec:
            raise ConfigError(f"{why} need the real data the GAN was trained on, and checkpoint {info.checkpoint} does not record where it came from; pass --real DATA (real=...)")
        from augmentgan.data import load
        from augmentgan.data.io import conform

        try:
            real = load(spec, channels=info.channels)
        except DataError as err:
            raise DataError(f"cannot re-read the training data {spec!r} recorded in the run ({err}); pass --real DATA (real=...)") from None
        if real.image_shape[:2] != tuple(info.data_size):
            real = conform(real, size=info.data_size[0])
        where = f"the run's recorded data {spec!r}"
    else:
        where = "the real data given"
    fingerprint = real.fingerprint()
    h, w = (int(v) for v in info.data_size)
    resized = (Flag("size", str(h), before=f" (it was read at {h}x{w}: ", after=")"),) if h == w else ()
    if fingerprint != info.data_fingerprint and fingerprint != info.real_fingerprint:
        if info.real_fingerprint is not None:
            raise DataError(
                f"{where} (fingerprint {fingerprint[:12]}, {real!r}) is not the real data checkpoint {info.checkpoint} was trained on "
                f"(fingerprint {info.real_fingerprint[:12]}, classes {list(info.class_names)}; the run also trained on a classical fill of them, "
                f"gan.train_on classical); give those real images exactly as the run read them",
                *resized,
            )
        raise DataError(
            f"{where} (fingerprint {fingerprint[:12]}, {real!r}) is not the data checkpoint {info.checkpoint} was trained on "
            f"(fingerprint {info.data_fingerprint[:12]}, classes {list(info.class_names)}); give the training data exactly as `augmentgan train` loaded it",
            *resized,
        )
    return real


# --- counts and truncation -----------------------------------------------------------------------
def class_index(key: int | str, class_names: Sequence[str], what: str) -> int:
    """A class given by name or index."""
    if isinstance(key, str) and key in class_names:
        return class_names.index(key)
    if isinstance(key, (int, np.integer)) or (isinstance(key, str) and key.strip().isdigit()):
        k = int(key)
        if 0 <= k < len(class_names):
            return k
    raise ConfigError(f"{what}: unknown class {key!r}; classes are {list(class_names)} (names or indices 0..{len(class_names) - 1})")


def _indices(keys: Sequence[Any], class_names: Sequence[str], what: str) -> list[int]:
    """:func:`class_index` of each key; a class named twice (e.g. by its name and by an index that is
    another class's name) is a ConfigError instead of the last one silently winning."""
    out: list[int] = []
    for key in keys:
        i = class_index(key, class_names, what)
        if i in out:
            first = keys[out.index(i)]
            raise ConfigError(f"{what}: class {class_names[i]!r} is given twice ({first!r} and {key!r}); give each class once")
        out.append(i)
    return out


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, value = part.rpartition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{what} {text!r}: write CLASS=VALUE pairs separated by commas, e.g. cat=100,dog=50")
        pairs.append((name.strip(), value.strip()))
    if not pairs:
        raise ConfigError(f"{what} is empty; write CLASS=VALUE pairs separated by commas")
    return pairs


def resolve_counts(
    class_names: Sequence[str], *, counts: Optional[Counts] = None, per_class: Optional[int] = None, balance_to: Optional[LabeledImages] = None,
    image_shape: Optional[tuple[int, int, int]] = None,
) -> list[int]:
    """Samples to generate per class index, from exactly one of ``counts``, ``per_class``, ``balance_to``.

    ``counts``: ``{class name or index: n}`` or ``"name=n,name=n"`` (other classes get 0), or one
    number per class in class order (a list or array of ``len(class_names)``).
    ``per_class``: n for every class. ``balance_to``: a dataset with the same classes; each class
    gets ``max(counts) - count`` so that the dataset plus the samples is balanced; with ``image_shape``
    (the samples'), its images must have that shape (samples of another size would not join it).
    """
    given = [name for name, v in (("counts", counts), ("per_class", per_class), ("balance_to", balance_to)) if v is not None]
    if len(given) != 1:
        raise ConfigError(f"give exactly one of --per-class, --counts, --balance-to (counts=, per_class=, balance_to=), got {given or 'none'}")
    k = len(class_names)
    if per_class is not None:
        if int(per_class) < 0:
            raise ConfigError(f"--per-class {per_class}: must be >= 0")
        return [int(per_class)] * k
    if balance_to is not None:
        if tuple(balance_to.class_names) != tuple(class_names):
            raise ConfigError(f"--balance-to data has classes {list(balance_to.class_names)}, the GAN {list(class_names)}; balance the data the GAN was trained for")
        if image_shape is not None and tuple(balance_to.image_shape) != tuple(image_shape):
            (h, w, c), (h2, w2, c2) = image_shape, balance_to.image_shape
            raise DataError(f"--balance-to data has {h2}x{w2}x{c2} images, the GAN's samples are {h}x{w}x{c} (HxWxC); they would not join it: "
                            "read the data as the run was trained on it (", Flag("size", str(h)), Flag("channels", str(c), before=", "), ")")
        have = balance_to.class_counts()
        return [int(have.max() - n) for n in have]
    if isinstance(counts, str):
        items: list[tuple[Any, Any]] = _pairs(counts, "--counts")
    elif isinstance(counts, Mapping):
        items = list(counts.items())
    elif isinstance(counts, (Sequence, np.ndarray)) and np.ndim(counts) == 1:
        if len(counts) != k:
            raise ConfigError(f"counts: {len(counts)} numbers for {k} classes {list(class_names)}; give one per class in that order, or a {{class: n}} mapping")
        items = list(enumerate(counts))
    else:
        raise ConfigError(f"counts: {type(counts).__name__} is not a {{class: n}} mapping, a 'name=n,name=n' string or one number per class")
    out = [0] * k
    for (key, value), index in zip(items, _indices([key for key, _ in items], class_names, "--counts")):
        try:
            n = int(value)
            if n != float(value) or n < 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"--counts: {key}={value!r} is not a whole number >= 0") from None
        out[index] = n
    return out


def parse_threshold(value: Any, what: str) -> Optional[float]:
    """A truncation threshold: a positive finite number, or None for none (ConfigError naming ``what`` otherwise)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "off", "")):
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":  # here a class's own threshold: auto chooses every class's at once
        raise ConfigError(f"{what}: auto chooses the threshold of every class at once (truncation auto); give this class a number or none")
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: {value!r} is not a number or none") from None
    if not t > 0 or not math.isfinite(t):
        raise ConfigError(f"{what}: threshold {value!r} must be a positive number (e.g. 0.5, 1.0, 2.0) or none")
    if t < MIN_THRESHOLD:
        raise ConfigError(f"{what}: threshold {value!r} is below {MIN_THRESHOLD}: every sample would be its class's mean image, and drawing "
                          f"its latents would take ~1/T redraws; use 0.25 or more, or none")
    return t


def parse_truncation(truncation: Truncation, class_names: Sequence[str]) -> list[Optional[float]] | str:
    """Per-class thresholds, or ``"auto"``. Accepts None, a number, ``"auto"``, ``"0.5"``,
    ``"cat=0.5,dog=none"`` or ``{class: threshold}`` (classes not named get no truncation)."""
    k = len(class_names)
    if isinstance(truncation, str) and truncation.strip().lower() == "auto":
        return "auto"
    if isinstance(truncation, str) and "=" in truncation:
        truncation = dict(_pairs(truncation, "--truncation"))
    if isinstance(truncation, Mapping):
        out: list[Optional[float]] = [None] * k
        pairs = list(truncation.items())
        for (key, value), index in zip(pairs, _indices([key for key, _ in pairs], class_names, "--truncation")):
            out[index] = parse_threshold(value, f"--truncation {key}")
        return out
    return [parse_threshold(truncation, "--truncation")] * k


# --- the sampler --------------------------------------------------------------------------------
@dataclass
class SampleBatch:
    """Accepted samples of one class from one chunk, in index order."""

    images: np.ndarray  # uint8 (n, H, W, C)
    labels: np.ndarray  # int64 (n,)
    z_index: np.ndarray  # int64 (n,): candidate index within the class (its latent)
    truncation: Optional[float]


@dataclass
class _ClassState:
    name: str
    requested: int
    truncation: Optional[float]
    candidates: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class Sampler:
    """A trained generator with its filters, ready to stream accepted samples.

    ``filters`` that need the domain classifier (confidence, memorization, dedup) or
    ``truncation="auto"`` need the real data (``real``, else the run's recorded data spec);
    ``classifier`` may pass an already trained :class:`DomainClassifier` of that data.
    ``real_subset``: ``real`` is a part of the GAN's training data, and the filters judge the
    candidates against that part alone (``classifier`` trained on it); neither is checked against the
    run's data fingerprint (``plan.mix: auto`` draws each fold's pool this way, so that no filter has
    seen the fold's validation images).
    ``max_tries``: a class gives up after ``max_tries * requested`` candidates (at least CHUNK).
    ``run_or_ckpt`` is a run folder or .pt file (``checkpoint`` chooses which one of a run), or a
    :class:`~augmentgan.gan.checkpoint.GeneratorCheckpoint` read already: the file is read once,
    here or by the caller, and the discriminator and recorded data spec come from that read.
    """

    def __init__(
        self,
        run_or_ckpt: GeneratorSource,
        *,
        truncation: Truncation = None,
        filters: Sequence[FilterSpec | str | Mapping[str, Any]] = (),
        seed: int = 0,
        checkpoint: str | int = "auto",
        ema: bool = True,
        real: Optional[LabeledImages] = None,
        classifier: Optional[DomainClassifier] = None,
        classifier_steps: int = 400,
        real_subset: bool = False,
        max_tries: int = 10,
        device: str | torch.device = "auto",
        callback: Optional[ProgressCallback] = None,
    ) -> None:
        if int(max_tries) < 1:
            raise ConfigError(f"--max-tries {max_tries}: must be >= 1")
        if int(seed) < 0:
            raise ConfigError(f"--seed {seed}: must be >= 0")
        self.seed, self.max_tries, self.callback = int(seed), int(max_tries), callback
        self.device = resolve_device(device)
        self.filters = build_filters(filters)  # validate before the expensive parts
        self.checkpoint = open_generator(run_or_ckpt, checkpoint)
        self.run = self.checkpoint.source
        self.G, self.info = self.checkpoint.generator(ema=ema, device=self.device)
        self.truncation_spec = parse_truncation(truncation, self.info.class_names)
        if real_subset and real is None:
            raise ValueError("Sampler: real_subset needs the real images (real=...)")
        if real_subset and classifier is not None and classifier.info.get("fingerprint") != real.fingerprint():  # type: ignore[union-attr]
            raise ConfigError("the classifier given was trained on other data than the real images given; train it on them")
        if not real_subset and classifier is not None and classifier.info.get("fingerprint") not in (self.info.data_fingerprint, self.info.real_fingerprint):
            raise ConfigError(f"the classifier given was trained on other data than checkpoint {self.info.checkpoint}; train it on the GAN's training data")
        self._real, self._classifier, self._classifier_steps, self._real_subset = real, classifier, classifier_steps, bool(real_subset)
        self.context = FilterContext(seed=self.seed, class_names=self.info.class_names, loss=self.info.gan.loss.name, burn_in=self._burn_in)
        self.pipeline = FilterPipeline(self.filters, self.context)  # checks the filters against the run
        self.truncation: Optional[list[Optional[float]]] = None if self.truncation_spec == "auto" else list(self.truncation_spec)
        self.auto_scores: dict[int, dict[str, float]] = {}
        self.states: list[_ClassState] = []
        self._prepared = False

    def prepare(self) -> None:
        """Load what the filters and auto truncation need: real data, classifier (trained if not cached), D.

        Called by :meth:`resolve_truncation` and :meth:`stream`; separate so that cheap checks
        (counts, options) fail before the expensive parts run.
        """
        if self._prepared:
            return
        ctx = self.context
        need_classifier = [f"--filter {f.name}" for f in self.filters if f.needs_classifier] + (["--truncation auto"] if self.truncation_spec == "auto" else [])
        need_d = any(f.needs_discriminator for f in self.filters)
        if need_d:  # from the checkpoint read once in __init__
            ctx.discriminator = load_discriminator(self.info, self.checkpoint.payload, self.device)
        if need_classifier:
            ctx.real = self._real if self._real_subset else resolve_real(self._real, self.info, self.checkpoint.data_spec, ", ".join(need_classifier))
            classifier = self._classifier
            if classifier is None:  # a property of the data: its seed does not follow the generation seed
                classifier = train_classifier(ctx.real, steps=self._classifier_steps, device=self.device, callback=self.callback)
            ctx.classifier = classifier.to(self.device)
        self._prepared = True

    # -- properties of the loaded run --
    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w = self.info.data_size
        return (int(h), int(w), self.info.channels)

    # -- rendering --
    @torch.no_grad()
    def render(self, cls: int, start: int, threshold: Optional[float], seed: Optional[int] = None) -> Chunk:
        """Candidates ``start .. start + CHUNK - 1`` of class ``cls`` (``start`` a multiple of CHUNK)."""
        if start % CHUNK:
            raise ValueError(f"chunks start at multiples of {CHUNK}, got {start}")
        z = class_latents(self.seed if seed is None else seed, cls, start, CHUNK, self.G.z_dim, threshold).to(self.device)
        y = torch.full((CHUNK,), cls, dtype=torch.long, device=self.device)
        x = self.G(z, y).float()
        h, w = self.info.data_size
        small = to_data(x, (h, w), self.info.fit)
        images = small.add(1.0).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return Chunk(cls=cls, start=start, x=x, images=images, context=self.context)

    def _burn_in(self, cls: int, n: int) -> np.ndarray:
        """Discriminator scores of ``n`` samples of class ``cls`` from a latent stream of their own."""
        digest = hashlib.sha256(f"augmentgan-burn-in:{self.seed}".encode()).digest()
        seed = int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
        threshold = self.class_truncation(cls)
        scores = [self.render(cls, start, threshold, seed).dscore() for start in range(0, n, CHUNK)]
        return np.concatenate(scores)[:n]

    # -- truncation --
    def class_truncation(self, cls: int) -> Optional[float]:
        if self.truncation is None:
            raise RuntimeError("resolve_truncation() first")
        return self.truncation[cls]

    def resolve_truncation(self, counts: Sequence[int]) -> list[Optional[float]]:
        """Per-class thresholds; ``auto`` is decided here for the classes with a nonzero count."""
        self.prepare()
        if self.truncation is None:
            chosen, self.auto_scores = choose_thresholds(self, [c for c, n in enumerate(counts) if n > 0])
            self.truncation = [chosen.get(c) for c in range(len(self.class_names))]
        return list(self.truncation)

    # -- streaming --
    def stream(self, counts: Sequence[int]) -> Iterator[SampleBatch]:
        """Accepted samples, class by class in index order; fills :attr:`class_reports` as it goes.

        Raises GenerationError when a class has drawn ``max(max_tries * count, CHUNK)``
        candidates without keeping ``count``.
        """
        counts = [int(n) for n in counts]
        if len(counts) != len(self.class_names) or min(counts, default=0) < 0:
            raise ConfigError(f"counts must give a number >= 0 for each of the {len(self.class_names)} classes")
        truncation = self.resolve_truncation(counts)
        self.states = [_ClassState(name, n, truncation[c], rejected={f.name: 0 for f in self.filters}) for c, (name, n) in enumerate(zip(self.class_names, counts))]
        total, done = sum(counts), 0
        report(self.callback, "generate", 0, total)
        for cls, state in enumerate(self.states):
            if state.requested == 0:
                continue
            self.pipeline.start_class(cls)
            limit = max(self.max_tries * state.requested, CHUNK)  # a chunk is computed anyway
            start = 0
            while state.kept < state.requested:
                if state.candidates >= limit:
                    raise self._give_up(state)
                chunk = self.render(cls, start, state.truncation)
                rejected_by = self.pipeline.run(chunk)
                available = min(CHUNK, limit - state.candidates)
                accepted = np.flatnonzero(rejected_by[:available] < 0)
                need = state.requested - state.kept
                stop = int(accepted[need - 1]) + 1 if len(accepted) >= need else available
                accepted = accepted[:need]
                for k, f in enumerate(self.filters):
                    state.rejected[f.name] += int(np.count_nonzero(rejected_by[:stop] == k))
                state.candidates += stop
                state.kept += len(accepted)
                start += CHUNK
                done += len(accepted)
                if len(accepted):
                    yield SampleBatch(
                        chunk.images[torch.from_numpy(accepted).to(chunk.images.device)].cpu().numpy(),
                        np.full(len(accepted), cls, np.int64), chunk.start + accepted.astype(np.int64), state.truncation,
                    )
                report(self.callback, "generate", done, total, cls=state.name)

    def _give_up(self, state: _ClassState) -> GenerationError:
        # only filters reject candidates, so there is at least one here
        worst = max(self.filters, key=lambda f: state.rejected[f.name])
        return GenerationError(
            f"class {state.name!r}: kept {state.kept} of {state.requested} requested after {state.candidates} candidates "
            f"(the limit: --max-tries {self.max_tries} x {state.requested} requested, at least {CHUNK}); filter {worst.name!r} rejected most ({state.rejected[worst.name]}): "
            f"{worst.hint()}, or raise --max-tries"
        )

    @property
    def class_reports(self) -> list[ClassReport]:
        near = [f for f in self.filters if f.name == "memorization"]
        return [
            ClassReport(
                name=s.name, requested=s.requested, candidates=s.candidates, kept=s.kept, rejected=dict(s.rejected),
                near_copies=s.rejected["memorization"] if near else None, truncation=s.truncation,
                truncation_scores=self.auto_scores.get(c),
            )
            for c, s in enumerate(self.states)
        ]
