"""GAN inversion: a latent code for every real image, for any generator.

Two steps (Perarnau et al. 2016 "Invertible conditional GANs"; Zhu et al. 2016 / 2020 "In-domain
GAN inversion": an encoder for the initial guess, then per-image optimisation):

1. **Encoder** (``EncodeSettings.encoder``, ``augmentgan encode --encoder``): ``fitted`` (default)
   fits one after training as below; ``joint`` takes the encoder the run trained jointly with the GAN
   (``bigan.weight`` > 0: BiGAN/ALI, Donahue et al. 2017, Dumoulin et al. 2017;
   :mod:`augmentgan.gan.bigan`), nothing is fitted. Fitted is the default even for a BiGAN run: on
   mnist-lt's BiGAN generators its codes made better latent-smote samples than the joint encoder's
   (macro-F1 0.832 against 0.790 over 3 seeds; benchmarks/RESULTS.md). The joint encoder was trained beside the raw generator; the EMA copy (the default
   generator here) follows it closely, and refinement absorbs the difference (``--no-ema`` pairs
   them exactly). Fitted: a small conditional CNN ``E(x, y) -> z`` is trained on pairs ``(G(z, y), z)``
   drawn from the (EMA) generator itself, z ~ N(0, I) as in training and y uniform over the
   classes. Its loss is the latent regression ``|E(G(z, y), y) - z|^2`` plus the pixel
   reconstruction ``|G(E(G(z, y), y), y) - G(z, y)|^2`` (many latents draw near-identical images:
   the image term keeps it from averaging them). G's samples go through the same resizing as the
   real images (to the data's size and back to the training size), so E sees what it will see.
2. **Refinement.** Starting from ``E(x, y)``, every image's code is optimised alone (Adam on z; the
   loss is a per-image sum, so one image's result does not depend on the others of its batch) for
   ``refine_steps`` steps against ``pixel_weight * MSE(G(z, y), x)`` (both in [-1, 1], at the
   data's size) ``+ feature_weight * |f(G(z, y)) - f(x)|^2`` where ``f`` is the L2-normalised
   feature vector of the domain classifier trained on the real data
   (:mod:`augmentgan.domain.classifier`; features in [0, 2]), plus a prior term
   ``prior_weight * max(mean(z^2) - 1, 0)`` that keeps codes inside the shell where N(0, I) puts
   G's training latents (zero for a typical code). The best code seen is kept,
   so refining never makes an image's error worse than the encoder's.

The reconstruction ``error`` of an image is that loss without the prior at its kept code;
``pixel_rmse`` (0-255 scale) and ``feature_distance`` are its two parts on their own scales.

``augmentgan encode RUN DATA --out codes.h5`` writes (atomically; ``--force`` replaces):

====================  ==========================  =============================================
dataset               shape, dtype                notes
====================  ==========================  =============================================
codes                 (N, z_dim) float32          the refined latent code of image i of DATA
labels                (N,) int64                  its class index (the run's classes)
class_names           (K,) UTF-8 string
error                 (N,) float32                reconstruction error after refinement
error_encoder         (N,) float32                the same at the encoder's guess
pixel_rmse            (N,) float32                RMSE of the reconstruction, 0-255 scale
feature_distance      (N,) float32                domain-feature distance, 0-2
reconstructions       (N, H, W, C) uint8          ``G(code, label)`` at the data's size
====================  ==========================  =============================================

File attributes: ``format`` = "augmentgan-codes", ``format_version``, ``augmentgan_version``,
``created``, ``seed``, ``run``, ``checkpoint``, ``checkpoint_sha256``, ``step``, ``ema``,
``z_dim``, ``encoder`` (the encoder used: ``joint``, ``fitted``, or ``given`` when a caller passed
one), ``data_fingerprint`` (of DATA), ``gan_data_fingerprint``, ``settings`` (JSON; its
``encoder`` is the one used, ``encoder_requested`` what was asked for). Beside
it, ``<name>-reconstructions.png``: real images (left) beside their reconstructions (right),
worst first.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augmentgan.data.atomic import StagedOutput, check_output, probe_writable, write_failure
from augmentgan.data.metadata import output_metadata
from augmentgan.data.types import LabeledImages
from augmentgan.errors import ConfigError, DataError, Flag
from augmentgan.domain.classifier import DomainClassifier, train_classifier
from augmentgan.gan.bigan import Encoder
from augmentgan.gan.gan import resolve_device
from augmentgan.gan.checkpoint import GeneratorCheckpoint, GeneratorInfo, GeneratorSource, open_generator
from augmentgan.gan.fit import Fit, to_data, to_train
from augmentgan.progress import ProgressCallback, report

__all__ = ["ENCODERS", "Codes", "EncodeSettings", "Encoder", "check_data", "choose_encoder", "decode", "encoder_kind", "encode", "encode_images", "fit_encoder", "read_codes", "report_path"]

FORMAT = "augmentgan-codes"
FORMAT_VERSION = 1
_CHUNK = 128  # images refined together (each on its own: the loss is a per-image sum)
_REPORT_PAIRS = 64
ENCODERS = ("fitted", "joint")  # EncodeSettings.encoder: where the initial codes come from


@dataclass(frozen=True)
class EncodeSettings:
    """Everything that determines the codes besides the generator and the images."""

    encoder_steps: int = 300
    encoder_batch: int = 64
    encoder_lr: float = 1e-3
    encoder_width: int = 32
    refine_steps: int = 50
    refine_lr: float = 0.1
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    prior_weight: float = 0.01
    classifier_steps: int = 400
    seed: int = 0
    encoder: str = "fitted"  # fitted (fit_encoder) or joint (the run's BiGAN encoder)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ConfigError(f"encoder {self.encoder!r}: use one of {', '.join(ENCODERS)}")
        if self.encoder_steps < 0 or self.refine_steps < 0 or self.encoder_batch < 1 or self.encoder_width < 1:
            raise ConfigError(f"encoding needs encoder_steps >= 0, refine_steps >= 0, encoder_batch >= 1 and encoder_width >= 1, got {asdict(self)}")
        if not (self.encoder_lr > 0 and self.refine_lr > 0) or min(self.pixel_weight, self.feature_weight, self.prior_weight) < 0:
            raise ConfigError(f"encoding needs positive learning rates and weights >= 0, got {asdict(self)}")
        if self.pixel_weight + self.feature_weight <= 0:
            raise ConfigError("pixel_weight and feature_weight cannot both be 0: the reconstruction error would be 0")


@dataclass
class Codes:
    """Per-image latent codes of a dataset under one generator, with their reconstruction errors."""

    codes: np.ndarray  # float32 (N, z_dim)
    labels: np.ndarray  # int64 (N,)
    class_names: tuple[str, ...]
    error: np.ndarray  # float32 (N,)
    error_encoder: np.ndarray  # float32 (N,)
    pixel_rmse: np.ndarray  # float32 (N,), 0-255
    feature_distance: np.ndarray  # float32 (N,)
    reconstructions: np.ndarray  # uint8 (N, H, W, C)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def per_class(self) -> dict[str, dict[str, float]]:
        """Per class: images, mean and median error, mean pixel RMSE and feature distance, mean encoder-only error."""
        out = {}
        for c, name in enumerate(self.class_names):
            m = self.labels == c
            if not m.any():
                continue
            out[name] = {
                "images": int(m.sum()), "error_mean": float(self.error[m].mean()), "error_median": float(np.median(self.error[m])),
                "pixel_rmse": float(self.pixel_rmse[m].mean()), "feature_distance": float(self.feature_distance[m].mean()),
                "error_encoder_mean": float(self.error_encoder[m].mean()),
            }
        return out


# --- checks and plumbing ---------------------------------------------------------------------------
def check_data(data: LabeledImages, info: GeneratorInfo, where: str = "DATA") -> None:
    """DataError (one line, naming both) when ``data``'s classes or image size differ from the checkpoint's."""
    if tuple(data.class_names) != tuple(info.class_names):
        raise DataError(
            f"{where} has classes {list(data.class_names)} but checkpoint {info.checkpoint} was trained on {list(info.class_names)}; "
            "encode data with the run's classes in the same order"
        )
    h, w = (int(v) for v in info.data_size)
    if tuple(data.image_shape) != (h, w, info.channels):
        dh, dw, dc = data.image_shape
        raise DataError(
            f"{where} images are {dh}x{dw}x{dc} (HxWxC) but checkpoint {info.checkpoint} makes {h}x{w}x{info.channels}; read them as for training",
            *((Flag("size", str(h), before=": "),) if (dh, dw) != (h, w) else ()),
            *((Flag("channels", str(info.channels), before=": " if (dh, dw) == (h, w) else ", "),) if dc != info.channels else ()),
        )


def _present_classes(data: LabeledImages) -> LabeledImages:
    """``data`` with only the classes it has images of (renumbered): the feature loss's classifier is
    learned from DATA, which may hold some of the run's classes only (a rare class's images, a
    validation set); it needs two of them."""
    present = data.present_classes()
    if present.num_classes < 2:
        raise DataError(f"DATA has images of one class ({present.class_names[0]!r}): the feature loss needs a classifier of two or more; "
                        f"add images of another class of the run or set --feature-weight 0")
    return present


def _to_float(images: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _to_uint8(x: Tensor) -> np.ndarray:
    return x.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _features(classifier: DomainClassifier, x: Tensor) -> Tensor:
    """Differentiable domain features (the classifier's :meth:`features`, without no_grad)."""
    return F.normalize(torch.cat(classifier._pooled(x), dim=1), dim=1)


def fit_encoder(
    G: nn.Module, info: GeneratorInfo, settings: EncodeSettings = EncodeSettings(), *, device: str | torch.device = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> Encoder:
    """Train an :class:`Encoder` on (G(z, y), z) pairs from ``G`` (frozen); eval mode on return."""
    device = resolve_device(device)
    gen = torch.Generator(device="cpu").manual_seed(int(settings.seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(settings.seed))
        E = Encoder(info.img_size, info.channels, len(info.class_names), G.z_dim, settings.encoder_width)
    E = E.to(device).train()
    G = G.eval().requires_grad_(False)
    opt = torch.optim.Adam(E.parameters(), lr=settings.encoder_lr, betas=(0.5, 0.999))
    data_size = tuple(int(v) for v in info.data_size)
    k, b = len(info.class_names), settings.encoder_batch
    every = max(1, settings.encoder_steps // 20)
    for step in range(1, settings.encoder_steps + 1):
        z = torch.randn(b, G.z_dim, generator=gen).to(device)
        y = torch.randint(0, k, (b,), generator=gen).to(device)
        with torch.no_grad():
            x = to_train(to_data(G(z, y).float(), data_size, info.fit), info.img_size, info.fit)  # what a real image looks like to E
        z_hat = E(x, y)
        loss = F.mse_loss(z_hat, z) + F.mse_loss(G(z_hat, y).float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == settings.encoder_steps:
            report(callback, "encoder", step, settings.encoder_steps, loss=float(loss.detach()))
    return E.eval().requires_grad_(False)


def encoder_kind(source: Optional[GeneratorCheckpoint], settings: EncodeSettings) -> str:
    """What ``settings.encoder`` resolves to for ``source``: ``"joint"`` or ``"fitted"``, without building
    anything. ``joint`` on a run without a joint encoder is a one-line ConfigError naming the run."""
    has = source is not None and source.has_encoder
    if settings.encoder == "joint" and not has:
        where = f"run {source.source}" if source is not None else "no checkpoint was given (encode_images(..., source=) or encoder=), so"
        raise ConfigError(f"--encoder joint: {where} has no jointly trained encoder (trained with bigan.weight=0); train with --set bigan.weight=1 (BiGAN), or use --encoder fitted")
    return settings.encoder


def choose_encoder(source: Optional[GeneratorCheckpoint], settings: EncodeSettings, *, device: str | torch.device = "cpu") -> tuple[Optional[nn.Module], str]:
    """``(encoder, kind)`` for ``settings.encoder`` (:func:`encoder_kind`): ``(the run's joint encoder, "joint")``
    or ``(None, "fitted")`` (None: :func:`encode_images` fits one)."""
    kind = encoder_kind(source, settings)
    return (source.encoder(device) if kind == "joint" and source is not None else None), kind


def _losses(
    G: nn.Module, classifier: DomainClassifier, z: Tensor, y: Tensor, x: Tensor, f_x: Tensor, data_size: tuple[int, int], fit: Fit, s: EncodeSettings,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per image: (error, pixel MSE in [-1, 1] units, squared feature distance, reconstruction)."""
    rec = to_data(G(z, y).float(), data_size, fit)
    pix = (rec - x).pow(2).flatten(1).mean(1)
    feat = (_features(classifier, rec) - f_x).pow(2).sum(1) if s.feature_weight > 0 else torch.zeros_like(pix)
    return s.pixel_weight * pix + s.feature_weight * feat, pix, feat, rec


def encode_images(
    G: nn.Module,
    info: GeneratorInfo,
    data: LabeledImages,
    *,
    encoder: Optional[nn.Module] = None,
    source: Optional[GeneratorCheckpoint] = None,
    classifier: Optional[DomainClassifier] = None,
    settings: EncodeSettings = EncodeSettings(),
    device: str | torch.device = "cpu",
    callback: Optional[ProgressCallback] = None,
) -> Codes:
    """The refined codes of every image of ``data`` (its classes and size must be the checkpoint's).

    ``encoder``: one to use as it is (recorded as ``given``); else ``settings.encoder`` decides
    (:func:`choose_encoder`): the joint encoder of ``source`` (the checkpoint ``G`` came from), or one
    fitted with :func:`fit_encoder`. ``classifier``: the domain classifier of the feature loss (else
    trained on ``data``, or read from the cache). Progress: stages ``"encoder"`` (fitting only),
    ``"classifier"`` and ``"refine"`` (images done).
    """
    check_data(data, info)
    learn_features = classifier is None and settings.feature_weight > 0
    if learn_features and len(data) == 0:
        raise DataError("DATA has no images to encode")
    feature_data = _present_classes(data) if learn_features else None  # refused before the encoder is fitted
    device = resolve_device(device)
    G = G.to(device).eval().requires_grad_(False)
    kind = "given"
    if encoder is None:
        encoder, kind = choose_encoder(source, settings, device=device)
    if encoder is None:
        encoder = fit_encoder(G, info, settings, device=device, callback=callback)
    encoder = encoder.to(device).eval().requires_grad_(False)
    if feature_data is not None:
        classifier = train_classifier(feature_data, steps=settings.classifier_steps, device=device, callback=callback)
    if classifier is not None:
        classifier = classifier.to(device).eval().requires_grad_(False)
    data_size = tuple(int(v) for v in info.data_size)
    n = len(data)
    codes = np.zeros((n, G.z_dim), np.float32)
    out = {name: np.zeros(n, np.float32) for name in ("error", "error_encoder", "pixel_rmse", "feature_distance")}
    recon = np.zeros((n, *data.image_shape), np.uint8)
    report(callback, "refine", 0, n)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        x = _to_float(data.images[sl], device)
        y = torch.from_numpy(data.labels[sl]).to(device)
        with torch.no_grad():
            f_x = _features(classifier, x) if classifier is not None and settings.feature_weight > 0 else None
            z0 = encoder(to_train(x, info.img_size, info.fit), y)
            err, pix, feat, rec = _losses(G, classifier, z0, y, x, f_x, data_size, info.fit, settings)
        out["error_encoder"][sl] = err.cpu().numpy()
        best_z, best_err, best_pix, best_feat, best_rec = z0.clone(), err.clone(), pix.clone(), feat.clone(), rec.clone()
        if settings.refine_steps > 0:
            z = z0.clone().requires_grad_(True)
            opt = torch.optim.Adam([z], lr=settings.refine_lr)
            for _ in range(settings.refine_steps):
                err, pix, feat, rec = _losses(G, classifier, z, y, x, f_x, data_size, info.fit, settings)
                with torch.no_grad():
                    better = err < best_err
                    best_z[better], best_err[better], best_pix[better], best_feat[better], best_rec[better] = z[better], err[better], pix[better], feat[better], rec[better]
                loss = (err + settings.prior_weight * F.relu(z.pow(2).mean(1) - 1.0)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():  # the last step's result
                err, pix, feat, rec = _losses(G, classifier, z, y, x, f_x, data_size, info.fit, settings)
                better = err < best_err
                best_z[better], best_err[better], best_pix[better], best_feat[better], best_rec[better] = z[better], err[better], pix[better], feat[better], rec[better]
        codes[sl] = best_z.detach().cpu().numpy()
        out["error"][sl] = best_err.detach().cpu().numpy()
        out["pixel_rmse"][sl] = best_pix.detach().sqrt().mul(127.5).cpu().numpy()
        out["feature_distance"][sl] = best_feat.detach().clamp_min(0).sqrt().cpu().numpy()
        recon[sl] = _to_uint8(best_rec)
        report(callback, "refine", sl.stop, n)
    attrs = {
        "checkpoint": str(info.checkpoint), "checkpoint_sha256": info.sha256, "step": info.step, "ema": bool(info.ema),
        "z_dim": int(G.z_dim), "encoder": kind, "data_fingerprint": data.fingerprint(), "gan_data_fingerprint": info.data_fingerprint,
        "settings": json.dumps({**asdict(settings), "encoder": kind, "encoder_requested": settings.encoder}, sort_keys=True),
    }
    return Codes(codes, data.labels.copy(), tuple(data.class_names), out["error"], out["error_encoder"], out["pixel_rmse"], out["feature_distance"], recon, attrs)


@torch.no_grad()
def decode(G: torch.nn.Module, codes: np.ndarray, labels: np.ndarray, data_size: tuple[int, int], channels: int, device: torch.device, fit: Fit) -> np.ndarray:
    """uint8 (N, H, W, C) images ``G(code, label)`` at the data's size, in fixed chunks."""
    out = []
    for start in range(0, len(codes), _CHUNK):
        z = torch.from_numpy(np.ascontiguousarray(codes[start : start + _CHUNK], np.float32)).to(device)
        y = torch.from_numpy(np.ascontiguousarray(labels[start : start + _CHUNK], np.int64)).to(device)
        out.append(_to_uint8(to_data(G(z, y).float(), data_size, fit)))
    return np.concatenate(out) if out else np.zeros((0, *data_size, channels), np.uint8)



# --- files -----------------------------------------------------------------------------------------
def report_path(out: str | os.PathLike) -> Path:
    """``codes.h5`` -> ``codes-reconstructions.png`` (beside it)."""
    out = Path(out)
    return out.with_name(f"{out.stem}-reconstructions.png")


def write_codes(codes: Codes, path: str | os.PathLike, *, force: bool = False, seed: Optional[int] = None, extra_attrs: Optional[dict[str, Any]] = None) -> Path:
    """Write ``codes`` as HDF5 (the layout of the module docstring), atomically."""
    staged = StagedOutput(path, force=force)
    attrs = output_metadata(FORMAT, seed=seed, extra_attrs={**codes.attrs, **(extra_attrs or {})})
    attrs["format_version"] = FORMAT_VERSION
    try:
        with h5py.File(staged.tmp, "w") as f:
            f.create_dataset("codes", data=codes.codes.astype(np.float32))
            f.create_dataset("labels", data=codes.labels.astype(np.int64))
            f.create_dataset("class_names", data=list(codes.class_names), dtype=h5py.string_dtype("utf-8"))
            for name in ("error", "error_encoder", "pixel_rmse", "feature_distance"):
                f.create_dataset(name, data=getattr(codes, name).astype(np.float32))
            h, w, c = codes.reconstructions.shape[1:] if len(codes) else (1, 1, 1)
            f.create_dataset("reconstructions", data=codes.reconstructions, chunks=(1, h, w, c) if len(codes) else None, compression="gzip", compression_opts=4)
            for key, value in attrs.items():
                f.attrs[key] = value
    except OSError as err:  # a read-only or virtual file system, a full disk: which output, not an internal error
        staged.abort()
        raise write_failure(path, err) from None
    except BaseException:
        staged.abort()
        raise
    return staged.commit()


def read_codes(path: str | os.PathLike) -> Codes:
    """Read a file written by :func:`write_codes` (DataError for anything else)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path} is not a readable HDF5 file ({' '.join(str(err).split())}); give a file written by `augmentgan encode`") from None
    with f:
        if f.attrs.get("format") != FORMAT:
            raise DataError(f"{path} is not an augmentgan codes file (format {f.attrs.get('format')!r}); write one with `augmentgan encode RUN DATA --out FILE.h5`")
        names = tuple(s.decode() if isinstance(s, bytes) else str(s) for s in f["class_names"][()])
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()}
        return Codes(
            f["codes"][()], f["labels"][()].astype(np.int64), names, f["error"][()], f["error_encoder"][()], f["pixel_rmse"][()],
            f["feature_distance"][()], f["reconstructions"][()], attrs,
        )


def pairs_png(real: np.ndarray, recon: np.ndarray, error: np.ndarray, path: Path, *, pairs: int = _REPORT_PAIRS) -> Path:
    """Real images beside their reconstructions, worst ``error`` first, 8 pairs a row (a white gap between pairs)."""
    from torchvision.utils import make_grid, save_image

    order = np.argsort(-error, kind="stable")[:pairs]
    if not len(order):
        return path
    x = torch.from_numpy(np.ascontiguousarray(np.stack([real[order], recon[order]], 1).reshape(-1, *real.shape[1:]))).permute(0, 3, 1, 2).float().div(255)
    factor = max(1, -(-32 // min(x.shape[-2:])))
    if factor > 1:
        x = x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    pair_imgs = [make_grid(x[i : i + 2], nrow=2, padding=1, pad_value=0.5) for i in range(0, len(x), 2)]
    save_image(make_grid(torch.stack(pair_imgs), nrow=8, padding=4, pad_value=1.0), path, format="png")
    return path


@dataclass
class EncodeResult:
    out: Path
    report: Optional[Path]
    codes: Codes
    threshold: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        e = self.codes.error
        return {
            "out": str(self.out), "report": None if self.report is None else str(self.report), "images": len(self.codes),
            "z_dim": int(self.codes.codes.shape[1]) if self.codes.codes.ndim == 2 else None,
            "error": {"mean": float(e.mean()) if len(e) else math.nan, "median": float(np.median(e)) if len(e) else math.nan,
                      "encoder_only_mean": float(self.codes.error_encoder.mean()) if len(e) else math.nan},
            "per_class": self.codes.per_class(),
            "checkpoint": self.codes.attrs.get("checkpoint"), "checkpoint_sha256": self.codes.attrs.get("checkpoint_sha256"),
            "encoder": self.codes.attrs.get("encoder"),
        }


def encode(
    run_or_ckpt: GeneratorSource,
    data: LabeledImages,
    out: str | os.PathLike,
    *,
    checkpoint: str | int = "auto",
    ema: bool = True,
    settings: EncodeSettings = EncodeSettings(),
    classifier: Optional[DomainClassifier] = None,
    device: str | torch.device = "auto",
    force: bool = False,
    png: bool = True,
    callback: Optional[ProgressCallback] = None,
) -> EncodeResult:
    """Encode every image of ``data`` with the run's (EMA) generator into ``out`` (HDF5), plus
    ``<out stem>-reconstructions.png`` beside it (``png``). Raises OutputExistsError (without
    ``force``), DataError (classes or image size differ from the checkpoint's; naming both)."""
    inputs = [run_or_ckpt] if isinstance(run_or_ckpt, (str, os.PathLike)) else []
    out = check_output(out, force=force, inputs=inputs)
    png_path = report_path(out) if png else None
    if png_path is not None:
        check_output(png_path, force=force, inputs=inputs)
    probe_writable(out)  # before the encoding work, not after it
    source = open_generator(run_or_ckpt, checkpoint)
    G, info = source.generator(ema=ema, device=resolve_device(device))
    check_data(data, info)
    encoder_kind(source, settings)  # --encoder joint on a run without one fails before any work
    codes = encode_images(G, info, data, source=source, classifier=classifier, settings=settings, device=device, callback=callback)
    written = write_codes(codes, out, force=force, seed=settings.seed, extra_attrs={"run": source.source})
    if png_path is not None:
        staged = StagedOutput(png_path, force=force)
        try:
            pairs_png(data.images, codes.reconstructions, codes.error, staged.tmp)
            if staged.tmp.exists():
                staged.commit()
            else:
                png_path = None
        except BaseException:
            staged.abort()
            raise
    return EncodeResult(written, png_path, codes)
