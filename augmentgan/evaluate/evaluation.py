"""``evaluate(synth, real)``: every metric of a synthetic set against real data, per class and overall.

- Only synthetic samples are evaluated: rows of ``synth`` whose source is ``real`` (the real part of
  an expanded ``train.h5``) are left out, and a note says how many. ``all_rows=True`` evaluates every
  row (another generator's images, or a real split as a sanity check: files that record no provenance
  read as real).
- Classes are matched by name; a synthetic class unknown to the real data is an error. Synthetic
  images of another size or channel count are center-cropped and resized to the real size (the
  feature extractor is trained on, or set up for, the real images), with a note.
- Per class: FID, KID, precision/recall, density/coverage, diversity (synthetic / real, flag below
  :data:`~augmentgan.evaluate.metrics.COLLAPSE_RATIO`), memorization rate, CAS recall of the class.
  Overall: the same on all samples against all real images, those of classes without synthetic
  samples included (so a class the synthetic set lacks lowers recall and coverage); diversity: the
  mean of the per-class ratios, collapsed classes listed; memorization over all samples, each against
  its own class; and the CAS accuracy.
- **CAS** (classification accuracy score, Ravuri and Vinyals 2019): the small domain CNN trained on
  the synthetic samples only (not cached), tested on the real data. Pass a holdout the GAN has
  never seen as ``real`` for an honest CAS (and honest memorization numbers).
- Sets larger than ``max_samples`` are subsampled (seeded) for the metrics (not for CAS).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score, recall_score

from augmentgan.data.io import conform
from augmentgan.data.types import LabeledImages, Source
from augmentgan.domain.features import RealFeatures, build_extractor
from augmentgan.errors import DataError, Flag
from augmentgan.evaluate import metrics as M
from augmentgan.progress import ProgressCallback, report

__all__ = ["EvaluationResult", "evaluate", "synthetic_part", "align_classes", "nan_to_none"]

MEMORIZATION_Q = 0.01


@dataclass
class EvaluationResult:
    features: str
    feature_dim: int
    overall: dict[str, Any]
    per_class: dict[str, dict[str, Any]]
    cas: Optional[dict[str, Any]]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features, "feature_dim": self.feature_dim, "overall": self.overall, "per_class": self.per_class,
            "cas": self.cas, "settings": self.settings, "notes": list(self.notes),
        }


def synthetic_part(data: LabeledImages) -> tuple[LabeledImages, int]:
    """(the rows whose source is not ``real``, how many real rows were left out)."""
    real_rows = data.source == Source.real.value
    return data[np.flatnonzero(~real_rows)], int(real_rows.sum())


def align_classes(synth: LabeledImages, real: LabeledImages) -> LabeledImages:
    """``synth`` relabelled to ``real``'s class indices (matched by name)."""
    if synth.class_names == real.class_names:
        return synth
    unknown = [n for n in synth.class_names if n not in real.class_names]
    if unknown:
        raise DataError(f"synthetic class(es) {unknown} are not in the real data (classes {list(real.class_names)}); evaluate against the data the generator was trained on")
    mapping = np.array([real.class_names.index(n) for n in synth.class_names], np.int64)
    return LabeledImages(synth.images, mapping[synth.labels], real.class_names, synth.source, synth.parent)


def _subsample(x: torch.Tensor, limit: int, rng: np.random.Generator) -> torch.Tensor:
    if len(x) <= limit:
        return x
    return x[torch.from_numpy(np.sort(rng.choice(len(x), limit, replace=False)))]


def nan_to_none(value: Any) -> Any:
    """``value`` with every non-finite float (in nested dicts, lists and tuples) as None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_to_none(v) for v in value]
    return value


def _set_metrics(real_f: torch.Tensor, synth_f: torch.Tensor, k: int, rng: np.random.Generator) -> dict[str, Any]:
    kid_mean, kid_std = M.kid(real_f, synth_f, rng=rng)
    return {
        "n_real": len(real_f), "n_synth": len(synth_f), "fid": M.fid(real_f, synth_f),
        "kid": kid_mean, "kid_std": kid_std, **M.prdc(real_f, synth_f, k),
    }


def _cas(synth: LabeledImages, real: LabeledImages, *, seed: int, steps: int, device: Any, callback: Optional[ProgressCallback]) -> dict[str, Any]:
    from augmentgan.domain.classifier import train_classifier

    model = train_classifier(synth, seed=seed, steps=steps, device=device, use_cache=False, callback=callback)
    predicted = model.predict(real.images).cpu().numpy()
    recalls = recall_score(real.labels, predicted, labels=np.arange(real.num_classes), average=None, zero_division=0)
    present = real.class_counts() > 0
    return {
        "accuracy": float(np.mean(predicted == real.labels)),
        "balanced_accuracy": float(balanced_accuracy_score(real.labels, predicted)),
        "per_class_recall": {n: float(r) for n, r, p in zip(real.class_names, recalls, present) if p},
        "steps": steps,
    }


def evaluate(
    synth: LabeledImages,
    real: LabeledImages,
    *,
    features: str = "domain",
    inception_weights: Optional[str | os.PathLike] = None,
    k: int = M.NN_K,
    memorization_q: float = MEMORIZATION_Q,
    cas: bool = True,
    cas_steps: int = 400,
    classifier_steps: Optional[int] = None,
    max_samples: int = 10000,
    seed: int = 0,
    device: str | torch.device = "cpu",
    callback: Optional[ProgressCallback] = None,
    all_rows: bool = False,
) -> EvaluationResult:
    """All metrics of ``synth`` against ``real`` (see the module docstring for the definitions).

    Progress: stage ``"evaluate"`` per class (and the classifiers' own ``"classifier"`` stage).
    """
    notes: list[str] = []
    synth, left_out = (synth, 0) if all_rows else synthetic_part(synth)
    if left_out:
        notes.append(f"{left_out} real rows of the synthetic input were left out; only generated/augmented samples are evaluated")
    if len(synth) == 0:
        if not left_out:
            raise DataError("the synthetic input has no synthetic samples (it holds no images); pass generated data (augmentgan generate output or an expanded train.h5)")
        raise DataError(
            f"the synthetic input has no synthetic samples (every one of its {left_out} rows is marked real); pass generated data (augmentgan generate "
            "output or an expanded train.h5)",
            Flag("all_rows", before=", or ", after=" to evaluate every row (images of another generator, which record no provenance, read as real)"),
        )
    if len(real) == 0:
        raise DataError("the real data has no images")
    synth = align_classes(synth, real)
    h, w, c = real.image_shape
    if synth.image_shape != real.image_shape:
        if h != w:
            raise DataError(f"synthetic images are {'x'.join(map(str, synth.image_shape))}, the real ones {h}x{w}x{c} (not square); resize one to the other")
        notes.append(f"synthetic images resized from {'x'.join(map(str, synth.image_shape))} to the real {h}x{w}x{c}")
        synth = conform(synth, channels=c, size=h)
    extractor = build_extractor(features, real, inception_weights=inception_weights, seed=seed, steps=classifier_steps, device=device, callback=callback)
    ctx = RealFeatures(class_names=real.class_names, classifier=extractor, real=real)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE7A1]))

    per_class: dict[str, dict[str, Any]] = {}
    all_real, all_synth, memorized, ratios, collapsed = [], [], 0, [], []
    present = [cls for cls in range(real.num_classes) if (synth.labels == cls).any()]
    missing = [real.class_names[cls] for cls in range(real.num_classes) if cls not in present]
    if missing:
        notes.append(f"no synthetic samples of class(es) {missing}")
    for i, cls in enumerate(present):
        name = real.class_names[cls]
        report(callback, "evaluate", i, len(present), name=name)
        s_images = synth.images[synth.labels == cls]
        s_f = _subsample(extractor.features(s_images).double().cpu(), max_samples, rng)
        if not (real.labels == cls).any():
            notes.append(f"class {name!r} has synthetic samples but no real images to compare with")
            continue
        r_f = _subsample(ctx.real_features(cls).double().cpu(), max_samples, rng)
        row = _set_metrics(r_f, s_f, k, rng)
        threshold = ctx.nn_quantile(cls, memorization_q)
        near = M.nearest_distances(s_f, ctx.real_features(cls).double().cpu()) < threshold
        memorized += int(near.sum())
        div_r, div_s = M.diversity(r_f), M.diversity(s_f)
        ratio = div_s / div_r if div_r > 0 else math.nan
        row.update(memorization=float(near.mean()), memorization_threshold=threshold, diversity_real=div_r, diversity_synth=div_s, diversity_ratio=ratio,
                   mode_collapse=bool(ratio < M.COLLAPSE_RATIO) if math.isfinite(ratio) else None)
        if math.isfinite(ratio):
            ratios.append(ratio)
        if row["mode_collapse"]:
            collapsed.append(name)
        per_class[name] = row
        all_real.append(r_f)
        all_synth.append(s_f)
    report(callback, "evaluate", len(present), len(present))
    if not per_class:
        raise DataError("no class has both real and synthetic samples; check that the class names of both sets match")
    real_counts = real.class_counts()
    lacking = [cls for cls in range(real.num_classes) if cls not in present and real_counts[cls]]
    if lacking:  # the real images of classes without samples count in the overall numbers: recall and coverage see them missed
        all_real += [_subsample(ctx.real_features(cls).double().cpu(), max_samples, rng) for cls in lacking]
        notes.append(f"overall recall and coverage count the {int(real_counts[lacking].sum())} real images of "
                     f"{len(lacking)} class(es) without synthetic samples as missed")
    overall = _set_metrics(_subsample(torch.cat(all_real), max_samples, rng), _subsample(torch.cat(all_synth), max_samples, rng), k, rng)
    n_eval = sum(row["n_synth"] for row in per_class.values())
    overall.update(
        memorization=memorized / n_eval if n_eval else math.nan,
        diversity_ratio=float(np.mean(ratios)) if ratios else math.nan,
        mode_collapse_classes=collapsed,
    )
    cas_result = None
    if cas and missing:
        notes.append("CAS skipped: a classifier trained on the synthetic set cannot learn the classes it has no samples of")
    elif cas:
        cas_result = _cas(synth, real, seed=seed, steps=cas_steps, device=device, callback=callback)
        for name, recall in cas_result["per_class_recall"].items():
            if name in per_class:
                per_class[name]["cas_recall"] = recall
        overall["cas_accuracy"] = cas_result["accuracy"]
    dim = int(torch.cat(all_real).shape[1])
    settings = {"k": k, "memorization_q": memorization_q, "collapse_ratio": M.COLLAPSE_RATIO, "fid_eps": M.FID_EPS,
                "kid_subsets": M.KID_SUBSETS, "kid_subset_size": M.KID_SUBSET_SIZE, "max_samples": max_samples, "seed": seed}
    return EvaluationResult(features, dim, nan_to_none(overall), {n: nan_to_none(r) for n, r in per_class.items()}, cas_result, settings, notes)
