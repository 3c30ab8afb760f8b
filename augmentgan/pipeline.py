"""``expand(recipe)``: the whole expansion, from a recipe to a balanced dataset folder.

Stages (each a plain library call): load the data -> split off a stratified, seeded holdout ->
plan per-class targets and sources -> train the GAN (or reuse a cached run, a given run or a
checkpoint) -> sample it (and/or encode the real images and run SMOTE between their latent
codes: latent-smote) -> classical copies -> SMOTE -> random copies -> write everything.

Output folder (written under a temporary name and renamed into place at the very end, so a
failure at any stage leaves nothing under ``output.path``)::

    OUT/train.h5 | train/     real training images first, then gan, classical, smote, copy, latent-smote
                              samples (with GAN rows: extra/truncation and extra/z_index as generate writes
                              them; with latent-smote: extra/parent2, the second parent; -1 / NaN elsewhere)
    OUT/holdout.h5 | holdout/ the untouched holdout (never augmented, never seen by the GAN)
    OUT/recipe.yaml           the resolved recipe (every key, defaults included)
    OUT/lock.json             input fingerprints, sha256 of the output arrays, GAN checkpoint,
                              package versions (no timestamp: the same recipe gives the same lock)
    OUT/counts.csv            per class: real, classical, smote, gan, copy, latent-smote, total
    OUT/report.html           self-contained report: class balance, real vs synthetic grids, nearest
                              real neighbours, truncation sweep, loss curves, GAN sample metrics

``parent`` of a derived sample indexes the real rows at the start of the training set.

Reads: the recipe is resolved once (:func:`augmentgan.recipe.resolve_recipe`: validated, checked,
its GAN configuration and YAML text derived) and that :class:`~augmentgan.recipe.ResolvedRecipe`
is what every stage receives; the dataset is read once; the GAN checkpoint is read once
(:func:`augmentgan.gan.checkpoint.read_generator`) and generation, latent-smote, the auto mix's
GAN pool and the report's truncation sweep all build from that read.

Seeds: ``numpy.random.SeedSequence(recipe.seed).spawn(8)`` (:func:`_streams`) gives the holdout split,
the GAN training, the sampling, classical augmentation, SMOTE, copies/undersampling, the auto mix
and latent-smote their own streams.
The same recipe gives the same arrays (HDF5 files differ only in their ``created`` attribute).

GAN cache: a run is trained into ``CACHE/runs/<key>`` (CACHE: :func:`augmentgan.cache.cache_root`,
``$AUGMENTGAN_CACHE_DIR``, ``$XDG_CACHE_HOME/augmentgan`` or ``~/.cache/augmentgan``), the key
hashing the training split's fingerprint, the resolved GAN config and the training settings; a
later recipe with the same key reuses its final checkpoint (``result.gan_cached`` and a note say
so). The entry is locked while it is trained and sampled: a concurrent expansion with the same
key waits, then reuses it. A damaged cached checkpoint is set aside and the run is resumed from
its newest intact checkpoint (see :func:`_gan_run`).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Optional, ParamSpec, Union

import numpy as np

from augmentgan.cache import cache_root, entry_lock, mark_used
from augmentgan.data.arrays import row_keys
from augmentgan.data.atomic import check_not_over, check_output, staged_output
from augmentgan.data.folder import class_dirnames
from augmentgan.data.io import load, save
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, LabeledParts, Source
from augmentgan.errors import AugmentganError, ConfigError, DataError, Flag, GenerationError, Terms, flag_name
from augmentgan.gan.checkpoint import GeneratorCheckpoint, read_generator
from augmentgan.planner import GAN_SOURCES, SOURCES, Plan, make_plan
from augmentgan.progress import ProgressCallback, report
from augmentgan.recipe import Recipe, ResolvedRecipe, in_recipe_terms, recipe_terms, resolve_recipe

if TYPE_CHECKING:
    from augmentgan.automix import LatentFactory

RecipeLike = Union[str, os.PathLike, Mapping[str, Any], Recipe, ResolvedRecipe]
STAGES = ("load", "split", "plan", "gan", "generate", "classical", "smote", "copy", "write")
DATA_STAGES = STAGES[2:-1]  # the steps of expand_data (plan .. copy): expand() loads and splits before them and writes after
_PACKAGES = ("augmentgan", "numpy", "torch", "torchvision", "albumentations", "imbalanced-learn", "scikit-learn", "h5py", "pydantic")

# Rough CPU seconds per pass (one D step or the G step) at 32x32, batch 64, width 64 on 2 cores,
# scaled by (size/32)^2, batch/64 and width/64 (linear: small models are overhead-bound, not
# FLOP-bound). Calibrated on 2026-11-21 from 16x16 runs on 2 Xeon cores: dcgan width 32
# 0.093 s/pass, biggan width 16 0.196 s/pass; resnet and sagan are set from biggan (similar
# residual blocks), not measured. The dry run labels the result as an estimate.
_CPU_SECONDS_PER_D_STEP = {"dcgan": 0.75, "resnet": 2.5, "sagan": 3.0, "biggan": 3.1}


@dataclass
class ExpandResult:
    plan: Plan
    dry_run: bool
    out: Optional[Path]
    train: Optional[Path]
    holdout: Optional[Path]
    counts: dict[str, dict[str, int]]  # class -> source -> samples in the training set (planned in a dry run)
    holdout_counts: dict[str, int]
    notes: list[str] = field(default_factory=list)
    gan_run: Optional[Path] = None
    gan_cached: Optional[bool] = None
    lock: dict[str, Any] = field(default_factory=dict)
    estimates: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    mix_decision: Optional[Any] = None  # augmentgan.automix.MixDecision with plan.mix: auto

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "out": None if self.out is None else str(self.out),
            "train": None if self.train is None else str(self.train),
            "holdout": None if self.holdout is None else str(self.holdout),
            "plan": self.plan.to_dict(),
            "counts": self.counts,
            "holdout_counts": self.holdout_counts,
            "notes": list(self.notes),
            "gan_run": None if self.gan_run is None else str(self.gan_run),
            "gan_cached": self.gan_cached,
            "lock": self.lock,
            "estimates": self.estimates,
            "seconds": self.seconds,
            "mix_decision": None if self.mix_decision is None else self.mix_decision.to_dict(),
        }


# --- small helpers ------------------------------------------------------------------------------
def cache_dir() -> Path:
    """The cache root (:func:`augmentgan.cache.cache_root`): ``$AUGMENTGAN_CACHE_DIR``, ``$XDG_CACHE_HOME/augmentgan`` or ``~/.cache/augmentgan``."""
    return cache_root()


_STREAMS = ("split", "gan", "gen", "classical", "smote", "copy", "auto", "latent")


def _streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """The recipe's random stream of each stage, by name (spawned in this order: a stream added at the end leaves the others as they were)."""
    return dict(zip(_STREAMS, np.random.SeedSequence(seed).spawn(len(_STREAMS))))


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, np.uint32)[0])


def _versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def arrays_sha256(data: Union[LabeledImages, LabeledParts]) -> str:
    """sha256 of the images, labels, source and parent arrays (what a training run reads); of
    :class:`LabeledParts` the same as of their concatenation, read part by part."""
    h = hashlib.sha256()
    parts = data.parts if isinstance(data, LabeledParts) else (data,)
    for name in ("images", "labels", "source", "parent"):
        arrays = [getattr(p, name).astype("<i8") if name in ("labels", "parent") else getattr(p, name) for p in parts]
        h.update(np.asarray((sum(len(a) for a in arrays), *arrays[0].shape[1:]), np.int64).tobytes())
        for array in arrays:
            h.update(np.ascontiguousarray(array).data)
    h.update("\0".join(data.class_names).encode("utf-8"))
    return h.hexdigest()


def split_holdout(data: LabeledImages, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Stratified holdout: (train indices, holdout indices, notes), both sorted.

    Each class with n >= 2 images gives ``round(fraction * n)`` of them, at least 1 and at most
    n - 1; a class with one image keeps it for training (noted). A drawn holdout image identical
    to a training image (duplicates in the data, of any class) goes back to training (noted): the
    holdout holds no image the training set has.
    """
    train, hold, notes = [], [], []
    for c, name in enumerate(data.class_names):
        members = np.flatnonzero(data.labels == c)
        n = len(members)
        if fraction <= 0 or n == 0:
            train.append(members)
            continue
        if n == 1:
            notes.append(f"class {name!r} has 1 image: it stays in the training set, the holdout has none of it")
            train.append(members)
            continue
        k = min(n - 1, max(1, int(round(fraction * n))))
        chosen = rng.permutation(members)
        hold.append(chosen[:k])
        train.append(chosen[k:])
    train_idx, hold_idx = np.sort(np.concatenate(train)), np.sort(np.concatenate(hold)) if hold else np.zeros(0, np.int64)
    if len(hold_idx):
        seen = set(row_keys(data.images[i] for i in train_idx))
        twins = np.array([key in seen for key in row_keys(data.images[i] for i in hold_idx)], bool)
        if twins.any():  # scoring on an image the classifier trained on reads optimistic
            notes.append(f"{int(twins.sum())} holdout image(s) were identical to training images (duplicates in the data) and stay in the training "
                         f"set: the holdout has {len(hold_idx) - int(twins.sum())} images, none of them a training image")
            train_idx, hold_idx = np.sort(np.concatenate([train_idx, hold_idx[twins]])), hold_idx[~twins]
    return train_idx, hold_idx, notes


SPLIT_CHUNK = 1024
"""Training rows moved at once by :func:`_split_in_place`."""


def _split_in_place(data: LabeledImages, train_idx: np.ndarray, hold_idx: np.ndarray) -> tuple[LabeledImages, LabeledImages]:
    """(train, holdout) rows of ``data`` as real samples without parents, holding one copy of its images.

    The holdout rows are copied out; the training rows (sorted, so each moves to the same or a lower
    position and a chunk never overwrites a row a later chunk still reads) are moved forward inside
    ``data``'s own image array, a chunk at a time, and ``train`` views its first rows. When the two
    index sets cover every row, the holdout rows are then written back into the freed tail and
    ``holdout`` views it (their copy is dropped: one copy in all, not 1.1). ``data``'s images are
    overwritten: call it only on data nothing else reads (:func:`expand` on what it loaded).
    """
    hold_images = data.images[hold_idx]
    images = data.images
    if not (images.flags.writeable and images.flags.c_contiguous):
        return LabeledImages(images[train_idx], data.labels[train_idx], data.class_names), LabeledImages(hold_images, data.labels[hold_idx], data.class_names)
    for start in range(0, len(train_idx), SPLIT_CHUNK):
        rows = train_idx[start:start + SPLIT_CHUNK]
        if rows[0] != start or rows[-1] != start + len(rows) - 1:  # sorted and distinct: else already in place
            images[start:start + len(rows)] = images[rows]
    n = len(train_idx)
    if n + len(hold_idx) == len(images):  # a partition of the rows: the tail is exactly the holdout's size
        images[n:] = hold_images
        hold_images = images[n:]
    return LabeledImages(images[:n], data.labels[train_idx], data.class_names), LabeledImages(hold_images, data.labels[hold_idx], data.class_names)


def _empty(like: LabeledImages) -> LabeledImages:
    return like[np.zeros(0, np.int64)]


def _round_robin(members: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    order = members[rng.permutation(len(members))]
    return order[np.arange(n) % len(order)]


def _gan_train_config(recipe: Recipe, seed: int) -> Any:
    from augmentgan.gan.trainer import TrainConfig

    g = recipe.gan
    return TrainConfig(
        steps=g.steps, batch=g.batch, seed=seed, device=g.device, precision=g.precision, img_size=g.img_size, fit=g.fit,
        sample_every=0, ckpt_every=max(g.steps // 4, 1), log_every=max(min(50, g.steps), 1), eval_every=g.eval_every,
    )


def _images_sha256(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes() + repr(images.shape).encode()).hexdigest()


GAN_CACHE_VERSION = 2
"""Part of every cached GAN run's key: raise it when a change to training, monitoring or checkpoint choice
would make a run trained now differ from one trained before (2: progressive growing's best.pt chosen on
the images its checkpoint draws, unrolled updates with transitional conditioning, precision resolved)."""


def gan_cache_key(train: LabeledImages, gan_cfg: Any, train_cfg: Any, unlabeled: Optional[np.ndarray] = None,
                  train_on: Optional[Mapping[str, Any]] = None) -> str:
    """Data fingerprint + resolved GAN config + training settings (not the device, but the precision it
    resolves ``auto`` to) [+ unlabeled images] [+ what the GAN's training set adds to ``train``,
    :func:`train_on_key`] + :data:`GAN_CACHE_VERSION` -> hex key."""
    settings = train_cfg.model_dump(mode="json", exclude={"device", "sample_every", "sample_per_class", "ckpt_every", "log_every", "keep_last"})
    if settings.get("precision") == "auto":  # bf16 and fp32 train different weights: the key names what this machine trains in
        from augmentgan.gan.gan import resolve_device
        from augmentgan.gan.precision import resolve_precision

        settings["precision"] = resolve_precision("auto", resolve_device(train_cfg.device))[0]
    gan = gan_cfg.model_dump(mode="json")
    if gan.get("bigan") == type(gan_cfg.bigan)().model_dump(mode="json"):  # off at its defaults: the keys of runs cached before the section existed
        del gan["bigan"]
    key = {"data": train.fingerprint(), "gan": gan, "train": settings, "version": GAN_CACHE_VERSION}
    if unlabeled is not None:
        key["unlabeled"] = _images_sha256(unlabeled)
    if train_on is not None:
        key["train_on"] = dict(train_on)
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


_TRAIN_ON_STREAM = 0x7261696E  # the classical fill of gan.train_on classical: its own stream under the GAN's seed


def _fill_counts(train: LabeledImages) -> dict[int, int]:
    """``gan.train_on: classical``'s fill: per class with images, how many it lacks to the largest class."""
    counts = train.class_counts()
    top = int(counts.max()) if len(counts) else 0
    return {c: top - int(n) for c, n in enumerate(counts) if 0 < n < top}


def train_on_key(recipe: Recipe, train: LabeledImages) -> Optional[dict[str, Any]]:
    """What ``gan.train_on`` adds to the GAN's cache key: nothing for ``real`` (the keys of runs cached
    before the option existed) or when no class needs a fill (the same run), else the classical pipeline
    and the albumentations version that draw the fill (its images follow from these, the training
    images and the GAN's seed)."""
    if recipe.gan.train_on == "real" or not _fill_counts(train):
        return None
    return {"classical": recipe.classical.pipeline, "albumentations": _versions().get("albumentations", "not installed")}


def gan_training_set(recipe: Recipe, train: LabeledImages, seed: int) -> LabeledImages:
    """The images the GAN trains on. ``gan.train_on: real``: ``train`` itself. ``classical``: ``train``
    followed by ``classical.pipeline``'s samples of each class's own images, filling every class that
    has images up to the largest class (drawn from ``seed``, the GAN's seed, on a stream of their own).
    The fill is handed to the trainer as training images; the expansion's provenance is unaffected."""
    if recipe.gan.train_on == "real":
        return train
    extra = _classical(recipe, train, _fill_counts(train), np.random.SeedSequence([seed, _TRAIN_ON_STREAM]))
    return LabeledImages(np.concatenate([train.images, extra.images]), np.concatenate([train.labels, extra.labels]), train.class_names)


def estimate_gan_seconds(recipe: Recipe, gan_cfg: Any, image_side: int) -> float:
    """A rough CPU time for training (steps x D steps x a per-architecture constant); an estimate."""
    from augmentgan.gan.trainer import IMG_SIZES

    size = recipe.gan.img_size or next((s for s in IMG_SIZES if s >= image_side), IMG_SIZES[-1])
    m = gan_cfg.model
    width = (m.g_ch + m.d_ch) / 2
    per_d_step = _CPU_SECONDS_PER_D_STEP[m.arch] * (size / 32) ** 2 * (recipe.gan.batch / 64) * (width / 64)
    return recipe.gan.steps * (gan_cfg.optim.n_dis + 1) * per_d_step


# --- stages -------------------------------------------------------------------------------------
def _gan_run(
    spec: ResolvedRecipe, train: LabeledImages, seed: int, notes: list[str], callback: Optional[ProgressCallback], held: ExitStack,
    unlabeled: Optional[np.ndarray] = None,
) -> tuple[Path, str, bool]:
    """(run folder or checkpoint, checkpoint choice, cached?) - training when needed.

    A cached run is used under its entry lock (:func:`augmentgan.cache.entry_lock`), pushed onto
    ``held`` so that the caller keeps it while it samples the run: another process with the same
    key waits (saying so), then reuses the finished run; nobody retrains or clears a run that
    another process is training or reading. A cached ``final.pt`` that fails its recorded sha256
    or cannot be read is set aside (renamed, with a warning naming it) and training resumes from
    the newest intact checkpoint (bit-identical on CPU), or starts again when none is left.
    ``unlabeled``: ``data.unlabeled`` read already (:func:`_unlabeled`); read here when not given.
    """
    from augmentgan.gan import checkpoint as ckpt
    from augmentgan.gan.checkpoint import checkpoint_target
    from augmentgan.gan.trainer import resolve_img_size
    from augmentgan.training import train as train_gan

    recipe = spec.recipe
    g = recipe.gan
    if g.run is not None:
        notes.append(f"GAN: reusing {g.run} (checkpoint {g.checkpoint}); no training")
        return Path(g.run), g.checkpoint, True
    resolve_img_size(train, g.img_size)  # images the GAN cannot train on: refused before the cache holds anything of it
    gan_cfg = spec.gan
    train_cfg = _gan_train_config(recipe, seed)
    if unlabeled is None:
        unlabeled = _unlabeled(recipe, train)
    run_dir = cache_dir() / "runs" / gan_cache_key(train, gan_cfg, train_cfg, unlabeled, train_on_key(recipe, train))
    held.enter_context(entry_lock(run_dir, "cached GAN run", callback=callback))
    final, best = run_dir / "checkpoints" / "final.pt", run_dir / "checkpoints" / "best.pt"
    restart = False
    if g.cache and final.is_file():
        # damaged, or gone while its sha256 record stays (deleted by hand): the run's best is lost either way
        best_damaged = (best.is_file() and ckpt.set_aside_if_damaged(best) is not None) or (not best.is_file() and ckpt.digest_path(best).is_file())
        if ckpt.set_aside_if_damaged(final) is None and not best_damaged:
            notes.append(f"GAN: cached run {run_dir} has the same data and settings; training skipped")
            mark_used(run_dir)
            return run_dir, checkpoint_target(run_dir, g.checkpoint)[1], True
        # the best step may lie before every kept checkpoint: only a run from the start rebuilds best.pt (bit-identical on CPU)
        restart = best_damaged
        if restart:
            notes.append(f"GAN: {best} was damaged or removed; the run is trained again from the start to rebuild it")
    resume = g.cache and not restart and run_dir.is_dir() and ckpt.newest_intact(run_dir / "checkpoints") is not None
    if not resume:
        _keep_damaged(run_dir)
    real, real_fingerprint = train, None
    train = gan_training_set(recipe, train, seed)
    if len(train) > len(real):
        real_fingerprint = real.fingerprint()  # recorded in the checkpoint: `generate --real` and gan.run accept the real images
        notes.append(f"GAN: trained on {len(real)} real images and {len(train) - len(real)} samples of classical.pipeline {recipe.classical.pipeline!r} "
                     f"filling every class to {int(train.class_counts().max())} (gan.train_on classical)")
        if gan_cfg.tricks.diffaug.strip() == "auto":  # decided by the real images' counts, not the filled ones
            from augmentgan.gan.config import resolve_diffaug

            policy, _ = resolve_diffaug(gan_cfg.tricks.diffaug, real.class_counts().tolist())
            gan_cfg = gan_cfg.model_copy(update={"tricks": gan_cfg.tricks.model_copy(update={"diffaug": policy})})
    monitor = None
    if train_cfg.eval_every:  # per-class diversity + KID every eval_every steps; the best step is kept as best.pt
        from augmentgan.evaluate.monitor import quality_monitor

        monitor = quality_monitor(train, device=g.device, callback=callback)
    result = train_gan(train, gan_cfg, train_cfg, run_dir, resume=resume, force=not resume, callback=callback, data_spec=recipe.data.path, monitor=monitor,
                       unlabeled=unlabeled, real_fingerprint=real_fingerprint)
    notes.append(f"GAN: trained {g.steps} steps into {run_dir}" + (" (resumed)" if resume else "") + f", precision {g.precision} -> {result.precision}")
    if result.best is not None:
        notes.append(f"GAN: best quality score {result.best['score']:.3f} at step {result.best['step']} (checkpoints/best.pt, used for generation)")
    return run_dir, checkpoint_target(run_dir, g.checkpoint)[1], False  # gan.checkpoint chooses among the run's checkpoints, trained or cached


def _refuse_synthetic(data: LabeledImages, what: str) -> None:
    """An expansion's output expanded again: its synthetic rows would pass as real (provenance lost, and
    copies of one parent on both sides of a holdout). Real and pseudo rows (real images) are fine."""
    made = {k: v for k, v in data.source_counts().items() if v and k not in ("real", "pseudo")}
    if made:
        raise DataError(
            f"{what}: {sum(made.values())} of its {len(data)} images are synthetic ({', '.join(f'{k} {v}' for k, v in made.items())}), "
            f"an expansion's output; expand the real data it was made from (its lock.json names it) instead"
        )


def _unlabeled(recipe: Recipe, train: LabeledImages) -> Optional[np.ndarray]:
    """``data.unlabeled`` read like the labeled data (channels, size) and checked against it; None when unset."""
    d = recipe.data
    if d.unlabeled is None:
        return None
    from augmentgan.data.unlabeled import check_unlabeled, read_unlabeled

    return check_unlabeled(read_unlabeled(d.unlabeled, channels=d.channels, size=d.size), train.image_shape, f"data.unlabeled {d.unlabeled}")


def _unlabeled_for_gan(recipe: Recipe, train: LabeledImages, unlabeled: Optional[np.ndarray], unseen: Iterable[Optional[np.ndarray]],
                       notes: list[str]) -> Optional[np.ndarray]:
    """``data.unlabeled`` (read here when not given) without the images the GAN must not see: those identical to
    an image of ``unseen`` (the holdout, the images a benchmark scores on, plan.auto's validation images). An
    unlabeled pool often holds the labeled images themselves; the GAN would otherwise train on the images it
    and the mix are judged on. None without ``data.unlabeled``."""
    if unlabeled is None:
        unlabeled = _unlabeled(recipe, train)
    if unlabeled is None or not len(unlabeled):
        return unlabeled
    hidden = {key for images in unseen if images is not None for key in row_keys(images)}
    if not hidden:
        return unlabeled
    drop = np.array([key in hidden for key in row_keys(unlabeled)], bool)
    if drop.all():
        raise DataError(f"data.unlabeled {recipe.data.unlabeled}: every one of its {len(unlabeled)} images is a holdout or validation image, which the GAN "
                        "must not see; give unlabeled images that are not held out, or no data.unlabeled")
    if drop.any():
        notes.append(f"data.unlabeled: {int(drop.sum())} of its {len(unlabeled)} images are identical to holdout or validation images and are left out "
                     "of the GAN's training")
        unlabeled = unlabeled[~drop]
    return unlabeled


def _validation_terms(spec: str) -> Terms:
    """A reader's hints about ``plan.auto.validation`` (read with data's other keys) in the recipe's terms."""

    def terms(flag: Flag) -> str:
        if flag.option == "split":
            return "set plan.auto.validation_split"
        if flag.option == "keys":  # no recipe key names the validation file's arrays
            return f"convert it first: augmentgan convert {spec} OUT.h5 {flag_name(flag)}"
        return recipe_terms(flag)

    return terms


def auto_validation(recipe: Recipe, train: LabeledImages, holdout: Optional[np.ndarray] = None, holdout_name: str = "the holdout") -> Optional[LabeledImages]:
    """``plan.auto.validation`` read like the labeled data (``train``'s channels; with ``data.size`` set,
    center-cropped and resized to ``train``'s size, which is what data.size made of the training images
    in :func:`expand`, and the size the utility benchmark read its data at), its classes matched to ``train``'s by name, checked (same image shape, known classes, some images, none of them
    a training image nor one of the ``holdout`` images, called ``holdout_name`` in errors); None when unset or the mix is not auto."""
    auto = recipe.plan.auto
    if recipe.plan.mix != "auto" or auto.validation is None:
        return None
    name = f"plan.auto.validation {auto.validation}"
    h, w, c = train.image_shape
    try:
        val = load(auto.validation, channels=c, size=h if recipe.data.size is not None and h == w else None, split=auto.validation_split,
                   skip_bad=recipe.data.skip_bad)
    except DataError as err:  # the loader's own message, with the recipe keys that apply to it (it is read with data's other keys)
        raise err.in_terms(_validation_terms(auto.validation), "plan.auto.validation: ") from None
    if val.image_shape != train.image_shape:
        raise DataError(
            f"{name}: its images are {'x'.join(map(str, val.image_shape))}, the training data's {'x'.join(map(str, train.image_shape))}; "
            "give images of the same size, set data.size to read both at one size, or set plan.auto.validation=null to cross-validate"
        )
    counts = val.class_counts()
    present = [val.class_names[c] for c in range(val.num_classes) if counts[c] > 0]
    unknown = [n for n in present if n not in train.class_names]
    if unknown:
        raise DataError(f"{name}: class(es) {unknown} are not classes of the training data {list(train.class_names)}; a validation set holds images of the training classes only (or set plan.auto.validation=null to cross-validate)")
    if not present:
        raise DataError(f"{name} has no images; give labeled images of the training classes, or drop plan.auto.validation to cross-validate")
    index = {n: i for i, n in enumerate(train.class_names)}
    mapping = np.array([index.get(n, -1) for n in val.class_names], np.int64)
    keys = row_keys(val.images)  # byte-identical images, as pseudo's check finds them
    known = set(row_keys(train.images))
    shared = sum(k in known for k in keys)
    if shared:
        raise DataError(
            f"{name}: {shared} of its {len(val)} images are also in the training data; validation images must be ones the training set "
            "does not contain (expand splits the holdout off data.path first: do not point plan.auto.validation at data.path)"
        )
    held = set(row_keys(holdout)) if holdout is not None else set()
    shared = sum(k in held for k in keys)
    if shared:
        raise DataError(
            f"{name}: {shared} of its {len(val)} images are also in {holdout_name}, which must stay unseen by every choice the expansion makes; "
            f"give validation images that are in neither the training data nor {holdout_name}"
        )
    return LabeledImages(val.images, mapping[val.labels], train.class_names)


def auto_split(recipe: Recipe, train: LabeledImages, seq_auto: np.random.SeedSequence) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``plan.auto.split``: (rows of ``train`` the GAN trains on, rows held out for auto to score on),
    seeded by ``seq_auto`` (:func:`_streams`' ``"auto"``); None when unset, the mix is not auto or no class
    has :data:`~augmentgan.automix.MIN_VALIDATED` images to spare."""
    from augmentgan.automix import held_out_split

    auto = recipe.plan.auto
    if recipe.plan.mix != "auto" or auto.split is None:
        return None
    rng = np.random.default_rng(np.random.SeedSequence([_int_seed(seq_auto), 0x5B11]))
    part, val = held_out_split(train.labels, train.num_classes, auto.split, rng, images=train.images)
    return (part, val) if len(val) else None


def _keep_damaged(run_dir: Path) -> None:
    """Move set-aside checkpoints to ``RUN/damaged/`` before a fresh start clears ``checkpoints/`` (set aside, never deleted)."""
    for path in sorted((run_dir / "checkpoints").glob("*.damaged*")):
        (run_dir / "damaged").mkdir(exist_ok=True)
        os.replace(path, run_dir / "damaged" / path.name)


def _read_gan(run: Path, checkpoint: str, train: LabeledImages, notes: list[str]) -> GeneratorCheckpoint:
    """The checkpoint to sample, read once for the whole expansion (generation, latent-smote, the
    auto mix's pool and the report all use this read), checked against the training split (the run's
    data, or its real part when a classical fill trained it too: ``gan.train_on: classical``)."""
    try:
        generator = read_generator(run, checkpoint)
    except AugmentganError as err:  # a damaged file, a checkpoint choice the run lacks: name the recipe key
        raise type(err)(f"gan.run {run}: {err}") from None
    _, info = generator.generator(device="cpu")  # builds it once on the CPU: a checkpoint of other models fails here
    if tuple(info.class_names) != train.class_names:
        raise ConfigError(f"gan.run {run}: trained on classes {list(info.class_names)}, the data has {list(train.class_names)}; train a GAN on this data")
    if tuple(info.data_size) != train.image_shape[:2] or info.channels != train.channels:
        raise ConfigError(f"gan.run {run}: makes {info.data_size[0]}x{info.data_size[1]}x{info.channels} images, the data is {'x'.join(map(str, train.image_shape))}; set data.size/data.channels to match")
    if train.fingerprint() not in (info.data_fingerprint, info.real_fingerprint):
        notes.append(f"GAN: {run} was trained on other data than this recipe's training split; holdout images may have been seen by it")
    return generator


def _generate(recipe: Recipe, generator: GeneratorCheckpoint, train: LabeledImages, counts: dict[int, int], seed: int,
              callback: Optional[ProgressCallback]) -> tuple[LabeledImages, dict[str, np.ndarray]]:
    """The GAN's samples and their ``truncation`` and ``z_index`` (what `augmentgan generate` writes beside them)."""
    from augmentgan.generate.generation import sample_rows

    g = recipe.generate
    try:
        samples, extra, _ = sample_rows(
            generator, counts=counts, truncation=g.truncation, filters=list(g.filters), seed=seed, ema=g.ema,
            real=train, max_tries=g.max_tries, device=recipe.gan.device, callback=callback,
        )
    except GenerationError as err:
        raise GenerationError(in_recipe_terms(err)) from None
    return LabeledImages(samples.images, samples.labels, train.class_names, samples.source, samples.parent), extra


def _latent_smote(recipe: Recipe, generator: GeneratorCheckpoint, base: LabeledImages, counts: dict[int, int], seed: int, notes: list[str],
                  callback: Optional[ProgressCallback]) -> tuple[LabeledImages, np.ndarray]:
    """latent-smote samples of ``base``'s classes and their second parents (:mod:`augmentgan.generate.latent_smote`)."""
    from augmentgan.generate.latent_smote import latent_smote

    result = latent_smote(
        generator, base, counts, seed=seed, ema=recipe.generate.ema, settings=_latent_settings(recipe, seed), device=recipe.gan.device, callback=callback,
        **_latent_options(recipe),
    )
    result = _latent_classical(recipe, result, seed)
    notes += result.notes
    return result.samples, result.parent2


def _latent_classical(recipe: Recipe, result: Any, seed: int) -> Any:
    """A :class:`~augmentgan.generate.latent_smote.LatentSmoteResult` whose samples went once each
    through classical.pipeline when ``latent_smote.classical`` is on (its own random stream, so
    latent-smote's draws do not change with it), with a note saying so; else ``result``."""
    if not recipe.latent_smote.classical:
        return result
    from augmentgan.augment.classical import augment_each, build_pipeline

    s_build, s_draw = np.random.SeedSequence([seed, 1]).spawn(2)
    samples = augment_each(result.samples, build_pipeline(recipe.classical.pipeline, seed=_int_seed(s_build)), np.random.default_rng(s_draw))
    return replace(result, samples=samples, notes=[*result.notes, "latent-smote: every sample then passed once through classical.pipeline (latent_smote.classical)"])


@dataclass
class PseudoPool:
    """The unlabeled images the K+1 discriminator labels at ``plan.pseudo_min_confidence`` or more, most
    confident first within each class (each image has one label, so it can serve one class, once)."""

    images: np.ndarray  # (M, H, W, C) uint8, the confident images
    labels: np.ndarray  # (M,) their pseudo-labels
    confidence: np.ndarray  # (M,) float32, the K+1 posterior of the label
    index: np.ndarray  # (M,) int64, the image's position in data.unlabeled
    capacity: dict[int, dict[str, int]]  # class -> {"pseudo": confident images of the class}, for make_plan
    info: dict[str, Any]  # what the lock and the HDF5 attributes record

    def take(self, counts: Mapping[int, int], class_names: tuple[str, ...]) -> tuple[LabeledImages, np.ndarray, np.ndarray]:
        """The ``counts[c]`` most confident images of every class c: (rows with source pseudo, confidence, index)."""
        rows = np.concatenate([np.flatnonzero(self.labels == c)[:n] for c, n in sorted(counts.items())]) if counts else np.zeros(0, np.int64)
        n = len(rows)
        data = LabeledImages(self.images[rows], self.labels[rows], class_names, np.full(n, Source.pseudo.value, np.uint8), np.full(n, -1, np.int64))
        return data, self.confidence[rows], self.index[rows]


def _pseudo_pool(
    recipe: Recipe, generator: GeneratorCheckpoint, train: LabeledImages, unlabeled: np.ndarray, exclude: Optional[np.ndarray], notes: list[str],
) -> PseudoPool:
    """Label ``data.unlabeled`` with the run's K+1 discriminator (:func:`augmentgan.gan.semi.pseudo_label`, the
    checkpoint generation uses, read once) and keep the images at ``plan.pseudo_min_confidence`` or more.
    Images byte-identical to a labeled training image or to one of ``exclude`` (the holdout) are never used."""
    from augmentgan.gan.semi import kplus1_from_payload, pseudo_label

    threshold = recipe.plan.pseudo_min_confidence
    try:
        model = kplus1_from_payload(generator.payload, generator.path)
    except ConfigError:
        raise ConfigError(
            f"plan.mix pseudo: gan.run {recipe.gan.run or generator.source} was not trained with a K+1 discriminator (model.d_cond=kplus1), so it cannot "
            "label images; give a run of gan.preset ssgan, or drop pseudo from plan.mix"
        ) from None
    labels = pseudo_label(model.D, unlabeled, model.img_size, fit=model.fit, min_confidence=threshold)
    usable = labels.keep.copy()
    known = set(row_keys(train.images)) | set(row_keys(exclude if exclude is not None else train.images[:0]))
    duplicate = np.array([k in known for k in row_keys(unlabeled)], bool) if len(unlabeled) else np.zeros(0, bool)
    if duplicate.any():
        notes.append(f"pseudo: {int(duplicate.sum())} unlabeled image(s) are identical to a labeled image (training or holdout) and are never used")
    usable &= ~duplicate
    # most confident first within a class; ties keep the unlabeled order (a stable sort)
    order = np.lexsort((np.arange(len(unlabeled)), -labels.confidence, labels.labels))
    order = order[usable[order]]
    per_class = np.bincount(labels.labels[order], minlength=train.num_classes)
    notes.append(
        f"pseudo: the K+1 discriminator of {generator.path} labels {len(order)} of the {int((~duplicate).sum())} usable unlabeled images at confidence >= {threshold:g} ("
        + ", ".join(f"{name} {int(n)}" for name, n in zip(train.class_names, per_class)) + ")"
    )
    info = {
        "unlabeled": recipe.data.unlabeled, "unlabeled_sha256": _images_sha256(unlabeled),
        "min_confidence": threshold, "labeled_by": str(generator.path), "labeled_by_sha256": generator.sha256, "confident": int(len(order)),
    }
    return PseudoPool(
        unlabeled[order], labels.labels[order], labels.confidence[order], order.astype(np.int64),
        {c: {"pseudo": int(n)} for c, n in enumerate(per_class)}, info,
    )


def _classical(recipe: Recipe, base: LabeledImages, counts: dict[int, int], seq: np.random.SeedSequence) -> LabeledImages:
    from augmentgan.augment.classical import augment_class, build_pipeline

    if not counts:
        return _empty(base)
    pipeline = build_pipeline(recipe.classical.pipeline, seed=_int_seed(seq))
    streams = seq.spawn(base.num_classes)
    images = np.empty((sum(max(n, 0) for n in counts.values()), *base.image_shape), np.uint8)  # each class writes into its rows: no concatenated copy
    parts, at = [], 0
    for c, n in sorted(counts.items()):
        parts.append(augment_class(base, c, n, pipeline, np.random.default_rng(streams[c]), out=images[at:at + max(n, 0)]))
        at += max(n, 0)
    return LabeledImages(images, np.concatenate([p.labels for p in parts]), base.class_names,
                         np.concatenate([p.source for p in parts]), np.concatenate([p.parent for p in parts]))


def _smote(recipe: Recipe, base: LabeledImages, counts: dict[int, int], seed: int) -> LabeledImages:
    from augmentgan.augment.smote import smote_class_counts

    if not counts:
        return _empty(base)
    have = base.class_counts()
    targets = {c: int(have[c]) + n for c, n in counts.items()}
    return smote_class_counts(base, targets, recipe.smote.method, seed=seed, k_neighbors=recipe.smote.k_neighbors)


def _copies(base: LabeledImages, counts: dict[int, int], rng: np.random.Generator) -> LabeledImages:
    if not counts:
        return _empty(base)
    parents = np.concatenate([_round_robin(np.flatnonzero(base.labels == c), n, rng) for c, n in sorted(counts.items())])
    return LabeledImages(base.images[parents], base.labels[parents], base.class_names, np.full(len(parents), Source.copy.value, np.uint8), parents)


def _counts_table(data: LabeledImages) -> dict[str, dict[str, int]]:
    table = data.counts_by_class_and_source()
    return {name: {s: int(table[c, i]) for i, s in enumerate(SOURCE_NAMES)} for c, name in enumerate(data.class_names)}


def _counts_csv(data: LabeledImages) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["class", *SOURCE_NAMES, "total"])
    for name, row in _counts_table(data).items():
        writer.writerow([name, *row.values(), sum(row.values())])
    return buf.getvalue()


def _planned_counts(plan: Plan) -> dict[str, dict[str, int]]:
    return {c.name: {"real": c.keep, **{s: c.add[s] for s in SOURCES}} for c in plan.classes}


# --- the expansion of an in-memory training split -------------------------------------------------
@dataclass
class ExpandedData:
    """What :func:`expand_data` made: the expanded training set and how."""

    data: LabeledImages  # real (kept) rows first, then gan, classical, smote, copy (LabeledParts inside expand())
    plan: Plan
    notes: list[str]
    gan_run: Optional[Path] = None
    gan_cached: Optional[bool] = None
    gan_lock: dict[str, Any] = field(default_factory=dict)
    mix_decision: Optional[Any] = None  # augmentgan.automix.MixDecision with plan.mix: auto
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # per-row arrays written as extra/<name> (parent2 with latent-smote; confidence, unlabeled_index with pseudo)
    gan_checkpoint: Optional[GeneratorCheckpoint] = None  # the checkpoint sampled, read once (the report reuses it)
    pseudo: dict[str, Any] = field(default_factory=dict)  # with pseudo rows: the unlabeled images, the threshold, the labeling checkpoint, counts


def _plan_and_keep(
    recipe: Recipe, train: LabeledImages, rng_copy: np.random.Generator, *,
    mix: Optional[Mapping[str, float]] = None, unavailable: Optional[Mapping[int, Mapping[str, str]]] = None,
    capacity: Optional[Mapping[int, Mapping[str, int]]] = None,
) -> tuple[Plan, Optional[np.ndarray]]:
    """The plan and the (sorted) rows of ``train`` it keeps; None: all of them (no undersampling)."""
    plan = _make_plan(recipe, train, mix=mix, unavailable=unavailable, capacity=capacity)
    keep = np.concatenate([
        np.sort(rng_copy.choice(np.flatnonzero(train.labels == c.index), c.keep, replace=False)) if c.keep < c.real else np.flatnonzero(train.labels == c.index)
        for c in plan.classes
    ])
    return plan, (None if len(keep) == len(train) else np.sort(keep))


def _plan_and_base(
    recipe: Recipe, train: LabeledImages, rng_copy: np.random.Generator, *,
    mix: Optional[Mapping[str, float]] = None, unavailable: Optional[Mapping[int, Mapping[str, str]]] = None,
    capacity: Optional[Mapping[int, Mapping[str, int]]] = None,
) -> tuple[Plan, LabeledImages]:
    """The plan and the real rows it keeps (all of them unless undersampling)."""
    plan, keep = _plan_and_keep(recipe, train, rng_copy, mix=mix, unavailable=unavailable, capacity=capacity)
    return plan, (train if keep is None else train[keep])  # no copy of the whole set when nothing is undersampled


def _check_truncation_classes(recipe: Recipe, train: LabeledImages) -> None:
    """``generate.truncation: {class: threshold}`` names classes of the data: a wrong one is refused
    before the GAN trains, not when it is sampled."""
    from augmentgan.generate.sampler import class_index

    if isinstance(recipe.generate.truncation, dict):
        for key in recipe.generate.truncation:
            class_index(key, train.class_names, "generate.truncation")


def _make_plan(recipe: Recipe, train: LabeledImages, **kwargs: Any) -> Plan:
    """:func:`~augmentgan.planner.make_plan` for the training split (``kwargs``: mix, unavailable, capacity)."""
    from augmentgan.augment.smote import MIN_IMAGES

    if kwargs.get("mix") is None and recipe.plan.mix == "auto":  # a dry run: equal shares of the candidate sources stand in
        kwargs["mix"] = {s: 1.0 / len(recipe.plan.auto.sources) for s in recipe.plan.auto.sources}
    return make_plan(train.class_counts(), train.class_names, recipe.plan, min_for_smote=MIN_IMAGES, **kwargs)


def _gan_pool(recipe: Recipe, generator: GeneratorCheckpoint, train: LabeledImages, wanted: Mapping[int, int], seed: int, classifier: Any,
              callback: Optional[ProgressCallback], *, subset: bool = False) -> tuple[LabeledImages, dict[int, str], dict[str, np.ndarray]]:
    """GAN samples per class for ``plan.mix: auto`` (the first ones of each class, as :func:`_generate`
    draws them), the classes whose request the generation filters could not fill (-> why), and the
    samples' ``truncation`` and ``z_index``.
    ``subset``: ``train`` is a fold's part of the GAN's training images (``classifier`` trained on it),
    and the filters judge against it alone."""
    from augmentgan.generate.generation import batch_extra
    from augmentgan.generate.sampler import Sampler

    g = recipe.generate
    sampler = Sampler(
        generator, truncation=g.truncation, filters=list(g.filters), seed=seed, ema=g.ema, real=train,
        classifier=classifier if classifier.info.get("fingerprint") == train.fingerprint() else None, real_subset=subset,
        max_tries=g.max_tries, device=recipe.gan.device, callback=callback,
    )
    full = [int(wanted.get(c, 0)) for c in range(train.num_classes)]
    sampler.resolve_truncation(full)  # auto truncation for every class at once, as _generate does
    parts, failed, done = [], {}, []
    for c, n in sorted(wanted.items()):
        counts = [0] * train.num_classes
        counts[c] = n
        try:
            batches = list(sampler.stream(counts))
        except GenerationError as err:
            failed[c] = in_recipe_terms(err)
            continue
        images = np.concatenate([b.images for b in batches])
        parts.append(LabeledImages(images, np.full(len(images), c, np.int64), train.class_names, np.full(len(images), Source.gan.value, np.uint8), np.full(len(images), -1, np.int64)))
        done += batches
    return (LabeledImages.concatenate(parts) if parts else _empty(train)), failed, batch_extra(done)


def _pool_reads_real(recipe: Recipe) -> bool:
    """Whether the recipe's GAN samples depend on the real images beyond the GAN: generation filters that
    judge against them (their classifier or features) or automatic truncation."""
    from augmentgan.generate.filters import build_filters

    return recipe.generate.truncation == "auto" or any(f.needs_classifier for f in build_filters(list(recipe.generate.filters)))


def _first_rows(pool: LabeledImages, counts: Mapping[int, int]) -> np.ndarray:
    """The rows of the first ``counts[c]`` samples of each class ``c`` in ``pool``, class by class."""
    rows = [np.flatnonzero(pool.labels == c)[:n] for c, n in sorted(counts.items())]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def fold_builder(recipe: Recipe) -> Any:
    """How ``plan.mix: auto`` expands a fold's training part with a candidate mix: the recipe's plan
    target, classical pipeline and SMOTE settings, GAN samples from ``gan_fn``, latent-smote samples
    from ``latent_fn`` (see :data:`augmentgan.automix.BuildFn`); every random stream derived from ``seed``."""

    def build(part: LabeledImages, mix: Mapping[str, float], unavailable: Mapping[int, Mapping[str, str]], gan_fn: Any, seed: int, latent_fn: Any = None) -> LabeledImages:
        s_cl, s_sm, s_cp, s_ls = np.random.SeedSequence(seed).spawn(4)  # the first three as before latent-smote joined
        rng = np.random.default_rng(s_cp)
        plan, keep = _plan_and_keep(recipe, part, rng, mix=mix, unavailable=unavailable)
        base = part if keep is None else part[keep]
        parts = [base]
        if plan.counts("gan"):
            parts.append(gan_fn(plan.counts("gan")))
        parts += [
            _classical(recipe, base, plan.counts("classical"), s_cl),
            _smote(recipe, base, plan.counts("smote"), _int_seed(s_sm)),
            _copies(base, plan.counts("copy"), rng),
        ]
        if plan.counts("latent-smote"):  # last, as in expand_data
            parts.append(latent_fn(np.arange(len(part)) if keep is None else keep, plan.counts("latent-smote"), _int_seed(s_ls)))
        return LabeledImages.concatenate(parts)

    return build


def _latent_options(recipe: Recipe) -> dict[str, Any]:
    """The recipe's latent-smote options past encoding (smote.method, smote.k_neighbors, latent_smote.quantile,
    anchor, partners and step), the same for the fixed mix and plan.mix auto's folds."""
    ls = recipe.latent_smote
    return {"method": recipe.smote.method, "k_neighbors": recipe.smote.k_neighbors, "quantile": ls.quantile, "anchor": ls.anchor, "partners": ls.partners,
            "step": ls.step}


def _latent_settings(recipe: Recipe, seed: int) -> Any:
    from augmentgan.generate.encode import EncodeSettings

    ls = recipe.latent_smote
    return EncodeSettings(encoder_steps=ls.encoder_steps, refine_steps=ls.refine_steps, feature_weight=ls.feature_weight, seed=seed, encoder=ls.encoder)


@dataclass
class _LatentCodes:
    """plan.mix auto's latent-smote: the training images' codes under the GAN, found once."""

    G: Any
    info: Any
    device: Any
    codes: Any  # augmentgan.generate.encode.Codes, one row per training image (NaN: not encoded)

    @property
    def classes(self) -> list[int]:
        """The classes whose images were encoded."""
        return sorted({int(c) for c in self.codes.labels[~np.isnan(self.codes.error)]})

    def smote(self, recipe: Recipe, train: LabeledImages, rows: Optional[np.ndarray], counts: Mapping[int, int], seed: int,
              callback: Optional[ProgressCallback] = None) -> Any:
        """latent-smote between the codes of ``train``'s ``rows`` (None: all; ``train[rows]`` is the base), the recipe's settings."""
        from augmentgan.generate.latent_smote import smote_codes, take_codes

        base, codes = (train, self.codes) if rows is None else (train[rows], take_codes(self.codes, rows))  # no copy of the whole set
        result = smote_codes(self.G, self.info, base, codes, counts, seed=seed, device=self.device, callback=callback, **_latent_options(recipe))
        return _latent_classical(recipe, result, seed)

    def source(self, recipe: Recipe, train: LabeledImages) -> Any:
        """:data:`augmentgan.automix.LatentFactory` over ``train`` (the images the codes are of)."""

        def factory(part_rows: np.ndarray) -> Any:
            return lambda keep, counts, seed: self.smote(recipe, train, part_rows[keep], counts, seed).samples

        return factory


def _rows_of(factory: LatentFactory, rows: Optional[np.ndarray]) -> LatentFactory:
    """``factory`` (over all training images, as the codes are) asked with rows of ``train[rows]`` (plan.auto.split's part the GAN trained on)."""
    return factory if rows is None else lambda part_rows: factory(rows[part_rows])


def _auto_mix(
    spec: ResolvedRecipe, train: LabeledImages, seqs: dict[str, np.random.SeedSequence], notes: list[str], callback: Optional[ProgressCallback], held: ExitStack,
    exclude: Optional[np.ndarray] = None,
) -> tuple[Any, Optional[LabeledImages], dict[str, np.ndarray], Optional[Path], Optional[bool], dict[str, Any], Optional[GeneratorCheckpoint], Optional[_LatentCodes]]:
    """``plan.mix: auto``: (decision, GAN pool, its samples' truncation and z_index, run, cached?, gan lock, checkpoint read,
    latent codes) - see :mod:`augmentgan.automix`."""
    from augmentgan.augment.smote import MIN_IMAGES
    from augmentgan.automix import MIN_VALIDATED, FoldPoolFactory, MixDecision, choose_mix
    from augmentgan.domain.classifier import train_classifier

    recipe = spec.recipe
    auto = recipe.plan.auto
    validation = auto_validation(recipe, train, exclude)  # read and checked before the GAN trains: a bad file fails fast
    validation_name = f"plan.auto.validation {auto.validation}"
    pool, run, cached, gan_lock, failed, wanted, classifier, generator, latent = None, None, None, {}, {}, {}, None, None, None
    pool_extra: dict[str, np.ndarray] = {}
    fold_pool: Optional[FoldPoolFactory] = None
    if make_plan(train.class_counts(), train.class_names, recipe.plan, min_for_smote=MIN_IMAGES, mix={"copy": 1.0}).source_total("copy") == 0:
        return MixDecision({"copy": 1.0}, [], auto.folds, auto.steps, [], why=["nothing to expand: every class is at its target; nothing was scored"]), None, {}, None, None, {}, None, None
    gan_train, gan_rows = train, None  # the images the GAN trains on, and that every candidate expands while it is scored
    split = auto_split(recipe, train, seqs["auto"])
    if split is not None:  # the GAN never sees the held-out images; the export still expands all of train
        gan_rows, held_rows = split
        gan_train, validation = train[gan_rows], train[held_rows]
        validation_name = f"plan.auto.split {auto.split:g}, held out of the GAN's training"
    elif auto.split is not None:
        notes.append(f"plan.auto.split: no class has {MIN_VALIDATED} or more images to hold out; the GAN trains on all of them")

    def gan() -> GeneratorCheckpoint:
        nonlocal run, cached, generator, gan_lock
        if generator is None:
            unlabeled = None if recipe.gan.run is not None else _unlabeled_for_gan(
                recipe, train, None, (exclude, None if validation is None else validation.images), notes)
            run, checkpoint, cached = _gan_run(spec, gan_train, _int_seed(seqs["gan"]), notes, callback, held, unlabeled)
            generator = _read_gan(run, checkpoint, gan_train, notes)
            gan_lock = {"checkpoint_sha256": generator.sha256, "checkpoint": checkpoint}
        return generator

    if "gan" in auto.sources:
        gan_only = make_plan(train.class_counts(), train.class_names, recipe.plan, min_for_smote=MIN_IMAGES, mix={"gan": 1.0})
        wanted = gan_only.counts("gan")  # the export's needs, which cover those of the images the GAN trains on
        if wanted:
            gan()
            classifier = train_classifier(gan_train, device=recipe.gan.device, callback=callback)  # no filter or check has seen held-out images
            pool, failed, pool_extra = _gan_pool(recipe, gan(), gan_train, wanted, _int_seed(seqs["gen"]), classifier, callback)
            if validation is None and _pool_reads_real(recipe):  # no filter may have seen a fold's validation images

                def fold_pool(rows: np.ndarray) -> tuple[LabeledImages, dict[int, str]]:  # the export's pool, judged against the fold's part
                    part = train[rows]
                    return _gan_pool(recipe, gan(), part, wanted, _int_seed(seqs["gen"]), train_classifier(part, device=recipe.gan.device, callback=callback),
                                     callback, subset=True)[:2]
    if "latent-smote" in auto.sources:
        latent_only = make_plan(train.class_counts(), train.class_names, recipe.plan, min_for_smote=MIN_IMAGES, mix={"latent-smote": 1.0})
        grow = latent_only.counts("latent-smote")
        if grow and np.count_nonzero(train.class_counts()) >= 2:
            from augmentgan.gan.checkpoint import open_generator
            from augmentgan.gan.gan import resolve_device
            from augmentgan.generate.latent_smote import encode_for_smote

            device = resolve_device(recipe.gan.device)
            G, info = open_generator(gan()).generator(ema=recipe.generate.ema, device=device)
            settings = _latent_settings(recipe, _int_seed(seqs["latent"]))
            features = None  # None: its own classifier of all of train, as the fixed mix's latent-smote trains it (the same codes)
            if gan_rows is not None and settings.feature_weight > 0:  # split: no held-out image shapes the codes the candidates are scored with
                features = train_classifier(gan_train, steps=settings.classifier_steps, device=device, callback=callback)
            codes = encode_for_smote(
                G, info, train, grow, method=recipe.smote.method, partners=recipe.latent_smote.partners, settings=settings, source=gan(),
                classifier=features, device=device, callback=callback,
            )
            latent = _LatentCodes(G, info, device, codes)
    decision = choose_mix(
        gan_train, auto, fold_builder(recipe), seed=_int_seed(seqs["auto"]), gan_pool=pool, gan_failed=failed, gan_wanted=wanted, classifier=classifier,
        gan_fold_pool=fold_pool, latent=None if latent is None else _rows_of(latent.source(recipe, train), gan_rows),
        latent_classes=[] if latent is None else latent.classes, validation=validation, validation_name=validation_name,
        device=recipe.gan.device, callback=callback,
    )
    return decision, pool, pool_extra, run, cached, gan_lock, generator, latent


def expand_data(
    train: LabeledImages,
    recipe: RecipeLike,
    *,
    overrides: Union[Mapping[str, Any], Iterable[str]] = (),
    callback: Optional[ProgressCallback] = None,
    _step: Optional[Iterable[int]] = None,
    _exclude: Optional[np.ndarray] = None,
    _parts: bool = False,
) -> ExpandedData:
    """Expand an in-memory training set as ``recipe`` says (plan, GAN, generate, classical, SMOTE,
    copies), without loading, splitting off a holdout or writing anything: ``data.*`` (but
    ``data.unlabeled``), ``holdout.*`` and ``output.*`` of the recipe are not used, and the ``data`` and
    ``output`` sections may be left out. :func:`expand` runs this on its training split; the
    utility benchmark runs it on its own splits. Seeds derive from ``recipe.seed`` exactly as in
    :func:`expand`; the GAN is cached by the training set's fingerprint (``gan.cache``).

    With ``plan.mix: auto`` the mix is chosen first by cross-validation inside ``train``
    (:mod:`augmentgan.automix`); ``result.mix_decision`` says what was scored and chosen.

    ``recipe`` may be a :class:`~augmentgan.recipe.ResolvedRecipe` (as :func:`expand` passes it):
    it is then used as it is, not loaded and checked again. The GAN checkpoint is read once
    (``result.gan_checkpoint``) and every stage that samples it uses that read.

    With ``pseudo`` in ``plan.mix`` the GAN's K+1 discriminator labels ``data.unlabeled`` before the
    plan is fixed: a class gets at most its confident images (each used once, most confident first),
    the rest of its pseudo quota from the other sources (:func:`~augmentgan.planner.make_plan`'s
    ``capacity``). Pseudo rows come last, with ``extra`` ``confidence`` and ``unlabeled_index``
    (NaN and -1 on other rows). ``_exclude``: images never used as pseudo rows nor allowed in ``plan.auto.validation`` (:func:`expand` passes the holdout).
    ``_parts``: ``result.data`` is the :class:`LabeledParts` it is made of (the kept real rows, then each
    source's rows), which :func:`expand` writes without building their concatenation (that would hold
    the training rows twice).
    """
    if not isinstance(train, LabeledImages):
        raise DataError(f"expand_data takes LabeledImages (augmentgan.load(...) or LabeledImages(images, labels, class_names)), not {type(train).__name__}")
    spec = resolve_recipe(recipe, overrides, in_memory=True)  # data and output may be left out: neither is read or written here
    recipe = spec.recipe
    _refuse_synthetic(train, "expand_data's images")
    train = LabeledImages(train.images, train.labels, train.class_names)  # real, no parents: the base of the expansion
    _check_truncation_classes(recipe, train)
    seqs = _streams(recipe.seed)
    seq_gan, seq_gen, seq_classical, seq_smote, seq_copy, seq_latent = (seqs[k] for k in ("gan", "gen", "classical", "smote", "copy", "latent"))
    # expand() counts its own steps around these; called alone, the steps are plan .. copy, 1 to 6
    total = len(STAGES) if _step is not None else len(DATA_STAGES)
    step = iter(range(1, total + 1)) if _step is None else iter(_step)
    notes: list[str] = []
    report(callback, "expand", next(step), total, name="plan")
    rng_copy = np.random.default_rng(seq_copy)
    run: Optional[Path] = None
    cached: Optional[bool] = None
    gan_lock: dict[str, Any] = {}
    decision = None
    generator: Optional[GeneratorCheckpoint] = None
    latent: Optional[tuple[LabeledImages, np.ndarray]] = None
    gan_extra: dict[str, np.ndarray] = {}  # the GAN rows' truncation and z_index
    pseudo: Optional[PseudoPool] = None
    with ExitStack() as held:  # a cached run stays locked until it has been sampled
        if recipe.plan.mix == "auto":
            report(callback, "expand", next(step), total, name="gan")  # training and choosing: the inner stages report both
            decision, pool, pool_extra, run, cached, gan_lock, generator, codes = _auto_mix(
                spec, train, seqs, notes, callback, held, _exclude,
            )
            plan, keep = _plan_and_keep(recipe, train, rng_copy, mix=decision.mix, unavailable=decision.unavailable)
            base = train if keep is None else train[keep]
            parts = [base]
            report(callback, "expand", next(step), total, name="generate")
            if plan.counts("gan"):
                rows = _first_rows(pool, plan.counts("gan"))
                parts.append(pool[rows])
                gan_extra = {k: v[rows] for k, v in pool_extra.items()}
            if plan.counts("latent-smote"):  # the codes found for the auto mix, not encoded again
                assert codes is not None
                result = codes.smote(recipe, train, keep, plan.counts("latent-smote"), _int_seed(seq_latent), callback)
                notes += result.notes
                latent = (result.samples, result.parent2)
        else:
            draft = _make_plan(recipe, train)  # the plan before pseudo's supply is known (the same plan without pseudo)
            report(callback, "expand", next(step), total, name="gan")
            needs_gan = any(draft.source_total(s) > 0 for s in GAN_SOURCES)
            if needs_gan:
                unlabeled = _unlabeled(recipe, train) if recipe.gan.run is None or draft.source_total("pseudo") > 0 else None
                gan_unlabeled = None if recipe.gan.run is not None else _unlabeled_for_gan(recipe, train, unlabeled, (_exclude,), notes)
                run, checkpoint, cached = _gan_run(spec, train, _int_seed(seq_gan), notes, callback, held, gan_unlabeled)
                generator = _read_gan(run, checkpoint, train, notes)
                gan_lock = {"checkpoint_sha256": generator.sha256, "checkpoint": checkpoint}
                if draft.source_total("pseudo") > 0:
                    assert unlabeled is not None  # the recipe check requires data.unlabeled with pseudo
                    pseudo = _pseudo_pool(recipe, generator, train, unlabeled, _exclude, notes)
            plan, base = _plan_and_base(recipe, train, rng_copy, capacity=None if pseudo is None else pseudo.capacity)
            parts = [base]
            report(callback, "expand", next(step), total, name="generate")
            if needs_gan:
                assert generator is not None
                if plan.source_total("gan") > 0:
                    samples, gan_extra = _generate(recipe, generator, train, plan.counts("gan"), _int_seed(seq_gen), callback)
                    parts.append(samples)
                if plan.source_total("latent-smote") > 0:
                    latent = _latent_smote(recipe, generator, base, plan.counts("latent-smote"), _int_seed(seq_latent), notes, callback)
    report(callback, "expand", next(step), total, name="classical")
    parts.append(_classical(recipe, base, plan.counts("classical"), seq_classical))
    report(callback, "expand", next(step), total, name="smote")
    parts.append(_smote(recipe, base, plan.counts("smote"), _int_seed(seq_smote)))
    report(callback, "expand", next(step), total, name="copy")
    parts.append(_copies(base, plan.counts("copy"), rng_copy))
    extra: dict[str, np.ndarray] = {}
    if gan_extra:  # the GAN rows follow the kept real rows: what `augmentgan generate` writes beside them, NaN / -1 on other rows
        n_rows, at = sum(len(p) for p in parts), len(parts[0])
        for name, fill in (("truncation", np.float32(np.nan)), ("z_index", np.int64(-1))):
            column = np.full(n_rows, fill)
            column[at:at + len(gan_extra[name])] = gan_extra[name]
            extra[name] = column
    if latent is not None:  # last, so that recipes without latent-smote keep their row order
        n_before = sum(len(p) for p in parts)
        parts.append(latent[0])
        extra = {k: np.concatenate([v, np.full(len(latent[0]), -1 if v.dtype.kind == "i" else np.nan, v.dtype)]) for k, v in extra.items()}
        extra["parent2"] = np.concatenate([np.full(n_before, -1, np.int64), latent[1]])
    pseudo_info: dict[str, Any] = {}
    if plan.source_total("pseudo") > 0:  # last: real images with machine labels, never mixed into the real rows
        assert pseudo is not None
        n_before = sum(len(p) for p in parts)
        rows, confidence, index = pseudo.take(plan.counts("pseudo"), train.class_names)
        parts.append(rows)
        extra = {k: np.concatenate([v, np.full(len(rows), -1 if v.dtype.kind == "i" else np.nan, v.dtype)]) for k, v in extra.items()}
        extra["confidence"] = np.concatenate([np.full(n_before, np.nan, np.float32), confidence])
        extra["unlabeled_index"] = np.concatenate([np.full(n_before, -1, np.int64), index])
        pseudo_info = {**pseudo.info, "used": int(len(rows))}
    expanded = LabeledParts(parts)
    got = expanded.class_counts().tolist()
    want = [c.target for c in plan.classes]
    if got != want:
        raise DataError(f"internal check: the expanded set has {got} samples per class, the plan {want}; rerun with --debug and report it")
    if decision is not None:
        notes.append(f"plan.mix auto chose {_fmt_mix(decision.mix)}: " + "; ".join(decision.why))
        notes += [f"auto mix: {n}" for n in decision.notes]
    return ExpandedData(expanded if _parts else expanded.concatenate(), plan, notes + plan.notes, run, cached, gan_lock, decision, extra, generator, pseudo_info)


def _fmt_mix(mix: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{s}: {v:g}" for s, v in mix.items()) + "}"


def _write_report(folder: Path, expanded: LabeledImages, run: Optional[Path], notes: list[str], callback: Optional[ProgressCallback], decision: Any = None,
                  parent2: Optional[np.ndarray] = None, generator: Optional[GeneratorCheckpoint] = None, confidence: Optional[np.ndarray] = None,
                  pseudo: Optional[Mapping[str, Any]] = None) -> None:
    """``report.html``. With GAN samples it includes their metrics against the real training rows
    (domain features, no CAS, at most 2,000 samples per set) when the domain classifier of the
    training rows is already cached (generation filters train it): training one only for the report
    would cost minutes on a CPU; otherwise the report says which command computes them."""
    from augmentgan.errors import AugmentganError
    from augmentgan.domain.classifier import cache_path
    from augmentgan.evaluate.evaluation import evaluate
    from augmentgan.report import write_expansion_report

    real = expanded[np.flatnonzero(expanded.source == Source.real.value)]
    gan = expanded[np.flatnonzero(expanded.source == Source.gan.value)]
    metrics, report_notes = None, list(notes)
    if len(gan) and not cache_path(real).is_file():
        report_notes.append("metrics of the GAN samples: run `augmentgan evaluate OUT/train.h5 --real OUT/holdout.h5` (this report has none: no cached domain classifier)")
    elif len(gan):
        try:
            metrics = evaluate(gan, real, cas=False, max_samples=2000, device="cpu", callback=callback)
        except AugmentganError as err:
            report_notes.append(f"metrics of the GAN samples not computed: {err}")
    write_expansion_report(folder, real=real, expanded=expanded, gan_run=run, metrics=metrics, notes=report_notes, mix_decision=decision, parent2=parent2,
                           generator=generator, confidence=confidence, pseudo_min_confidence=None if not pseudo else pseudo["min_confidence"])


def _pseudo_dry_run(recipe: Recipe, train: LabeledImages) -> str:
    """What a dry run can say about the pseudo source: the unlabeled images are read and checked, a
    ``gan.run`` must have a K+1 discriminator; how many are confident is known only after training."""
    unlabeled = _unlabeled(recipe, train)
    assert unlabeled is not None  # the recipe check requires data.unlabeled with pseudo
    if recipe.gan.run is not None:
        from augmentgan.gan.config import GANConfig

        generator = read_generator(recipe.gan.run, recipe.gan.checkpoint)
        d_cond = GANConfig.model_validate(generator.payload["gan"]).model.d_cond
        if d_cond != "kplus1":
            raise ConfigError(
                f"plan.mix pseudo: gan.run {recipe.gan.run} was trained with model.d_cond={d_cond!r}, not a K+1 discriminator, so it cannot label images; "
                "give a run of gan.preset ssgan, or drop pseudo from plan.mix"
            )
    return (
        f"pseudo: the counts above are quotas; the GAN's K+1 discriminator labels the {len(unlabeled)} images of data.unlabeled after training, and a class "
        f"with fewer images at confidence >= {recipe.plan.pseudo_min_confidence:g} than its quota gets the rest from the mix's other sources (else classical)"
    )


# --- the pipeline -------------------------------------------------------------------------------
_TRAINING_KEYS = ("preset", "overrides", "steps", "batch", "img_size", "fit", "eval_every", "precision", "cache", "train_on")


def _unused_settings(recipe: Recipe) -> list[str]:
    """Notes for settings the recipe gives that this run cannot use (they were silently ignored)."""
    notes = []
    if recipe.plan.mix != "auto" and recipe.plan.auto.model_fields_set:
        keys = ", ".join(f"plan.auto.{k}" for k in sorted(recipe.plan.auto.model_fields_set))
        notes.append(f"{keys}: ignored, used only with plan.mix: auto (this recipe's mix is fixed)")
    if recipe.gan.run is not None:
        given = [k for k in _TRAINING_KEYS if k in recipe.gan.model_fields_set]
        if given:
            notes.append(f"{', '.join(f'gan.{k}' for k in given)}: ignored, training settings (gan.run is reused as it is)")
    if recipe.output.format == "folder" and "compression" in recipe.output.model_fields_set:
        notes.append("output.compression: ignored, it applies to HDF5 output (output.format is folder)")
    mix = recipe.plan.mix
    if recipe.data.unlabeled is not None and mix != "auto" and not any(mix.get(s, 0) > 0 for s in GAN_SOURCES):
        notes.append("data.unlabeled: ignored, it trains a semi-supervised GAN and this mix uses no GAN source (gan, latent-smote, pseudo)")
    return notes


def _check_device(recipe: Recipe) -> None:
    """gan.device must exist on this machine (the GAN and auto's proxy classifiers run on it), and fp16 needs CUDA."""
    from augmentgan.gan.gan import resolve_device

    device = resolve_device(recipe.gan.device)
    if recipe.gan.precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"gan.precision fp16 needs a CUDA device (it uses a GradScaler), not {device.type}; set gan.precision: auto, bf16 or fp32")


_P = ParamSpec("_P")


def _in_recipe_terms(fn: Callable[_P, ExpandResult]) -> Callable[_P, ExpandResult]:
    """``fn``'s errors with the recipe keys a recipe user sets where the readers and the trainer name the commands' flags."""

    @functools.wraps(fn)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> ExpandResult:
        try:
            return fn(*args, **kwargs)
        except AugmentganError as err:
            text = in_recipe_terms(err)
            if text == str(err):
                raise
            raise type(err)(text) from None

    return wrapped


@_in_recipe_terms
def expand(
    recipe: RecipeLike,
    *,
    overrides: Union[Mapping[str, Any], Iterable[str]] = (),
    dry_run: bool = False,
    force: bool = False,
    callback: Optional[ProgressCallback] = None,
) -> ExpandResult:
    """Run a recipe (a YAML path, a mapping or a :class:`Recipe`) and return what it did.

    ``dry_run`` loads the data, splits and plans, and returns the plan with feasibility notes and
    estimates, writing nothing. Raises ConfigError / DataError / OutputExistsError (``output.path``
    exists and not ``force``; checked before any work) / TrainingError / GenerationError; nothing
    is left under ``output.path`` on any error.
    """
    t0 = time.perf_counter()
    spec = resolve_recipe(recipe, overrides)  # once: every stage below receives it
    recipe = spec.recipe
    out = Path(recipe.output.path)
    inputs = (recipe.data.path, recipe.data.unlabeled, recipe.plan.auto.validation, recipe.gan.run)
    _check_device(recipe)  # what a real run would find only when the GAN starts, and a dry run not at all
    if recipe.gan.run is not None and not Path(recipe.gan.run).exists():
        raise ConfigError(f"gan.run {recipe.gan.run} does not exist; give a run folder of `augmentgan train` or one of its .pt checkpoints, "
                          f"or set gan.run: null to train a GAN")
    if dry_run:
        check_not_over(out, inputs)  # what the real run would refuse, though the dry run writes nothing
    else:
        check_output(out, force=force, inputs=inputs)
    seqs = _streams(recipe.seed)  # the split's, the GAN's (for the dry run's cache key) and the copies'; expand_data uses the others
    seq_split, seq_gan, seq_copy = seqs["split"], seqs["gan"], seqs["copy"]
    notes: list[str] = _unused_settings(recipe)
    step = iter(range(1, len(STAGES) + 1))

    report(callback, "expand", next(step), len(STAGES), name="load")
    d = recipe.data
    data = load(d.path, channels=d.channels, size=d.size, split=d.split, keys=d.keys, skip_bad=d.skip_bad)
    if len(data) == 0:
        raise DataError(f"{d.path}: no images")
    if recipe.output.format == "folder":
        class_dirnames(data.class_names)  # a class name no folder can have: refused by a dry run too, not after the GAN trained
    _refuse_synthetic(data, str(d.path))
    report(callback, "expand", next(step), len(STAGES), name="split")
    train_idx, hold_idx, split_notes = split_holdout(data, recipe.holdout.fraction, np.random.default_rng(seq_split))
    notes += split_notes
    data_fingerprint, data_shape = data.fingerprint(), data.image_shape
    train, holdout = _split_in_place(data, train_idx, hold_idx)
    del data  # train views its image array now (and holdout holds its own rows): one copy of the dataset, not two

    if dry_run:
        _check_truncation_classes(recipe, train)  # a real run checks it in expand_data, before the GAN trains
        if recipe.gan.run is not None:  # its checkpoint, classes and image size, as the real run reads it
            _read_gan(Path(recipe.gan.run), recipe.gan.checkpoint, train, notes)
        report(callback, "expand", next(step), len(STAGES), name="plan")
        plan, _ = _plan_and_base(recipe, train, np.random.default_rng(seq_copy))
        gan_train = train  # the images the GAN trains on (plan.auto.split holds some out)
        val: Optional[LabeledImages] = None  # the images auto scores on, when not folds
        if recipe.plan.mix == "auto":
            a = recipe.plan.auto
            singles = len(a.sources)
            val = auto_validation(recipe, train, holdout.images)
            split = auto_split(recipe, train, seqs["auto"])
            scored_on, aside = f"plan.auto.validation {a.validation}", ""
            if split is not None:
                gan_train, val = train[split[0]], train[split[1]]
                scored_on, aside = f"plan.auto.split {a.split:g}", ", held out of the GAN's training"
            how = (f"{a.folds}-fold cross-validation inside the training split scores" if val is None
                   else f"{a.folds} proxy seeds on {scored_on} ({len(val)} images of class(es) {[val.class_names[c] for c in np.flatnonzero(val.class_counts())]}{aside}) score")
            notes.append(
                f"plan.mix is auto: after the GAN is trained, {how} "
                f"{', '.join(a.sources)}" + (f" and 50/50 blends of the best with each other ({singles + singles - 1} candidates)" if a.blends and singles > 1 else "")
                + f" with the evaluation CNN ({a.steps} steps each, {a.folds * (singles + (singles - 1 if a.blends else 0))} trainings); the best mean macro-F1 gives the shares. "
                "The per-source counts above are equal shares standing in until then"
            )
        holdout_counts = {name: int(n) for name, n in zip(holdout.class_names, holdout.class_counts())}
        h, w, c = data_shape
        estimates: dict[str, Any] = {"output_bytes_uncompressed": (plan.total + len(holdout)) * h * w * c, "gan_seconds": 0.0, "gan_seconds_note": "no GAN samples planned"}
        if plan.source_total("pseudo") > 0:
            notes.append(_pseudo_dry_run(recipe, train))
        if any(plan.source_total(s) > 0 for s in GAN_SOURCES):
            gcfg = spec.gan
            if recipe.gan.run is not None:
                estimates["gan_seconds_note"] = f"reusing {recipe.gan.run}"
            else:
                from augmentgan.gan.trainer import resolve_img_size

                resolve_img_size(gan_train, recipe.gan.img_size)  # images the GAN cannot train on fail here, not after the plan
                unseen = (holdout.images, None if val is None else val.images)
                fill = train_on_key(recipe, gan_train)
                key = gan_cache_key(gan_train, gcfg, _gan_train_config(recipe, _int_seed(seq_gan)), _unlabeled_for_gan(recipe, train, None, unseen, notes), fill)
                cached = recipe.gan.cache and (cache_dir() / "runs" / key / "checkpoints" / "final.pt").is_file()
                if fill is not None and not cached:
                    notes.append(f"gan.train_on classical: the GAN trains on {len(gan_train)} real images and {sum(_fill_counts(gan_train).values())} "
                                 f"samples of classical.pipeline filling every class to {int(gan_train.class_counts().max())}")
                estimates["gan_seconds"] = 0.0 if cached else round(estimate_gan_seconds(recipe, gcfg, max(h, w)), 1)
                estimates["gan_seconds_note"] = (
                    f"cached run {cache_dir() / 'runs' / key} will be reused" if cached
                    else f"rough CPU estimate: {recipe.gan.steps} steps x {gcfg.optim.n_dis + 1} passes x a per-architecture constant ({gcfg.model.arch}); a GPU is much faster"
                )
        return ExpandResult(plan, True, None, None, None, _planned_counts(plan), holdout_counts, notes + plan.notes, estimates=estimates, seconds=time.perf_counter() - t0)

    done = expand_data(train, spec, callback=callback, _step=step, _exclude=holdout.images, _parts=True)
    expanded, plan, run, cached, gan_lock, decision = done.data, done.plan, done.gan_run, done.gan_cached, done.gan_lock, done.mix_decision
    notes += done.notes
    holdout_counts = {name: int(n) for name, n in zip(holdout.class_names, holdout.class_counts())}

    report(callback, "expand", next(step), len(STAGES), name="write")
    fmt = recipe.output.format
    names = ("train.h5", "holdout.h5") if fmt == "h5" else ("train", "holdout")
    text = spec.text
    lock = {
        "recipe_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "input": {"spec": d.path, "fingerprint": data_fingerprint, "train_fingerprint": train.fingerprint(), "holdout_fingerprint": holdout.fingerprint()},
        "output": {names[0]: {"samples": len(expanded), "arrays_sha256": arrays_sha256(expanded)},
                   **({names[1]: {"samples": len(holdout), "arrays_sha256": arrays_sha256(holdout)}} if len(holdout) else {})},  # no holdout: none written
        "gan": {"run": None if run is None else str(run), **gan_lock},
        "seed": recipe.seed,
        "mix": dict(plan.mix),
        "versions": _versions(),
    }
    attrs: Optional[dict[str, Any]] = {"mix_decision": json.dumps(decision.to_dict(), sort_keys=True)} if decision is not None else None
    if done.pseudo:
        lock["pseudo"] = done.pseudo
        attrs = {**(attrs or {}), "pseudo_labeled_by": done.pseudo["labeled_by"], "pseudo_min_confidence": done.pseudo["min_confidence"]}
    compression = None if recipe.output.compression == "none" else recipe.output.compression
    with staged_output(out, force=force) as tmp:
        tmp.mkdir()
        save(expanded, tmp / names[0], format=fmt, compression=compression, seed=recipe.seed, recipe_text=text, extra_attrs=attrs, extra=done.extra or None)
        if len(holdout):
            save(holdout, tmp / names[1], format=fmt, compression=compression, seed=recipe.seed, recipe_text=text)
        (tmp / "recipe.yaml").write_text(text, encoding="utf-8")
        (tmp / "lock.json").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        (tmp / "counts.csv").write_text(_counts_csv(expanded), encoding="utf-8")
        if decision is not None:
            (tmp / "mix.json").write_text(json.dumps(decision.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        _write_report(tmp, expanded, run, notes, callback, decision, done.extra.get("parent2"), done.gan_checkpoint, done.extra.get("confidence"), done.pseudo)
    return ExpandResult(
        plan, False, out, out / names[0], (out / names[1]) if len(holdout) else None, _counts_table(expanded), holdout_counts,
        notes, run, cached, lock, seconds=time.perf_counter() - t0, mix_decision=decision,
    )
