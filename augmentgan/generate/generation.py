"""Generating a dataset: per-class samples from a trained GAN, truncated, quality-filtered, streamed out.

``generate(run, out, per_class=1000, truncation="auto", filters=["confidence:p=0.9"])`` writes
HDF5 or an ImageFolder tree with flat memory; ``sample_dataset(...)`` returns the samples in
memory; both are built on :class:`Sampler`, which the expansion pipeline can stream itself.
The same run, seed, counts, truncation and filters give byte-identical images whatever
``batch`` (see :mod:`augmentgan.generate.sampler`).

Output metadata (HDF5 file attributes, lists and dicts as JSON text; ``augmentgan.json`` of a
folder, as JSON values), besides the writers' own (format, version, created, seed):

==================  =====================================================================
run                 the run folder or checkpoint given
checkpoint          the checkpoint file read; ``checkpoint_sha256`` its sha256
step, ema           its G step; whether the EMA generator was used
data_fingerprint    fingerprint of the data the GAN was trained on
requested           list: samples requested per class index
truncation          list: threshold per class index (null: none)
truncation_auto     only with ``--truncation auto``: the grid and every class's scores
filters             list: each filter's name and resolved parameters
max_tries           candidates per requested sample before giving up
==================  =====================================================================

Per sample: ``source`` = gan, ``parent`` = -1, the label, and the extra datasets (folder:
manifest columns) ``truncation`` (float32, NaN for none) and ``z_index`` (the candidate index
in its class: its latent is ``class_latents(seed, class, z_index, 1, z_dim, truncation)``).
A PNG grid of the first 64 samples of every class is written beside the output in
``<name>-grids/<class>.png`` (never inside an ImageFolder tree, where it would become a class).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch
from torchvision.utils import make_grid, save_image

from augmentgan.data.atomic import check_output, staged_output
from augmentgan.data.folder import FolderWriter, class_dirnames
from augmentgan.data.hdf5 import H5Writer, check_compression
from augmentgan.data.io import output_format
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, GenerationError
from augmentgan.domain.classifier import DomainClassifier
from augmentgan.gan.checkpoint import GeneratorSource
from augmentgan.generate.auto_truncation import GRID, label
from augmentgan.generate.filters import FILTERS, FilterSpec, build_filters
from augmentgan.generate.report import ClassReport, GenerationReport
from augmentgan.generate.sampler import CHUNK, Counts, SampleBatch, Sampler, Truncation, resolve_counts
from augmentgan.progress import ProgressCallback

__all__ = [
    "CHUNK", "ClassReport", "FILTERS", "FilterSpec", "GenerationReport", "SampleBatch", "Sampler",
    "batch_extra", "build_filters", "generate", "grids_path", "resolve_counts", "sample_dataset", "sample_rows",
]

GRID_SAMPLES = 64
_GRID_MIN_SIDE = 32


def grids_path(out: str | os.PathLike, format: str) -> Path:
    """``synth.h5`` -> ``synth-grids/``; folder ``synth/`` -> ``synth-grids/`` (beside the output)."""
    out = Path(out)
    return out.with_name(f"{out.stem if format == 'h5' else out.name}-grids")


def _metadata(sampler: Sampler, counts: Sequence[int]) -> dict[str, Any]:
    info = sampler.info
    attrs: dict[str, Any] = {
        "run": sampler.run,
        "checkpoint": str(info.checkpoint),
        "checkpoint_sha256": info.sha256,
        "step": info.step,
        "ema": bool(info.ema),
        "data_fingerprint": info.data_fingerprint,
        "requested": list(counts),
        "truncation": sampler.truncation,
        "filters": [f.describe() for f in sampler.filters],
        "max_tries": sampler.max_tries,
    }
    if sampler.auto_scores:
        scores = {sampler.class_names[c]: s for c, s in sampler.auto_scores.items()}
        attrs["truncation_auto"] = {"grid": [label(t) for t in GRID], "scores": scores}
    return attrs


def _as_hdf5_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Lists and dicts as JSON text (HDF5 attributes hold scalars and flat arrays)."""
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in attrs.items()}


def _report(sampler: Sampler, t0: float, **where: Any) -> GenerationReport:
    info = sampler.info
    return GenerationReport(
        classes=sampler.class_reports, checkpoint=info.checkpoint, checkpoint_sha256=info.sha256, step=info.step,
        ema=info.ema, seed=sampler.seed, filters=[f.describe() for f in sampler.filters], seconds=time.perf_counter() - t0, **where,
    )


def write_grids(previews: Sequence[Sequence[np.ndarray]], class_names: Sequence[str], folder: Path, *, force: bool) -> Path:
    """One PNG per class with samples (8 per row; images under 32 px enlarged, nearest neighbour)."""
    names = class_dirnames(class_names)
    with staged_output(folder, force=force) as tmp:
        tmp.mkdir()
        for name, images in zip(names, previews):
            if not len(images):
                continue
            x = torch.from_numpy(np.concatenate(images)[:GRID_SAMPLES]).permute(0, 3, 1, 2).float().div_(255)
            factor = -(-_GRID_MIN_SIDE // min(x.shape[-2:]))
            if factor > 1:
                x = x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
            save_image(make_grid(x, nrow=8, padding=2, pad_value=0.5), tmp / f"{name}.png", format="png")
    return folder


def generate(
    run_or_ckpt: GeneratorSource,
    out: str | os.PathLike,
    *,
    counts: Optional[Counts] = None,
    per_class: Optional[int] = None,
    balance_to: Optional[LabeledImages] = None,
    truncation: Truncation = None,
    filters: Sequence[FilterSpec | str | Mapping[str, Any]] = (),
    format: Optional[str] = None,
    batch: int = 512,
    seed: int = 0,
    checkpoint: str | int = "auto",
    ema: bool = True,
    real: Optional[LabeledImages] = None,
    classifier: Optional[DomainClassifier] = None,
    classifier_steps: int = 400,
    max_tries: int = 10,
    device: str | torch.device = "auto",
    force: bool = False,
    grids: bool = True,
    compression: Optional[str] = "gzip",
    callback: Optional[ProgressCallback] = None,
) -> GenerationReport:
    """Generate samples from a run (or checkpoint) into ``out`` (HDF5 or ImageFolder), streaming.

    Counts: exactly one of ``counts`` (``{class: n}`` or ``"cat=100,dog=50"``), ``per_class`` or
    ``balance_to`` (top every class of that dataset up to its largest). ``truncation``: None, a
    threshold, ``{class: threshold}``, ``"cat=0.5,dog=1"`` or ``"auto"``. ``filters``: see
    :mod:`augmentgan.generate.filters`. ``format``: "h5" or "folder" (default from the suffix).
    ``batch``: samples per write (memory: ``batch`` images). ``checkpoint``: auto (best.pt when
    the run kept one, else final), best, final, last, a step or a .pt path (``run_or_ckpt`` may also
    be a :class:`~augmentgan.gan.checkpoint.GeneratorCheckpoint` read already). ``real``: the GAN's training data (needed by classifier-based filters and
    auto truncation; default: re-read from the run's recorded data spec). Raises
    OutputExistsError (output or grids exist, no ``force``), ConfigError, DataError, and
    GenerationError when a class cannot be filled within ``max_tries`` x its count; nothing is
    left under ``out`` on any error.
    """
    t0 = time.perf_counter()
    if int(batch) < 1:
        raise ConfigError(f"--batch {batch}: must be >= 1")
    fmt = output_format(out, format)
    compression = check_compression(compression)
    inputs = [run_or_ckpt] if isinstance(run_or_ckpt, (str, os.PathLike)) else []
    out = check_output(out, force=force, inputs=inputs)
    grid_dir = grids_path(out, fmt) if grids else None
    if grid_dir is not None:
        check_output(grid_dir, force=force, inputs=inputs)
    sampler = Sampler(
        run_or_ckpt, truncation=truncation, filters=filters, seed=seed, checkpoint=checkpoint, ema=ema, real=real,
        classifier=classifier, classifier_steps=classifier_steps, max_tries=max_tries, device=device, callback=callback,
    )
    wanted = resolve_counts(sampler.class_names, counts=counts, per_class=per_class, balance_to=balance_to, image_shape=sampler.image_shape)
    sampler.resolve_truncation(wanted)
    attrs = _metadata(sampler, wanted)
    extra = ("truncation", "z_index")
    if fmt == "h5":
        writer: H5Writer | FolderWriter = H5Writer(
            out, class_names=sampler.class_names, image_shape=sampler.image_shape, force=force, compression=compression,
            seed=sampler.seed, extra_attrs=_as_hdf5_attrs(attrs), extra_dtypes={"truncation": "f4", "z_index": "i8"},
        )
    else:
        writer = FolderWriter(out, class_names=sampler.class_names, force=force, seed=sampler.seed, extra_attrs=attrs, extra_columns=extra, total=sum(wanted))
    previews: list[list[np.ndarray]] = [[] for _ in sampler.class_names]
    pending: list[SampleBatch] = []

    def flush() -> None:
        if pending:
            labels = np.concatenate([b.labels for b in pending])
            writer.append(
                np.concatenate([b.images for b in pending]), labels, np.full(len(labels), Source.gan.value, np.uint8),
                np.full(len(labels), -1, np.int64), batch_extra(pending),
            )
            pending.clear()

    with writer:
        for b in sampler.stream(wanted):
            pending.append(b)
            shown = previews[int(b.labels[0])]
            if sum(len(p) for p in shown) < GRID_SAMPLES:
                shown.append(b.images)
            if sum(len(p.labels) for p in pending) >= batch:
                flush()
        flush()
    grid_out = write_grids(previews, sampler.class_names, grid_dir, force=force) if grid_dir is not None else None
    return _report(sampler, t0, out=writer.path, format=fmt, grids=grid_out)


def batch_extra(batches: Sequence[SampleBatch]) -> dict[str, np.ndarray]:
    """What generation writes beside each sample of ``batches`` (in their order): ``truncation``, its
    class's threshold (float32, NaN for none), and ``z_index``, the index of its latent in its class."""
    return {
        "truncation": np.concatenate([np.full(len(b.labels), np.nan if b.truncation is None else b.truncation, np.float32) for b in batches]
                                     or [np.zeros(0, np.float32)]),
        "z_index": np.concatenate([b.z_index for b in batches] or [np.zeros(0, np.int64)]),
    }


def sample_dataset(run_or_ckpt: GeneratorSource, **options: Any) -> tuple[LabeledImages, GenerationReport]:
    """The samples :func:`generate` would write, in memory (``source`` gan, ``parent`` -1), and the report;
    the keyword options are :func:`sample_rows`'s. Every sample of class ``c`` used the threshold
    ``report.classes[c].truncation``; :func:`sample_rows` returns the per-sample ``truncation`` and
    ``z_index`` as well."""
    data, _, report = sample_rows(run_or_ckpt, **options)
    return data, report


def sample_rows(
    run_or_ckpt: GeneratorSource,
    *,
    counts: Optional[Counts] = None,
    per_class: Optional[int] = None,
    balance_to: Optional[LabeledImages] = None,
    truncation: Truncation = None,
    filters: Sequence[FilterSpec | str | Mapping[str, Any]] = (),
    seed: int = 0,
    checkpoint: str | int = "auto",
    ema: bool = True,
    real: Optional[LabeledImages] = None,
    classifier: Optional[DomainClassifier] = None,
    classifier_steps: int = 400,
    max_tries: int = 10,
    device: str | torch.device = "auto",
    callback: Optional[ProgressCallback] = None,
) -> tuple[LabeledImages, dict[str, np.ndarray], GenerationReport]:
    """The samples :func:`generate` would write, in memory (``source`` gan, ``parent`` -1), the per-sample
    columns it writes beside them (:func:`batch_extra`: ``truncation``, ``z_index``), and the report."""
    t0 = time.perf_counter()
    sampler = Sampler(
        run_or_ckpt, truncation=truncation, filters=filters, seed=seed, checkpoint=checkpoint, ema=ema, real=real,
        classifier=classifier, classifier_steps=classifier_steps, max_tries=max_tries, device=device, callback=callback,
    )
    wanted = resolve_counts(sampler.class_names, counts=counts, per_class=per_class, balance_to=balance_to, image_shape=sampler.image_shape)
    h, w, c = sampler.image_shape
    total = int(sum(wanted))
    images, labels = np.empty((total, h, w, c), np.uint8), np.empty(total, np.int64)  # filled as batches arrive: no second copy
    done, meta = 0, []
    for b in sampler.stream(wanted):  # exactly the wanted counts, or it raises
        images[done:done + len(b.labels)], labels[done:done + len(b.labels)] = b.images, b.labels
        done += len(b.labels)
        meta.append(SampleBatch(b.images[:0], b.labels, b.z_index, b.truncation))  # no second copy of the images
    if done != total:
        raise GenerationError(f"internal check: the sampler gave {done} samples for {total} asked; rerun with --debug and report it")
    data = LabeledImages(images, labels, sampler.class_names, np.full(len(labels), Source.gan.value, np.uint8), np.full(len(labels), -1, np.int64))
    return data, batch_extra(meta), _report(sampler, t0)
