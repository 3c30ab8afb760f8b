"""The expansion plan: how many samples each class gets from each source.

Per class: ``target`` from :class:`PlanConfig` (``"max"`` = the majority count, an int, a
float ratio of the majority, or a per-class dict); classes at or above it are left alone
(``undersample=True`` cuts them down to it instead). The deficit is capped at
``max_synthetic_ratio`` x real (the target is lowered, and this is noted), then split across
``gan``, ``classical``, ``smote``, ``copy``, ``latent-smote`` (SMOTE between the GAN latent codes
of two real images, decoded by the generator) and ``pseudo`` (unlabeled real images labeled by a
semi-supervised GAN's K+1 discriminator; off unless the mix names it) by the ``mix`` fractions with
largest-remainder (Hamilton) rounding, so the per-source counts add up to the deficit exactly. A
source that cannot serve a class (SMOTE and latent-smote need two images; no source can grow a class
without images; a source not enabled for this run, or ruled out for this class by ``unavailable``,
e.g. a GAN whose samples of the class collapsed) gives its share to the others in proportion to
their fractions, and this is noted. A source with a limited supply (``capacity``: pseudo has only
so many confidently labeled images of a class) gives at most that many; the shortfall goes to the
class's other sources in proportion to their fractions, or to :data:`FALLBACK` when it has none,
and is recorded (``ClassPlan.shortfall`` and a note). The plan is plain data: printing it
(``--dry-run``) does nothing.

``mix: auto`` is not resolved here: :mod:`augmentgan.automix` chooses a mix by cross-validation
(settings in :class:`AutoMixConfig`) and calls :func:`make_plan` with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from pydantic import Field, field_validator, model_validator

from augmentgan.errors import ConfigError
from augmentgan.overrides import StrictModel

SourceName = Literal["gan", "classical", "smote", "copy", "latent-smote", "pseudo"]
SOURCES: tuple[str, ...] = ("gan", "classical", "smote", "copy", "latent-smote", "pseudo")
SMOTE_LIKE: frozenset[str] = frozenset({"smote", "latent-smote"})
"""Sources that interpolate between two real images of a class (they need ``min_for_smote`` of them)."""
FALLBACK: tuple[str, ...] = ("classical", "copy")
"""Sources used, in this order, when every source of the mix is impossible for a class (or short of supply)."""
GAN_SOURCES: frozenset[str] = frozenset({"gan", "latent-smote", "pseudo"})
"""Sources that need the recipe's GAN (trained, cached or given by gan.run)."""


MAX_TARGET_RATIO = 10.0
"""The largest float ``plan.target`` (a ratio of the largest class); a larger float is a count written as one."""


class AutoMixConfig(StrictModel):
    """How ``plan.mix: auto`` chooses the blend (see :mod:`augmentgan.automix`)."""

    sources: list[SourceName] = Field(
        default_factory=lambda: ["copy", "classical", "smote", "gan"], description="sources auto may use (gan is dropped when no GAN can be had); at least one"
    )
    folds: int = Field(
        3, ge=2, le=10,
        description="stratified cross-validation folds over the real training images; with plan.auto.validation, proxy classifiers (seeds) per candidate",
    )
    steps: int = Field(400, ge=10, description="training steps of the proxy classifier (the evaluation CNN) per candidate and fold")
    blends: bool = Field(True, description="also score 50/50 blends of the best single source with each other source")
    validation: Optional[str] = Field(
        None,
        description="labeled images to score the candidates on instead of cross-validation: a folder, .h5, .npz or builtin:NAME, read like data "
        "(its channels and size), classes matched by name (a subset of the training data's); images like those the classifier will meet "
        "(new writers, sites, sessions), none of them in the training data; null: cross-validation inside the training split",
    )
    validation_split: str = Field("val", description="plan.auto.validation as .npz: its x_<split>/y_<split> arrays")
    split: Optional[float] = Field(
        None, gt=0, lt=1,
        description="score the candidates on this stratified fraction of the training images (of classes with 4 or more), held out of "
        "the GAN's training: the GAN trains on the rest, so it cannot have seen the images its samples are judged on (with "
        "cross-validation it saw every fold); the export still expands all training images. null: cross-validation",
    )

    @model_validator(mode="after")
    def _one_scoring(self) -> "AutoMixConfig":
        if self.split is not None and self.validation is not None:
            raise ValueError("plan.auto.split and plan.auto.validation are both set: score on a split held out of the GAN's training "
                             "or on your validation images, not both (set one of them to null)")
        return self

    @field_validator("sources")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("plan.auto.sources is empty: give at least one of gan, classical, smote, copy, latent-smote")
        if "pseudo" in value:
            raise ValueError("pseudo cannot be scored by plan.mix auto yet: drop it from plan.auto.sources, or give a fixed mix such as {copy: 0.5, pseudo: 0.5}")
        return list(dict.fromkeys(value))


class PlanConfig(StrictModel):
    target: Union[Literal["max"], int, float, dict[Union[int, str], int]] = Field(
        "max", description="per-class target: max (the majority count), a number, a ratio of the majority (float), or {class: count}"
    )
    mix: Union[Literal["auto"], dict[SourceName, float]] = Field(
        default_factory=lambda: {"gan": 0.5, "classical": 0.5},
        description="fraction of each class's deficit per source (gan, classical, smote, copy, latent-smote, pseudo), summing to 1; or auto: chosen by cross-validation (plan.auto)",
    )
    pseudo_min_confidence: float = Field(
        0.9, ge=0.0, le=1.0,
        description="pseudo source: an unlabeled image is used only when the K+1 discriminator's posterior of its label is at least this",
    )
    auto: AutoMixConfig = Field(default_factory=AutoMixConfig, description="how mix: auto chooses (used only with mix: auto)")
    max_synthetic_ratio: Optional[float] = Field(None, gt=0, allow_inf_nan=False, description="at most this many new samples per real one in a class; None = no cap")
    undersample: bool = Field(False, description="cut classes above the target down to it (random real images kept)")

    @field_validator("target", mode="before")
    @classmethod
    def _one_of_the_forms(cls, value: Any) -> Any:
        # otherwise pydantic lists why the value is none of the union's four types, one by one
        if isinstance(value, str) and value != "max" or isinstance(value, (bool, list, tuple)):
            raise ValueError(f"{value!r} is not a target: use max (the largest class's count), a count (e.g. 500), a ratio of the largest class "
                             f"(e.g. 0.5) or {{class: count}}")
        return value

    @field_validator("target")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"target {value} is not a number of images: use max, a count (e.g. 500) or a ratio of the largest class (e.g. 0.5)")
        if isinstance(value, (int, float)) and value <= 0:
            raise ValueError(f"target {value} must be > 0")
        if isinstance(value, float) and value > MAX_TARGET_RATIO:  # 500.0 or --set plan.target=1e2 meant a count, not 500 x the largest class
            raise ValueError(f"target {value:g} is read as a ratio of the largest class ({value:g} x it); a ratio is at most {MAX_TARGET_RATIO:g}, "
                             f"and a count of images is written without a decimal point (e.g. {int(value)})")
        if isinstance(value, dict) and any(v < 0 for v in value.values()):
            raise ValueError("per-class targets must be >= 0")
        return value

    @field_validator("mix", mode="before")
    @classmethod
    def _auto_or_fractions(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "auto" or isinstance(value, (list, tuple, int, float)):
            raise ValueError(f"{value!r} is not a mix: use auto or {{source: fraction}} summing to 1, sources {', '.join(SOURCES)} "
                             f"(e.g. {{gan: 0.5, classical: 0.5}})")
        unknown = [k for k in value if k not in SOURCES] if isinstance(value, dict) else []
        if unknown:
            raise ValueError(f"unknown source(s) {unknown} in the mix: the sources are {', '.join(SOURCES)}")
        return value

    @field_validator("mix")
    @classmethod
    def _fractions(cls, value: Union[str, dict[str, float]]) -> Union[str, dict[str, float]]:
        if isinstance(value, str):
            return value
        if any(f < 0 for f in value.values()):
            raise ValueError(f"mix fractions must be >= 0, got {value}")
        total = sum(value.values())
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"mix fractions must sum to 1, got {total:g} ({value})")
        return value


@dataclass
class ClassPlan:
    index: int
    name: str
    real: int  # real images in the (training) data
    keep: int  # real images kept (< real only when undersampling)
    target: int  # final count: keep + sum(add)
    add: dict[str, int]  # new samples per source, every source present
    notes: list[str] = field(default_factory=list)
    shortfall: dict[str, int] = field(default_factory=dict)  # source -> samples of its quota it could not give (capacity); moved to others

    @property
    def synthetic(self) -> int:
        return sum(self.add.values())


@dataclass
class Plan:
    classes: list[ClassPlan]
    mix: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(c.target for c in self.classes)

    def source_total(self, source: str) -> int:
        return sum(c.add[source] for c in self.classes)

    def counts(self, source: str) -> dict[int, int]:
        """class index -> samples to make with ``source`` (classes with none left out)."""
        return {c.index: c.add[source] for c in self.classes if c.add[source]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "mix": dict(self.mix),
            "total": self.total,
            "per_source": {s: self.source_total(s) for s in SOURCES},
            "classes": [
                {"index": c.index, "name": c.name, "real": c.real, "keep": c.keep, "target": c.target, "add": dict(c.add), "shortfall": dict(c.shortfall),
                 "notes": list(c.notes)}
                for c in self.classes
            ],
            "notes": list(self.notes),
        }


def largest_remainder(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` into whole numbers that sum to ``total``.

    Hamilton's method: floor every quota, then give the leftover units to the largest fractional
    parts (ties: the order of ``weights``). Zero weights get zero.
    """
    names = list(weights)
    wsum = sum(weights.values())
    if total < 0 or wsum <= 0:
        raise ValueError(f"cannot split {total} by weights {dict(weights)}")
    quotas = [total * weights[n] / wsum for n in names]
    floors = [math.floor(q + 1e-9) for q in quotas]
    left = total - sum(floors)
    order = sorted(range(len(names)), key=lambda i: (-(quotas[i] - floors[i]), i))
    for i in order[: max(left, 0)]:
        floors[i] += 1
    return dict(zip(names, floors))


def resolve_targets(counts: Sequence[int], class_names: Sequence[str], target: Any) -> list[int]:
    """The target count of every class (a class missing from a dict target keeps its count)."""
    majority = max(counts) if len(counts) else 0
    if target == "max":
        return [majority] * len(counts)
    if isinstance(target, bool):
        raise ConfigError(f"plan.target {target!r}: use max, a count, a ratio or {{class: count}}")
    if isinstance(target, int):
        return [int(target)] * len(counts)
    if isinstance(target, float):
        return [int(round(target * majority))] * len(counts)
    if isinstance(target, Mapping):
        out = list(int(n) for n in counts)
        names = [str(n) for n in class_names]
        for key, value in target.items():
            if str(key) in names:
                index = names.index(str(key))
            elif isinstance(key, int) and 0 <= key < len(names):
                index = key
            else:
                raise ConfigError(f"plan.target: unknown class {key!r}; the classes are {names}")
            out[index] = int(value)
        return out
    raise ConfigError(f"plan.target {target!r}: use max, a count, a ratio or {{class: count}}")


def _possible(source: str, real: int, available: frozenset[str], min_for_smote: int, ruled_out: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """None if ``source`` can serve a class with ``real`` images, else the reason."""
    if ruled_out and source in ruled_out:
        return ruled_out[source]
    if source not in available:
        return "not enabled in this run"
    if real == 0:
        return "no real image"
    if source in SMOTE_LIKE and real < min_for_smote:
        return f"{real} image{'s' if real != 1 else ''}, {'SMOTE' if source == 'smote' else source} needs {min_for_smote}"
    return None


def make_plan(
    counts: Sequence[int],
    class_names: Sequence[str],
    cfg: PlanConfig,
    *,
    available_sources: Sequence[str] = SOURCES,
    min_for_smote: int = 2,
    mix: Optional[Mapping[str, float]] = None,
    unavailable: Optional[Mapping[int, Mapping[str, str]]] = None,
    capacity: Optional[Mapping[int, Mapping[str, int]]] = None,
) -> Plan:
    """Targets and per-source counts for every class (see the module docstring).

    ``mix`` replaces ``cfg.mix`` (needed when that is ``"auto"``); ``unavailable`` maps a class
    index to the sources ruled out for it, each with the reason (noted in the class's plan);
    ``capacity`` maps a class index to the most samples a source can give it (a source not named
    is unlimited); the rest of its quota goes to the others, recorded in ``ClassPlan.shortfall``.
    """
    counts = [int(n) for n in counts]
    if len(counts) != len(class_names):
        raise ConfigError(f"{len(counts)} counts for {len(class_names)} classes")
    available = frozenset(available_sources)
    unknown = available - set(SOURCES)
    if unknown:
        raise ConfigError(f"unknown source(s) {sorted(unknown)}; the sources are {list(SOURCES)}")
    targets = resolve_targets(counts, class_names, cfg.target)
    chosen = cfg.mix if mix is None else mix
    if isinstance(chosen, str):
        raise ConfigError("plan.mix is auto: the mix is chosen by augmentgan.automix, which passes it to make_plan(mix=...)")
    mix = {s: float(chosen.get(s, 0.0)) for s in SOURCES}
    unavailable = unavailable or {}
    plan = Plan([], {s: f for s, f in mix.items() if f > 0})
    for off in [s for s in SOURCES if mix[s] > 0 and s not in available]:
        plan.notes.append(f"{off} is not enabled in this run: its {mix[off]:g} share goes to the other sources")
    for index, (name, real, target) in enumerate(zip(class_names, counts, targets)):
        cp = ClassPlan(index, str(name), real, real, real, {s: 0 for s in SOURCES})
        plan.classes.append(cp)
        if real >= target:
            if cfg.undersample and real > target:
                if target == 0:
                    raise ConfigError(f"plan.target {cfg.target!r} with plan.undersample: true cuts class {str(name)!r} ({real} images) to none; "
                                      f"raise the target or set plan.undersample: false")
                cp.keep = cp.target = target
                cp.notes.append(f"undersampled from {real} to {target} real images")
            continue
        deficit = target - real
        if cfg.max_synthetic_ratio is not None:
            cap = math.floor(cfg.max_synthetic_ratio * real + 1e-9)
            if deficit > cap:
                cp.notes.append(f"target lowered from {target} to {real + cap}: at most {cfg.max_synthetic_ratio:g} synthetic per real image")
                deficit = cap
        if deficit == 0:
            cp.target = real
            continue
        if real == 0:
            cp.notes.append(f"no source can make samples for a class with no real image: target lowered from {target} to 0")
            continue
        weights = {}
        for s in SOURCES:
            if mix[s] <= 0:
                continue
            reason = _possible(s, real, available, min_for_smote, unavailable.get(index))
            if reason is None:
                weights[s] = mix[s]
            elif s in available:  # global "not enabled" is said once, in plan.notes
                cp.notes.append(f"{s} impossible ({reason}): its share moved to the other sources")
        if not weights:
            fallback = [s for s in FALLBACK if _possible(s, real, available, min_for_smote, unavailable.get(index)) is None]
            if not fallback:
                cp.notes.append(f"no source can make samples for a class with {real} images: target lowered from {target} to {real}")
                continue
            weights = {fallback[0]: 1.0}
            cp.notes.append(f"no source of the mix can serve this class: {fallback[0]} used instead")
        cp.add.update(largest_remainder(deficit, weights))
        fallback = [s for s in FALLBACK if _possible(s, real, available, min_for_smote, unavailable.get(index)) is None]
        short = _cap_to_supply(cp, weights, (capacity or {}).get(index, {}), fallback)
        cp.target = real + deficit - short
        if short:
            cp.notes.append(f"no source can take {short} of the deficit: target lowered from {target} to {cp.target}")
    return plan


def _cap_to_supply(cp: ClassPlan, weights: Mapping[str, float], limits: Mapping[str, int], fallback: Sequence[str]) -> int:
    """Cut every source of ``cp.add`` to its supply (``limits``) and move the shortfall to the class's
    other sources of ``weights`` in proportion, else to the first ``fallback`` source (those of
    :data:`FALLBACK` that can serve the class) with room; records ``cp.shortfall`` and a note per
    cut. Returns what nobody could take (0 unless no fallback source can serve the class)."""
    full: set[str] = set()
    while True:
        over = {s: cp.add[s] - int(limits[s]) for s in SOURCES if s in limits and cp.add[s] > int(limits[s])}
        if not over:
            return 0
        quotas = {s: cp.add[s] for s in over}
        for s, n in over.items():
            cp.add[s] = int(limits[s])
            cp.shortfall[s] = cp.shortfall.get(s, 0) + n
            full.add(s)
        short = sum(over.values())
        how = ""
        rest = {s: w for s, w in weights.items() if s not in full}
        if not rest:
            spare = [s for s in fallback if s not in full]
            if not spare:
                for s in over:
                    cp.notes.append(f"{s} has {limits[s]} image(s) for this class, its quota was {quotas[s]}")
                return short
            rest = {spare[0]: 1.0}
            how = " (the fallback: no other source of the mix can serve this class)"
        moved = largest_remainder(short, rest)
        for s, n in moved.items():
            cp.add[s] += n
        to = ", ".join(f"{s} +{n}" for s, n in moved.items() if n)
        for s, n in over.items():
            cp.notes.append(f"{s} has {limits[s]} image(s) for this class, short of its quota by {n}: the shortfall goes to {to}{how}")
