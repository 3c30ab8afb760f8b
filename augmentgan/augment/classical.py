"""Classical augmentation with albumentations 2.0.8 pipelines, built strictly and seeded.

A pipeline spec is one of:

- a name from :data:`NAMED_PIPELINES` (``"light"``, ``"geometric"``, ``"photometric"``,
  ``"grayscale-scan"``, ``"strokes"``, ``"flips"``; flips are a pipeline of their own because they change the
  meaning of some classes: digits, text, handedness);
- albumentations' own serialized form (``A.to_dict(compose)``, read from YAML or JSON), with or
  without the outer ``{"__version__", "transform"}`` envelope;
- a short list of ``{"name": "Affine", "params": {...}}`` (``name`` may also be ``"A.Affine"``).

Every transform is built with ``strict=True``, so a 1.x argument name (``GaussNoise(var_limit=...)``)
is a :class:`ConfigError` naming the transform and argument instead of a warning and a silently
default transform. ``A.from_dict`` would drop ``strict`` (and ``seed``): the serialized form is
rebuilt here node by node. The seed goes to :func:`reseed`: one numpy and one Python generator that
every transform of the pipeline draws from in turn. (``Compose.set_random_seed`` gives each transform
generators of its own made from the same seed, so transforms that draw alike decide alike: in
``flips`` HorizontalFlip and VerticalFlip always fired together, a 180-degree turn, never a mirror.)

A classical sample identical to its parent (a transform whose probability check failed, or a small
rotation that nearest-neighbour resampling maps back onto the same pixels of an 8x8 image) would be
a copy recorded as a classical sample: the pipeline is applied again, up to :data:`REDRAWS` times.
"""

from __future__ import annotations

import inspect
import os
import random
import re
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augmentgan.data.types import LabeledImages, Source  # noqa: E402
from augmentgan.errors import ConfigError  # noqa: E402

PipelineSpec = Union[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]

# Label-safe defaults: small geometric changes and mild photometric ones; no flips (opt-in).
NAMED_PIPELINES: dict[str, list[dict[str, Any]]] = {
    "light": [
        {"name": "Affine", "params": {"rotate": [-8, 8], "translate_percent": [-0.04, 0.04], "scale": [0.95, 1.05], "p": 0.7}},
        {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.1, "contrast_limit": 0.1, "p": 0.5}},
    ],
    "geometric": [
        {"name": "Affine", "params": {"rotate": [-15, 15], "translate_percent": [-0.08, 0.08], "scale": [0.9, 1.1], "shear": [-6, 6], "p": 0.9}},
        {"name": "Perspective", "params": {"scale": [0.02, 0.05], "p": 0.3}},
    ],
    "photometric": [
        {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.2, "contrast_limit": 0.2, "p": 0.8}},
        {"name": "RandomGamma", "params": {"gamma_limit": [80, 120], "p": 0.5}},
        {"name": "GaussNoise", "params": {"std_range": [0.01, 0.05], "p": 0.3}},
        {"name": "GaussianBlur", "params": {"blur_limit": [3, 3], "p": 0.2}},
    ],
    # Scanned / inspected gray parts: slight misregistration, lighting drift, sensor noise, focus.
    "grayscale-scan": [
        {"name": "Affine", "params": {"rotate": [-5, 5], "translate_percent": [-0.03, 0.03], "scale": [0.97, 1.03], "p": 0.7}},
        {"name": "RandomBrightnessContrast", "params": {"brightness_limit": 0.15, "contrast_limit": 0.15, "p": 0.7}},
        {"name": "GaussNoise", "params": {"std_range": [0.01, 0.04], "p": 0.4}},
        {"name": "GaussianBlur", "params": {"blur_limit": [3, 3], "p": 0.2}},
    ],
    # Line drawings, digits, characters, binary or flat-background scans: larger shape changes, but
    # nearest-neighbour resampling (no new gray levels, no blur) and no photometric change, so the
    # synthetic images stay as sharp as the real ones and carry no "augmented" cue for a classifier
    # to learn as a class; no translation (a classifier's own random shifts cover it).
    # benchmarks/RESULTS.md, "Classical pipelines on digits": +2.2 points of macro-F1 over `light` on
    # digits-lt, +3.9 on mnist-lt.
    "strokes": [
        {"name": "Affine", "params": {"rotate": [-12, 12], "scale": [0.9, 1.1], "shear": [-8, 8], "interpolation": 0, "p": 1.0}},
    ],
    # Opt-in: only for classes whose meaning survives mirroring.
    "flips": [
        {"name": "HorizontalFlip", "params": {"p": 0.5}},
        {"name": "VerticalFlip", "params": {"p": 0.5}},
    ],
}


def _albumentations():  # noqa: ANN202 - the module
    import albumentations

    return albumentations


_TYPE_SUFFIX = re.compile(r" \[type=.*$")


def _one_line(err: Exception) -> str:
    """albumentations' (pydantic) error text as one line: ``arg: message; arg: message``."""
    text = str(err).strip()
    lines = text.splitlines()
    if len(lines) > 1 and re.match(r"\d+ validation errors? for", lines[0]):
        parts, loc = [], None
        for line in lines[1:]:
            if line.startswith("For further information") or line.strip().startswith("For further information"):
                continue
            if not line.startswith(" "):
                loc = line.strip()
            elif loc is not None:
                parts.append(f"{loc}: {_TYPE_SUFFIX.sub('', line.strip())}")
                loc = None
        return "; ".join(parts) or lines[0]
    return " ".join(text.split())


def _transform_class(name: str, where: str):  # noqa: ANN202 - a transform class
    A = _albumentations()
    from albumentations.core.serialization import SERIALIZABLE_REGISTRY, shorten_class_name

    short = shorten_class_name(str(name)).removeprefix("A.")
    cls = SERIALIZABLE_REGISTRY.get(short) or getattr(A, short, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{where}: unknown albumentations transform {name!r} (albumentations {A.__version__}); see https://albumentations.ai/docs/ for the names")
    return cls


def _construct(cls: type, params: dict[str, Any], where: str):  # noqa: ANN202 - a transform
    name = cls.__name__
    if "InitSchema" in vars(cls) or hasattr(cls, "InitSchema"):
        params = {**params, "strict": True}
    else:
        valid = set(inspect.signature(cls.__init__).parameters) - {"self"}
        unknown = sorted(set(params) - valid)
        if unknown:
            raise ConfigError(f"{where}: {name}: unknown argument(s) {unknown} (valid: {sorted(valid)})")
    try:
        return cls(**params)
    except (ValueError, TypeError) as err:
        msg = _one_line(err)
        if "are not valid for transform" in msg:
            valid = sorted(set(inspect.signature(cls.__init__).parameters) - {"self", "strict"})
            msg += f" in albumentations 2 (a 1.x name?); valid: {valid}"
        raise ConfigError(f"{where}: {name}: {msg}") from None


def _from_serialized(node: Mapping[str, Any], where: str):  # noqa: ANN202 - a transform
    """Rebuild one node of ``A.to_dict`` output with strict validation (``A.from_dict`` drops it)."""
    if "__class_fullname__" not in node:
        raise ConfigError(f"{where}: a serialized transform needs '__class_fullname__' (the output of A.to_dict), got keys {sorted(node)}")
    name = node["__class_fullname__"]
    params = {k: v for k, v in node.items() if k != "__class_fullname__"}
    if "transforms" in params:
        params["transforms"] = [_from_serialized(t, f"{where}.{name}[{i}]") for i, t in enumerate(params["transforms"])]
    return _construct(_transform_class(name, where), params, where)


def _from_list(items: Sequence[Any], where: str) -> list[Any]:
    transforms = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if isinstance(item, str):
            transforms.append(_construct(_transform_class(item, here), {}, here))
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"{here}: each transform is {{name: ..., params: {{...}}}}, got {item!r}")
        if "__class_fullname__" in item:
            transforms.append(_from_serialized(item, here))
            continue
        extra = sorted(set(item) - {"name", "params"})
        if "name" not in item or extra:
            raise ConfigError(f"{here}: each transform is {{name: ..., params: {{...}}}}, got keys {sorted(item)}")
        params = dict(item.get("params") or {})
        cls = _transform_class(item["name"], here)
        if "transforms" in params:  # OneOf / SomeOf / Sequential
            params["transforms"] = _from_list(params["transforms"], f"{here}.{cls.__name__}")
        transforms.append(_construct(cls, params, here))
    return transforms


def build_pipeline(spec: PipelineSpec, *, seed: int, strict: bool = True, where: str = "classical.pipeline"):  # noqa: ANN201 - A.Compose
    """An ``A.Compose`` from a name, a serialized dict or a list of ``{name, params}``, seeded.

    ``strict=False`` is accepted only to mirror albumentations; augmentgan always builds strict
    (a wrong argument must fail, not be ignored) and refuses ``strict=False``.
    """
    if not strict:
        raise ConfigError(f"{where}: pipelines are always built with strict=True (a 1.x argument would otherwise be silently ignored)")
    A = _albumentations()
    if isinstance(spec, str):
        names = [s.strip() for s in spec.split("+") if s.strip()]
        unknown = [n for n in names if n not in NAMED_PIPELINES]
        if not names or unknown:
            raise ConfigError(f"{where}: unknown named pipeline {spec!r}; choose from {sorted(NAMED_PIPELINES)} (join with '+', e.g. light+flips)")
        transforms = _from_list([t for n in names for t in NAMED_PIPELINES[n]], where)
    elif isinstance(spec, Mapping):
        node = spec.get("transform", spec)
        if not isinstance(node, Mapping):
            raise ConfigError(f"{where}: expected the output of A.to_dict (a 'transform' mapping), got {type(node).__name__}")
        built = _from_serialized(node, where)
        transforms = list(built.transforms) if isinstance(built, A.Compose) else [built]
        if isinstance(built, A.Compose) and built.p != 1.0:
            transforms = [A.Sequential(transforms, p=built.p)]
    elif isinstance(spec, Sequence):
        transforms = _from_list(spec, where)
    else:
        raise ConfigError(f"{where}: give a pipeline name, an A.to_dict mapping or a list of {{name, params}}, got {type(spec).__name__}")
    compose = A.Compose(transforms, seed=int(seed), strict=True)
    reseed(compose, int(seed))
    return compose


REDRAWS = 10
"""How many more times a pipeline is applied to an image it returned unchanged (the last try is kept)."""


def reseed(pipeline: Any, seed: int) -> None:
    """Seed ``pipeline`` with one numpy and one Python generator shared by all its transforms (nested
    compositions included), so that their draws are independent of each other."""
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))


def augment_class(data: LabeledImages, class_index: int, n: int, pipeline: Any, rng: np.random.Generator, *, out: Optional[np.ndarray] = None) -> LabeledImages:
    """``n`` augmented copies of the real images of ``class_index`` (source classical), written into
    ``out`` (``(n, H, W, C)`` uint8, e.g. the class's rows of a larger array) when given.

    Parents are taken round-robin over a permutation drawn from ``rng``, so every image of the
    class is used ``n // k`` or ``n // k + 1`` times; ``parent`` is the index in ``data``. The
    pipeline is reseeded from ``rng``, so the result depends only on ``rng``, not on what the
    pipeline did before. Grayscale (C=1) images keep their channel axis. An output identical to its
    parent is drawn again (up to :data:`REDRAWS` times).
    """
    h, w, c = data.image_shape
    members = np.flatnonzero(data.labels == class_index)
    if n <= 0:
        return LabeledImages(np.zeros((0, h, w, c), np.uint8), np.zeros(0, np.int64), data.class_names, np.zeros(0, np.uint8), np.zeros(0, np.int64))
    if len(members) == 0:
        raise ConfigError(f"class {data.class_names[class_index]!r} has no real image to augment; give it images or leave it out of the plan")
    order = members[rng.permutation(len(members))]
    parents = order[np.arange(n) % len(order)]
    reseed(pipeline, int(rng.integers(2**31 - 1)))
    if out is None:
        out = np.empty((n, h, w, c), np.uint8)
    elif out.shape != (n, h, w, c) or out.dtype != np.uint8:
        raise ValueError(f"out must be a ({n}, {h}, {w}, {c}) uint8 array, got {out.dtype} {out.shape}")
    _apply(pipeline, data.images, parents, out, data.class_names, np.broadcast_to(class_index, n))  # labels for the error message only: no array
    return LabeledImages(out, np.full(n, class_index, np.int64), data.class_names, np.full(n, Source.classical.value, np.uint8), parents.astype(np.int64))


def augment_each(data: LabeledImages, pipeline: Any, rng: np.random.Generator) -> LabeledImages:
    """``data`` with every image passed once through ``pipeline`` (labels, sources and parents kept):
    a classical pass on top of other synthetic images (``latent_smote.classical``). The pipeline is
    reseeded from ``rng``, so the result depends only on ``rng``."""
    if len(data) == 0:
        return data
    reseed(pipeline, int(rng.integers(2**31 - 1)))
    out = np.empty_like(data.images)
    _apply(pipeline, data.images, np.arange(len(data)), out, data.class_names, data.labels)
    return LabeledImages(out, data.labels, data.class_names, data.source, data.parent)


def _apply(pipeline: Any, images: np.ndarray, rows: np.ndarray, out: np.ndarray, class_names: Sequence[str], labels: np.ndarray) -> None:
    """``out[i] = pipeline(images[rows[i]])``, refusing a transform that changes the size or dtype
    (``labels[i]``, the class of output row i, names it in the error)."""
    h, w, c = images.shape[1:]
    for i, p in enumerate(rows):
        source = images[p]
        for _ in range(REDRAWS + 1):  # an unchanged image would be a copy, not a classical sample
            img = pipeline(image=source)["image"]
            if img.ndim == 2:
                img = img[..., None]
            if img.shape != source.shape or not np.array_equal(img, source):
                break
        if img.shape != (h, w, c) or img.dtype != np.uint8:
            raise ConfigError(
                f"classical pipeline turned a {h}x{w}x{c} uint8 image of class {class_names[int(labels[i])]!r} into {img.dtype} {'x'.join(map(str, img.shape))}; "
                "use transforms that keep the size and dtype (or end with Resize)"
            )
        out[i] = img
