"""``GANOverSampler``: augmentgan's expansion as an imbalanced-learn sampler.

``GANOverSampler(...).fit_resample(X, y)`` runs :func:`augmentgan.pipeline.expand_data` on image
arrays and returns ``(X_resampled, y_resampled)`` the way imbalanced-learn's over-samplers do: the
rows of ``X`` first, unchanged, then the new rows (GAN, classical, SMOTE, copies, in that order).
It works as a step of :class:`imblearn.pipeline.Pipeline`; ``sample_source_`` and
``sample_parent_`` say where every returned row came from.

X layouts: ``(N, H, W)``, ``(N, H, W, C)`` with C in {1, 3}, or flattened ``(N, H*W*C)`` (as
``images.reshape(len(images), -1)`` gives) with ``image_shape=(H, W)`` or ``(H, W, C)``; a
flattened X without ``image_shape`` is read as square gray (F = s*s) or square RGB (F = 3*s*s)
images. Pixel values follow the readers' rule (README "DATA"): uint8 as is, integers in 0..255
cast (0..65535 scaled as 16-bit), floats all in [0, 1] scaled by 255, other floats in [0, 255]
rounded; anything else is refused. New rows are returned in X's dtype and scale (a float X in
[0, 1] gets new rows in [0, 1]).
"""

from __future__ import annotations

import math
import numbers
import os
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_target_type
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source
from augmentgan.errors import ConfigError, DataError, ImageArrayError
from augmentgan.progress import ProgressCallback
from augmentgan.recipe import SMOTE_METHOD_NAMES

__all__ = ["GANOverSampler"]

_PLACEHOLDER = "(in memory: GANOverSampler)"  # data.path / output.path: expand_data reads neither (and the recipe_ shows them)


def _not_images(X: Any) -> None:
    """ImageArrayError for X that cannot hold images whatever its values: text, one dimension, NaN or infinity."""
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        return  # sparse: scikit-learn's check says it
    arr = np.asarray(X)
    if arr.dtype.kind in "US":
        raise ImageArrayError(f"X has dtype {arr.dtype}; images need integer or float pixels")
    if arr.ndim < 2:
        raise ImageArrayError(f"X has shape {arr.shape}; pass (N, H, W), (N, H, W, C) or flattened (N, H*W*C) images")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ImageArrayError("X contains NaN or infinity; images need finite pixel values")


def _pixel_factor(X: np.ndarray) -> float:
    """``f`` such that ``round(X * f)`` are the uint8 pixels (the readers' rule); ImageArrayError if none."""
    if X.dtype == np.uint8 or X.size == 0:
        return 1.0
    if X.dtype == np.bool_:
        raise ImageArrayError("X is boolean; pass images as uint8 (0 and 255) or floats in [0, 1]")
    lo, hi = X.min(), X.max()
    if lo < 0:
        raise ImageArrayError(f"Negative values in data: X has pixel values down to {lo:g}; images need 0..255 or [0, 1]: rescale X (this sampler makes images, not tabular rows)")
    if np.issubdtype(X.dtype, np.integer):
        if lo >= 0 and hi <= 255:
            return 1.0
        if lo >= 0 and hi <= 65535:
            return 1.0 / 257.0
        raise ImageArrayError(f"X has integer pixel values {lo}..{hi}; images need 0..255 (or 0..65535): rescale X")
    if np.issubdtype(X.dtype, np.floating):
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageArrayError("X contains NaN or infinity; images need finite pixel values")
        if lo >= 0 and hi <= 1:
            return 255.0
        if lo >= 0 and hi <= 255:
            return 1.0
        raise ImageArrayError(f"X has float values {lo:g}..{hi:g}; images need [0, 1] or [0, 255]: rescale X (this sampler makes images, not tabular rows)")
    raise ImageArrayError(f"X has dtype {X.dtype}; images need integer or float pixels")


def _image_shape(X: np.ndarray, image_shape: Optional[Sequence[int]]) -> tuple[int, int, int]:
    """(H, W, C) of the images in X (see the module docstring)."""
    if X.ndim in (3, 4):
        shape = tuple(int(s) for s in X.shape[1:]) + ((1,) if X.ndim == 3 else ())
        if shape[2] not in (1, 3):
            raise ImageArrayError(f"X has shape {X.shape}; images need (N, H, W) or (N, H, W, C) with C = 1 or 3 (channels last)")
        if image_shape is not None and tuple(image_shape) not in (shape, shape[:2]):
            raise ImageArrayError(f"image_shape={tuple(image_shape)} does not match X's images {shape}; leave image_shape out for N-D X")
        return shape  # type: ignore[return-value]
    if X.ndim != 2:
        raise ImageArrayError(f"X has shape {X.shape}; pass (N, H, W), (N, H, W, C) or flattened (N, H*W*C) images")
    features = int(X.shape[1])
    if image_shape is None:
        for channels in (1, 3):
            side = math.isqrt(features // channels)
            if side > 0 and side * side * channels == features:
                return side, side, channels
        raise ImageArrayError(f"X has {features} features per row, not a square gray or RGB image; pass image_shape=(H, W) or (H, W, C)")
    shape = tuple(int(s) for s in image_shape) + ((1,) if len(image_shape) == 2 else ())
    if len(shape) != 3 or shape[2] not in (1, 3) or min(shape) < 1:
        raise ImageArrayError(f"image_shape={tuple(image_shape)}: use (H, W) or (H, W, C) with C = 1 or 3")
    if shape[0] * shape[1] * shape[2] != features:
        raise ImageArrayError(f"image_shape={tuple(image_shape)} has {shape[0] * shape[1] * shape[2]} pixels, X has {features} features per row")
    return shape  # type: ignore[return-value]


class GANOverSampler(BaseOverSampler):
    """Over-sample image classes with augmentgan: a class-conditional GAN, classical augmentation
    (albumentations), SMOTE and copies, mixed as a recipe's ``plan.mix`` says.

    The parameters mirror a recipe (README "Recipes"); ``fit_resample`` builds that recipe and
    runs :func:`augmentgan.pipeline.expand_data` on ``(X, y)``: nothing is written except the GAN
    run cache (``cache``, ``$AUGMENTGAN_CACHE_DIR``).

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default='auto'
        imbalanced-learn's forms: ``'auto'`` / ``'not majority'`` (every class up to the majority
        count), ``'minority'``, ``'not minority'``, ``'all'``, a dict of final counts per class
        label (each >= the current count), a float (binary y only: minority / majority after
        resampling), or a callable ``y -> dict``. It becomes the recipe's ``plan.target``.
    image_shape : tuple, default=None
        ``(H, W)`` or ``(H, W, C)`` of the images when X is flattened (N, H*W*C).
    preset, steps, batch, gan_overrides, gan_run, device :
        ``gan.preset``, ``gan.steps``, ``gan.batch``, ``gan.overrides`` (a nested dict),
        ``gan.run`` (reuse a trained run folder or .pt instead of training) and ``gan.device``.
    truncation, filters :
        ``generate.truncation`` and ``generate.filters``.
    mix : dict or 'auto', default=None
        ``plan.mix``: the share of each class's deficit per source (``gan``, ``classical``,
        ``smote``, ``copy``); None = the recipe default. A mix without ``gan`` trains nothing.
    classical : str, list or dict, default='light'
        ``classical.pipeline``: a named pipeline, albumentations' ``A.to_dict`` output, or a list.
    smote_method, k_neighbors :
        ``smote.method`` and ``smote.k_neighbors``.
    random_state : int, RandomState or None, default=None
        An int is the recipe's ``seed`` (0 <= seed < 2**32): the same int gives the same output
        and reuses the cached GAN. None or a RandomState draw a seed.
    cache : bool, default=True
        ``gan.cache``: reuse a GAN trained on the same rows with the same settings.
    callback : callable, default=None
        Progress callback (:class:`augmentgan.progress.ProgressEvent`), as for ``expand``.
    recipe_overrides : dict, default=None
        Any other recipe key by its dotted path, applied last as ``--set`` does, e.g.
        ``{"gan.eval_every": 0, "gan.precision": "fp32", "generate.max_tries": 20}``.

    Attributes
    ----------
    sampling_strategy_ : dict
        Class label -> number of samples added (imbalanced-learn's meaning).
    sample_source_ : ndarray of str, shape (n_samples_resampled,)
        Where each returned row came from: ``real``, ``gan``, ``classical``, ``smote``, ``copy``.
    sample_parent_ : ndarray of int64, shape (n_samples_resampled,)
        The row of X a derived row was made from (classical, copy; the nearer end for SMOTE),
        -1 for real rows and GAN samples.
    recipe_ : dict
        The resolved recipe the call ran, every key (``seed`` included; ``data.path`` and
        ``output.path`` are placeholders, unused by ``expand_data``).
    plan_ : augmentgan.planner.Plan
        Per class: target and samples per source.
    notes_ : list of str
        What the expansion decided (sources moved, GAN cached...).
    gan_run_ : pathlib.Path or None
        The GAN run used, when the mix has a GAN share.
    n_features_in_ : int
        ``X.shape[1]`` (the number of features for a flattened X).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (when X is a DataFrame with string column names).
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "image_shape": [tuple, list, None],
        "preset": [str],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch": [Interval(numbers.Integral, 1, None, closed="left")],
        "gan_overrides": [dict, None],
        "gan_run": [str, os.PathLike, None],
        "device": [str],
        "truncation": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"}), dict, None],
        "filters": [list, tuple, None],
        "mix": [dict, StrOptions({"auto"}), None],
        "classical": [str, list, dict],
        "smote_method": [StrOptions(set(SMOTE_METHOD_NAMES))],
        "k_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "cache": ["boolean"],
        "callback": [callable, None],
        "recipe_overrides": [dict, None],
    }

    def __init__(
        self,
        *,
        sampling_strategy: Union[float, str, Mapping[Any, int], Callable[..., Mapping[Any, int]]] = "auto",
        image_shape: Optional[Sequence[int]] = None,
        preset: str = "small-data",
        steps: int = 2000,
        batch: int = 64,
        gan_overrides: Optional[dict[str, Any]] = None,
        gan_run: Optional[Union[str, os.PathLike[str]]] = None,
        device: str = "auto",
        truncation: Union[None, float, str, dict[Any, Optional[float]]] = None,
        filters: Optional[Sequence[Union[str, dict[str, Any]]]] = None,
        mix: Union[None, str, dict[str, float]] = None,
        classical: Union[str, list[Any], dict[str, Any]] = "light",
        smote_method: str = "smote",
        k_neighbors: int = 5,
        random_state: Union[None, int, np.random.RandomState] = None,
        cache: bool = True,
        callback: Optional[ProgressCallback] = None,
        recipe_overrides: Optional[dict[str, Any]] = None,
    ) -> None:
        super().__init__(sampling_strategy=sampling_strategy)
        self.image_shape = image_shape
        self.preset = preset
        self.steps = steps
        self.batch = batch
        self.gan_overrides = gan_overrides
        self.gan_run = gan_run
        self.device = device
        self.truncation = truncation
        self.filters = filters
        self.mix = mix
        self.classical = classical
        self.smote_method = smote_method
        self.k_neighbors = k_neighbors
        self.random_state = random_state
        self.cache = cache
        self.callback = callback
        self.recipe_overrides = recipe_overrides

    # --- imbalanced-learn hooks ---------------------------------------------------------------
    def _check_X_y(self, X: Any, y: Any, accept_sparse: Any = None) -> tuple[np.ndarray, np.ndarray, bool]:
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        if getattr(X, "sparse", None) is not None and hasattr(X, "columns"):  # a pandas DataFrame of sparse columns: dense pixels
            # (imbalanced-learn's ArraysTransformer gives the output the input's sparse column dtypes back)
            X = X.sparse.to_dense()
        _not_images(X)  # before scikit-learn's own checks, whose plain ValueErrors an ImageArrayError handler would miss
        X, y = validate_data(self, X=X, y=y, reset=True, accept_sparse=False, allow_nd=True)
        _pixel_factor(X)  # fit checks the pixel values too (ImageArrayError, a ValueError)
        return X, y, binarize_y

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            seed = int(self.random_state)
            if not 0 <= seed < 2**32:
                raise ValueError(f"random_state={seed}: an int seed must be in [0, 2**32)")
            return seed
        return int(check_random_state(self.random_state).randint(0, 2**31 - 1))

    def _recipe(self, class_counts: Mapping[str, int], seed: int) -> dict[str, Any]:
        """The recipe (a mapping) this sampler runs for classes with these final counts."""
        gan: dict[str, Any] = {
            "preset": self.preset, "steps": self.steps, "batch": self.batch, "overrides": dict(self.gan_overrides or {}),
            "device": self.device, "cache": self.cache,
        }
        if self.gan_run is not None:
            gan["run"] = os.fspath(self.gan_run)
        plan: dict[str, Any] = {"target": dict(class_counts)}
        if self.mix is not None:
            plan["mix"] = self.mix if isinstance(self.mix, str) else dict(self.mix)
        return {
            "seed": seed,
            "data": {"path": _PLACEHOLDER},
            "gan": gan,
            "generate": {"truncation": self.truncation, "filters": list(self.filters or [])},
            "classical": {"pipeline": self.classical},
            "smote": {"method": self.smote_method, "k_neighbors": self.k_neighbors},
            "plan": plan,
            "output": {"path": _PLACEHOLDER},
        }

    def _fit_resample(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from augmentgan.pipeline import expand_data
        from augmentgan.recipe import resolve_recipe

        shape = _image_shape(X, self.image_shape)
        factor = _pixel_factor(X)
        pixels = X.reshape(len(X), *shape)
        if pixels.dtype != np.uint8:
            pixels = np.clip(np.rint(pixels.astype(np.float64) * factor), 0, 255).astype(np.uint8)
        classes, y_index = np.unique(y, return_inverse=True)
        names = tuple(str(c) for c in classes)
        if len(set(names)) != len(names):
            names = tuple(f"{i}:{c!r}" for i, c in enumerate(classes))
        data = LabeledImages(pixels, y_index.reshape(-1), names)
        counts = data.class_counts()
        targets = {}
        for label, add in self.sampling_strategy_.items():
            index = int(np.flatnonzero(classes == label)[0])
            if add > 0:
                targets[names[index]] = int(counts[index]) + int(add)

        spec = resolve_recipe(self._recipe(targets, self._seed()), dict(self.recipe_overrides or {}), set_name="recipe_overrides")
        recipe = spec.recipe
        if recipe.plan.undersample:
            raise ConfigError("recipe_overrides plan.undersample: an over-sampler keeps every row of X; undersample with imbalanced-learn's "
                              "under-samplers (e.g. RandomUnderSampler) before or after it in a pipeline")
        done = expand_data(data, spec, callback=self.callback)
        expanded, n = done.data, len(X)
        if len(expanded) < n or np.any(expanded.source[:n] != 0) or np.any(expanded.labels[:n] != data.labels):
            raise DataError("internal check: the expansion did not keep X's rows first and in order; this is a bug, please report it")
        self.recipe_ = recipe.model_dump(mode="json")
        self.plan_ = done.plan
        self.notes_ = list(done.notes)
        self.gan_run_ = done.gan_run
        self.sample_source_ = np.asarray(SOURCE_NAMES)[expanded.source]
        self.sample_parent_ = expanded.parent.copy()

        new = expanded.images[n:]
        if X.dtype == np.uint8:
            new_rows: np.ndarray = new
        elif np.issubdtype(X.dtype, np.integer):  # clipped to X's dtype: int8 / int16 X wrapped 128..255 round to negatives
            info = np.iinfo(X.dtype)
            new_rows = np.clip(np.rint(new.astype(np.float64) / factor), info.min, info.max).astype(X.dtype)
        else:
            new_rows = (new.astype(np.float64) / factor).astype(X.dtype)
        new_rows = new_rows.reshape(len(new), *X.shape[1:])
        copies = np.flatnonzero(expanded.source[n:] == Source.copy.value)
        new_rows[copies] = X[expanded.parent[n:][copies]]  # a copy is its parent row exactly, not a round trip through uint8
        X_res = np.concatenate([X, new_rows], axis=0)
        y_res = np.concatenate([y, classes[expanded.labels[n:]]]).astype(y.dtype, copy=False)
        added = np.bincount(expanded.labels[n:], minlength=len(classes))
        self.sampling_strategy_ = OrderedDict(  # what was added, after the plan's caps and overrides (imblearn's: what was asked)
            (label, int(k)) for label, k in zip(classes, added) if label in self.sampling_strategy_ or k > 0
        )
        return X_res, y_res

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # images are dense
        tags.input_tags.positive_only = True  # pixel values
        tags.input_tags.three_d_array = True  # (N, H, W) and (N, H, W, C) images
        return tags
