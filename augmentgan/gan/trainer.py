"""The training loop: run folder, logging, sample grids, quality tracking, checkpoints, resume and faults.

The loop itself is small: :class:`~augmentgan.gan.gan.ConditionalGAN` owns the train step; this
module feeds it real batches, keeps the books and writes the run folder::

    runs/NAME/
      config.yaml            resolved GAN + training configuration (and what ``auto`` resolved to:
                             device, precision, image size...), data fingerprint, versions
      metrics.jsonl          one JSON object per logged step, and one per quality evaluation
      samples/step-NNNNNN.png  one row per class (rarest class first), fixed noise, EMA generator when enabled
      checkpoints/step-NNNNNN.pt  the last ``keep_last`` (2) periodic checkpoints
      checkpoints/best.pt    the checkpoint of the step with the best quality score (with a monitor)
      checkpoints/final.pt   the checkpoint of the last step of a finished run
      tensorboard/           scalars and grids, only when TensorBoard is installed
      report.html            loss and quality curves, sample grids, a truncation sweep (self-contained);
                             written by the caller, not by this loop (:func:`augmentgan.training.train`,
                             which ``augmentgan train`` and the expansion pipeline use)

Quality: with ``train.eval_every`` > 0 the caller passes a *monitor*
(:mod:`augmentgan.gan.monitoring`; :func:`augmentgan.evaluate.monitor.quality_monitor` measures
per-class diversity and KID in the domain classifier's features). It is called every
``eval_every`` G steps and at the last step; its numbers go to metrics.jsonl (``eval/...`` keys)
and TensorBoard, and a step whose ``score`` beats every earlier one is written to ``best.pt``
(atomically; its ``monitor`` entry holds the step and score). Collapse often sets in late: the
best checkpoint survives it, and generation uses ``best.pt`` when a run has one. Monitoring runs on
rank 0 on its own latents and draws from no training stream, so it changes no weight; the best
score (and the monitor's own state, if any) is in every checkpoint, so resume stays bit-exact.

``precision: auto`` resolves at run time (:mod:`augmentgan.gan.precision`): bf16 autocast where
the device computes bf16 natively, else fp32.

Under ``torchrun`` (several processes) the same loop runs on every rank with DDP-wrapped models
(:mod:`augmentgan.gan.distributed`); rank 0 alone writes the run folder and reports progress.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import platform
import shutil
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Optional, Sequence

import numpy as np
import torch
import yaml
from pydantic import Field, ValidationError
from torchvision.utils import make_grid, save_image

from augmentgan._version import __version__
from augmentgan.cache import in_use, lock_path
from augmentgan.data.types import LabeledImages
from augmentgan.errors import AugmentganError, AugmentganWarning, CheckpointError, ConfigError, Flag, OutputError, OutputExistsError, TrainingError, TrainingInterrupted
from augmentgan.gan import checkpoint as ckpt
from augmentgan.gan import distributed as ddp
from augmentgan.gan.checkpoint import latest_checkpoint
from augmentgan.gan.config import GANConfig, resolve_diffaug
from augmentgan.gan.distributed import DistInfo
from augmentgan.gan.fit import LEGACY_FIT, Fit, FitRequest, resolve_fit, to_train
from augmentgan.gan.gan import ConditionalGAN, resolve_device
from augmentgan.gan.monitoring import Best, QualityMonitor, sample_fn
from augmentgan.gan.models import attention_sizes, resolve_attn_res, resolve_d_norm, resolve_init
from augmentgan.gan.precision import Requested, resolve_precision
from augmentgan.gan.sampling import FakeLabels, RealBatches, RealSampler, RealSampling, check_class_counts, derive_seeds, fixed_noise
from augmentgan.overrides import StrictModel
from augmentgan.progress import ProgressCallback, report

IMG_SIZES = (16, 32, 64, 128)
# Settings that may change when a run is resumed: how and where it runs, not what it trains.
RESUMABLE = {"steps", "device", "precision", "channels_last", "compile", "sample_every", "sample_per_class", "ckpt_every", "log_every", "keep_last", "eval_every"}
_RUN_ENTRIES = ("config.yaml", "metrics.jsonl", "samples", "checkpoints", "tensorboard", "report.html")
_LABELS = {
    "d_loss": "D loss", "g_loss": "G loss", "d_real": "D(real)", "d_fake": "D(fake)",
    "gp": "the gradient penalty", "dragan": "the DRAGAN penalty", "r1": "the R1 penalty", "ortho": "the orthogonal regularization",
    "bigan_d": "the BiGAN D_xz loss", "bigan_ge": "the BiGAN G/E loss", "E": "an encoder weight (bigan)", "D_xz": "a D_xz weight (bigan)",
}


class TrainConfig(StrictModel):
    """How to train (the GAN itself is a :class:`GANConfig`).

    Imbalance defaults: ``real_sampling="balanced"`` draws every class equally often for D and
    ``fake_labels="uniform"`` asks G for every class equally often, so the minority classes - the
    ones augmentation is for - get as many G and D updates as the majority. ``uniform`` /
    ``empirical`` instead follow the data's class frequencies (fine for balanced data).
    """

    steps: int = Field(20000, ge=1, description="G steps; each comes after optim.n_dis D steps")
    batch: int = Field(64, ge=1, description="real (and fake) images per D step")
    seed: int = Field(0, ge=0, description="the one seed every random stream derives from")
    device: str = Field("auto", description="auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps")
    precision: Requested = Field(
        "auto", description="auto (bf16 where the CPU/GPU computes bf16 natively, else fp32; decided at run time); fp32; bf16 autocast; fp16 autocast + GradScaler (CUDA only)"
    )
    channels_last: bool = Field(False, description="channels-last memory format for models and batches")
    compile: bool = Field(False, description="torch.compile the training forward passes (pays a one-off compile time; see benchmarks/RESULTS.md)")
    sync_bn: bool = Field(True, description="under torchrun: BatchNorm statistics over the global batch (as in one process) instead of per rank")
    real_sampling: RealSampling = Field("balanced", description="balanced: every class equally often; uniform: every image equally often")
    fake_labels: FakeLabels = Field("uniform", description="uniform over classes, or empirical class frequencies")
    img_size: Optional[Literal[16, 32, 64, 128]] = Field(None, description="training size; None = smallest supported size >= the data's")
    fit: FitRequest = Field(
        "auto", description="how images go to the training size and samples back: scale (whole multiple), pad (fills >= 3/4), resize (bilinear); auto = the first that applies"
    )
    sample_every: int = Field(1000, ge=0, description="G steps between sample grids (0 = only at the end)")
    sample_per_class: int = Field(8, ge=1, le=64, description="images per class row of a sample grid")
    ckpt_every: int = Field(1000, ge=1, description="G steps between checkpoints (and one at the end)")
    log_every: int = Field(50, ge=1, description="G steps between metrics lines / progress updates")
    keep_last: int = Field(2, ge=1, description="periodic checkpoints kept (final.pt and best.pt are kept besides)")
    eval_every: int = Field(0, ge=0, description="G steps between quality evaluations by the monitor passed to train() (and one at the last step); the best is kept as best.pt; 0 = off")


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    checkpoint: Path  # final.pt
    step: int  # G steps done in total
    start_step: int  # 0, or the step resumed from
    seconds: float  # wall time of this call
    metrics: dict[str, float]  # the last logged metrics
    samples: Optional[Path]  # the last sample grid
    world_size: int = 1  # processes that trained (torchrun)
    state_digests: tuple[str, ...] = ()  # sha256 of G, D (and EMA) weights on each rank at the end: equal = in sync
    precision: str = "fp32"  # what train.precision resolved to (auto -> bf16 or fp32)
    best: Optional[dict[str, Any]] = None  # {"step", "score", "metrics", "checkpoint"} of best.pt when a monitor ran
    # (BatchNorm running statistics left out with train.sync_bn=false: each rank keeps its own)
    rank: int = 0  # this process's rank (torchrun): rank 0 wrote the run folder; its caller writes the run report


# --- configuration resolution ------------------------------------------------------------------
def resolve_img_size(data: LabeledImages, requested: Optional[int]) -> int:
    h, w, _ = data.image_shape
    if h != w:
        raise ConfigError(f"the images are {h}x{w}, not square", Flag("size", "N", before="; ", after=" (center crop + resize) to train a GAN"))
    if requested is not None:
        return requested
    fits = [s for s in IMG_SIZES if s >= h]
    if not fits:
        raise ConfigError(f"the images are {h}x{w}, larger than the largest supported size {IMG_SIZES[-1]}", Flag("size", str(IMG_SIZES[-1]), before="; ", after=" (center crop + resize) to train a GAN"))
    return fits[0]


def resolve_gan_config(gan: GANConfig, img_size: int, class_counts: Optional[Sequence[int]] = None) -> tuple[GANConfig, list[str]]:
    """Adapt preset values that do not fit the image size or the data; returns the config and what changed.

    ``tricks.diffaug: auto`` becomes the DiffAugment policy the class counts call for (all three ops
    when the smallest class has fewer than 1,000 images, else off). Self-attention must sit at a
    feature-map size the model has at ``img_size``; a preset's ``attn_res`` that does not exist there
    (e.g. sagan's 32 on 16x16 data) becomes the largest valid size not above it (the smallest valid one if none is).
    """
    if class_counts is not None and gan.tricks.diffaug.strip() == "auto":  # recorded resolved in config.yaml, no warning
        policy, _ = resolve_diffaug(gan.tricks.diffaug, class_counts)
        gan = gan.model_copy(update={"tricks": gan.tricks.model_copy(update={"diffaug": policy})})
    gan, notes = _resolve_attention(gan, img_size)
    if gan.tricks.ada_target is not None and not gan.tricks.diffaug.strip():
        notes.append(f"tricks.ada_target {gan.tricks.ada_target:g} has no effect: ADA adapts how often DiffAugment's ops apply, and DiffAugment is off "
                     "(tricks.diffaug)")
    return gan, notes


def _resolve_attention(gan: GANConfig, img_size: int) -> tuple[GANConfig, list[str]]:
    attn = gan.model.attn_res
    valid = attention_sizes(gan.model.arch, img_size)
    if attn is None or attn in valid or not valid:
        return gan, []
    new = max([s for s in valid if s <= attn], default=valid[0])
    gan = gan.model_copy(update={"model": gan.model.model_copy(update={"attn_res": new})})
    return gan, [f"model.attn_res {attn} -> {new}: {attn}x{attn} is not a feature-map size of {gan.model.arch} at {img_size}x{img_size} (valid: {valid})"]


def prepare_images(data: LabeledImages, img_size: int, device: torch.device, fit: Fit) -> torch.Tensor:
    """uint8 (N, C, S, S) on ``device``; brought to the training size once (:func:`augmentgan.gan.fit.to_train`) when it differs.
    On the CPU it is a channels-last view of ``data.images`` (no copy) when the size already is the training size."""
    x = torch.from_numpy(np.ascontiguousarray(data.images)).permute(0, 3, 1, 2)
    if x.shape[-1] != img_size:
        x = torch.cat([to_train(chunk.float(), img_size, fit).round_().clamp_(0, 255).to(torch.uint8) for chunk in x.split(1024)])
    if device.type == "cpu":  # batches are gathered and made contiguous one at a time (RealBatches): no second copy of the set
        return x
    return x.contiguous().to(device)


# --- the run folder ---------------------------------------------------------------------------
def _with_defaults(model: Any, saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config with the fields added since it was written at their defaults (off for every
    technique added later), so a run from an older version resumes; a config that no longer
    validates is compared as saved (and so refused, naming the keys)."""
    try:
        return model.model_validate(saved).model_dump(mode="json")
    except ValidationError:
        return saved


def _clear_run(out: Path, force: bool) -> None:
    """A fresh run needs an empty folder; ``force`` removes what an earlier run wrote (nothing else)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output {out} exists and is not a folder; choose another --out")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise OutputExistsError(f"run folder {out} exists and is not empty; pass --resume to continue it or --force to start over")
        if in_use(out):  # a cached run that an expansion is training or sampling right now
            raise OutputExistsError(f"run folder {out} is in use by another augmentgan process (lock {lock_path(out)}); --force does not clear it: wait for that process or choose another --out")
        for name in _RUN_ENTRIES:
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


_RESTART = "start the run again with --force instead of --resume (its old files are replaced)"
"""What to do when a run cannot be resumed: the one way out, the same in every message."""


def read_run_config(run_dir: str | Path) -> tuple[GANConfig, TrainConfig]:
    """The GAN and training configuration a run folder was (last) started with, from its config.yaml."""
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist: {run_dir} is not an augmentgan run folder; {_RESTART}")
    try:
        saved = yaml.safe_load(path.read_text(encoding="utf-8"))
        return GANConfig.model_validate(saved["gan"]), TrainConfig.model_validate(saved["train"])
    except (yaml.YAMLError, KeyError, TypeError, ValidationError) as err:
        raise CheckpointError(f"{path} is not a valid run configuration ({type(err).__name__}); restore it or start a new run") from None


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    ckpt.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _versions() -> dict[str, str]:
    import torchvision

    versions = {"augmentgan": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__}
    return {name: str(v) for name, v in versions.items()} | {"python": platform.python_version()}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metrics lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue
    text = "".join(line + "\n" for line in kept)
    ckpt.atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _tensorboard(out: Path):  # noqa: ANN202 - SummaryWriter or None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional `tensorboard` extra is not installed
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _save_grid(images: torch.Tensor, per_class: int, path: Path) -> torch.Tensor:
    grid = make_grid(images, nrow=per_class, normalize=True, value_range=(-1, 1), padding=2)
    ckpt.atomic_write(path, lambda f: save_image(grid, f, format="png"))
    return grid


@contextlib.contextmanager
def _sigint_flag(distributed: bool = False) -> Iterator[threading.Event]:
    """The first Ctrl-C or SIGTERM sets the flag (checked between iterations): the step ends, its checkpoint
    is written; a second one stops at once.

    Schedulers (SLURM and the like) stop jobs with SIGTERM, which is handled as Ctrl-C is. Under torchrun a
    Ctrl-C reaches each worker twice (from the terminal and forwarded by torchrun): there both signals
    only set the flag, so all ranks checkpoint the same step together (torchrun kills workers that do
    not stop in time).
    """
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):  # noqa: ANN001
        if flag.is_set() and not distributed:
            raise KeyboardInterrupt
        flag.set()

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --- metrics and the non-finite watch ----------------------------------------------------------
class _Meter:
    """Sums metrics on the device and remembers the first step each became non-finite, without syncing."""

    def __init__(self, names: list[str], device: torch.device) -> None:
        self.names = names
        self.sums = torch.zeros(len(names), device=device)
        self.counts = dict.fromkeys(names, 0)
        self.first_bad = torch.full((len(names),), -1, dtype=torch.long, device=device)
        self._step = torch.zeros((), dtype=torch.long, device=device)
        self._zero = torch.zeros((), device=device)

    def add(self, values: dict[str, torch.Tensor], step: int) -> None:
        vec = torch.stack([values.get(n, self._zero) for n in self.names])
        self.sums += vec
        for n in values:
            self.counts[n] += 1
        self._step.fill_(step)
        self.first_bad = torch.where(torch.isfinite(vec) | (self.first_bad >= 0), self.first_bad, self._step)

    def first_nonfinite(self, dist: DistInfo = ddp.SINGLE) -> Optional[tuple[int, str]]:
        """``(step, metric)`` of the first non-finite value since the start on any rank (one sync)."""
        first = self.first_bad
        if dist.active:  # the earliest step over the ranks: -1 (never) must not win the minimum
            big = torch.iinfo(torch.long).max
            first = torch.where(first < 0, torch.full_like(first, big), first)
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
            first = torch.where(first == big, torch.full_like(first, -1), first)
        bad = [(s, n) for s, n in zip(first.tolist(), self.names) if s >= 0]
        return min(bad) if bad else None

    def state_dict(self) -> dict[str, Any]:
        """What is summed since the last flush (plain data), so a resumed run's next metrics line averages
        the same steps as an uninterrupted run's."""
        return {"names": list(self.names), "sums": self.sums.detach().cpu().tolist(), "counts": dict(self.counts)}

    def load_state_dict(self, state: Optional[Mapping[str, Any]]) -> None:
        if not state or list(state.get("names", [])) != self.names:  # a checkpoint of an older version: start from zero
            return
        self.sums.copy_(torch.tensor(state["sums"], dtype=self.sums.dtype))
        self.counts = {n: int(state["counts"].get(n, 0)) for n in self.names}

    def flush(self, dist: DistInfo = ddp.SINGLE) -> dict[str, float]:
        """Means (over steps and ranks) since the last flush of the metrics that were computed; resets the sums."""
        sums = ddp.all_reduce_mean(dist, self.sums).tolist()  # zeroed below
        out = {n: s / self.counts[n] for n, s in zip(self.names, sums) if self.counts[n]}
        self.sums.zero_()
        self.counts = dict.fromkeys(self.names, 0)
        return out


def _nonfinite_error(step: int, what: str, gan: GANConfig, precision: str, last_good: Optional[Path]) -> TrainingError:
    side = "g" if what in ("g_loss", "ortho", "G", "bigan_ge", "E") else "d"
    hints = [f"lower optim.lr_{side} (now {getattr(gan.optim, 'lr_' + side):g})"]
    if not (gan.reg.per_sample_grad or gan.reg.clip or gan.model.d_sn):
        hints.append("add a penalty (reg.gp=10 or reg.r1=1) or spectral norm (model.d_sn=true)")
    fp32 = (Flag("precision", "fp32", before=" / "),) if precision != "fp32" else ()
    label = {"G": "a G weight", "D": "a D weight"}.get(what, _LABELS.get(what, what))
    kept = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written before it"
    return TrainingError(
        f"step {step}: {label} is not finite (nan/inf) - the learning rate is likely too high or a penalty is missing: {' / '.join(hints)}", *fp32, f"; {kept}"
    )


# --- the loop ----------------------------------------------------------------------------------
class _Run:
    """The state of one call of :func:`train` (kept out of the GAN object: books, not training)."""

    def __init__(
        self, data: LabeledImages, gan_cfg: GANConfig, cfg: TrainConfig, out: Path, data_spec: Optional[str],
        dist: DistInfo = ddp.SINGLE, device: Optional[str] = None, unlabeled: Optional[np.ndarray] = None, real_fingerprint: Optional[str] = None,
    ) -> None:
        self.cfg, self.out, self.dist = cfg, out, dist
        check_class_counts(data.class_counts(), data.class_names)
        self.img_size = resolve_img_size(data, cfg.img_size)
        self.fit = resolve_fit(data.image_shape[:2], self.img_size, cfg.fit)
        self.gan_cfg, self.notes = resolve_gan_config(gan_cfg, self.img_size, data.class_counts().tolist())
        pac, world = self.gan_cfg.tricks.pac, dist.world_size
        if cfg.batch % (pac * world):
            where = f"tricks.pac={pac}" + (f" x {world} processes (train.batch is the global batch; each rank gets batch/{world})" if world > 1 else "")
            raise ConfigError(f"train.batch={cfg.batch} is not divisible by {where}; use a multiple of {pac * world}")
        self.device = resolve_device(device or cfg.device)
        self.precision, self.precision_reason = resolve_precision(cfg.precision, self.device)
        counts = data.class_counts()
        self.data_info = {
            "fingerprint": data.fingerprint(),
            "spec": data_spec,
            "n": len(data),
            "class_names": list(data.class_names),
            "class_counts": counts.tolist(),
            "data_size": list(data.image_shape[:2]),
            "channels": data.channels,
            "img_size": self.img_size,
            "fit": self.fit,
        }
        if real_fingerprint is not None:  # the real part of data (the rest trains the GAN but is synthetic)
            self.data_info["real_fingerprint"] = real_fingerprint
        self.gan = ConditionalGAN(
            self.gan_cfg, img_size=self.img_size, channels=data.channels, num_classes=data.num_classes,
            device=self.device, precision=self.precision, channels_last=cfg.channels_last,
            class_counts=counts, fake_labels=cfg.fake_labels, seed=cfg.seed,
            dist=dist, sync_bn=cfg.sync_bn, compile=cfg.compile,
        )
        self.notes += self.gan.notes
        seeds = derive_seeds(cfg.seed)
        self.batch_rng = np.random.default_rng(seeds.batches)
        sampler = RealSampler(data.labels, data.num_classes, cfg.real_sampling, self.batch_rng)
        images = prepare_images(data, self.img_size, self.device, self.fit)
        labels = torch.from_numpy(data.labels).to(self.device)
        self.batches = RealBatches(images, labels, sampler, cfg.batch, self.gan.memory_format, dist.shard(cfg.batch) if dist.active else None)
        self.unlabeled_rng: Optional[np.random.Generator] = None
        if unlabeled is not None:
            self._add_unlabeled(unlabeled, data, seeds.unlabeled)
        z, y = fixed_noise(seeds.fixed_noise, data.num_classes, cfg.sample_per_class, self.gan.G.z_dim)
        rarest_first = torch.from_numpy(np.argsort(counts, kind="stable"))  # grid rows: the rarest class on top
        self.grid_noise = (z, rarest_first[y])
        self.sample = sample_fn(
            lambda z, y: self.gan.generate(z, y, batch=max(cfg.batch, 256)), seed=cfg.seed, num_classes=data.num_classes,
            z_dim=self.gan.G.z_dim, data_size=tuple(data.image_shape[:2]), fit=self.fit,
        )
        self.monitor: Optional[QualityMonitor] = None
        self.best = Best()
        self.ckpt_dir = out / "checkpoints"
        self.elapsed = 0.0
        self.meter_state: Optional[dict[str, Any]] = None  # set by resume: the metrics summed since the last line
        self.digests: tuple[str, ...] = ()

    def _add_unlabeled(self, unlabeled: np.ndarray, data: LabeledImages, seed: int) -> None:
        """Unlabeled images for a semi-supervised D (``model.d_cond=kplus1``): drawn uniformly, ``semi.unlabeled_batch`` a D step."""
        from augmentgan.data.unlabeled import check_unlabeled

        if not self.gan.semi:
            raise ConfigError(
                f"unlabeled images need a discriminator that can learn from them: model.d_cond is {self.gan_cfg.model.d_cond!r}; "
                "use --preset ssgan (or --set model.d_cond=kplus1), or drop --unlabeled"
            )
        check_unlabeled(unlabeled, data.image_shape, f"({len(unlabeled)} images)")
        pool = LabeledImages(unlabeled, np.zeros(len(unlabeled), np.int64), ("unlabeled",))
        self.data_info["unlabeled"] = {"n": len(unlabeled), "fingerprint": pool.fingerprint()}
        self.unlabeled_rng = np.random.default_rng(seed)
        n = self.gan_cfg.semi.unlabeled_batch
        images = prepare_images(pool, self.img_size, self.device, self.fit)
        batches = RealBatches(images, torch.zeros(len(pool), dtype=torch.long, device=self.device), RealSampler(pool.labels, 1, "uniform", self.unlabeled_rng),
                              n, self.gan.memory_format, self.dist.shard(n) if self.dist.active else None)
        self.gan.next_unlabeled = lambda: batches()[0]

    # -- checkpoints --
    def rank_streams(self) -> dict[str, Any]:
        """This rank's own random streams (DiffAugment, penalty noise); the others are the same on every rank."""
        return {"augment": self.gan.aug_gen.get_state(), "penalty": self.gan.penalty_gen.get_state()}

    def payload(self, step: int, rank_streams: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "step": step,
            "elapsed_s": self.elapsed,
            "gan": self.gan_cfg.model_dump(mode="json"),
            "train": self.cfg.model_dump(mode="json"),
            "data": self.data_info,
            "state": self.gan.state_dict(),
            "rng": {
                "batches": self.batch_rng.bit_generator.state, "global": ckpt.capture_global_rng(),
                **({"unlabeled": self.unlabeled_rng.bit_generator.state} if self.unlabeled_rng is not None else {}),
            },
            "world_size": self.dist.world_size,
            "precision": self.gan.precision,  # what train.precision resolved to: a resume in another precision is not bit-exact
            "rank_streams": rank_streams,
            "monitor": self.monitor_state(),
            "versions": _versions(),
        }

    def monitor_state(self) -> dict[str, Any]:
        """The best score so far and the monitor's own state (plain data), saved in every checkpoint."""
        own = getattr(self.monitor, "state_dict", None)
        return {"best": self.best.to_dict(), "state": own() if callable(own) else None}

    def resume(self) -> int:
        def read() -> tuple[Path, dict[str, Any]]:
            path = ckpt.newest_intact(self.ckpt_dir)  # damaged ones are set aside with a warning
            if path is None:
                raise CheckpointError(f"--resume: no checkpoint in {self.ckpt_dir} that is intact; {_RESTART}")
            return path, ckpt.load_checkpoint(path)

        # rank 0 reads (the run folder need not be visible from other nodes) and sends it to all
        path, payload = ddp.broadcast_object(self.dist, ddp.main_first(self.dist, read))
        diffs = [f"gan.{k}" for k in ckpt.diff_keys(_with_defaults(GANConfig, payload["gan"]), self.gan_cfg.model_dump(mode="json"))]
        train_now = self.cfg.model_dump(mode="json")
        # train.fit is compared by what it resolved to (auto and pad are the same run for 28 px images at 32)
        diffs += [f"train.{k}" for k in ckpt.diff_keys(_with_defaults(TrainConfig, payload["train"]), train_now) if k not in RESUMABLE and k != "fit"]
        if payload["data"]["fingerprint"] != self.data_info["fingerprint"]:
            diffs.append("data (fingerprint)")
        fit_then = payload["data"].get("fit", LEGACY_FIT)
        if fit_then != self.fit:
            diffs.append(f"train.fit (that run: {fit_then}, now: {self.fit}; set train.fit={fit_then} to resume it)")
        if payload["data"].get("unlabeled") != self.data_info.get("unlabeled"):
            diffs.append("unlabeled images (--unlabeled)")
        if diffs:
            raise CheckpointError(f"cannot resume from {path}: {', '.join(diffs)} {'differs' if len(diffs) == 1 else 'differ'} from that run; resume with the same settings (`augmentgan train --resume` without --preset, --set and --seed takes the run's own) or start a new run (--force or another --out)")
        step = int(payload["step"])
        if step > self.cfg.steps:
            raise ConfigError(f"{path} is at step {step}, beyond --steps {self.cfg.steps}; pass --steps {step} or more to resume")
        self.gan.load_state_dict(payload["state"])
        streams = payload.get("rank_streams") or []
        if self.dist.rank < len(streams):  # a rank the run did not have keeps its fresh streams
            self.gan.aug_gen.set_state(streams[self.dist.rank]["augment"].cpu())
            self.gan.penalty_gen.set_state(streams[self.dist.rank]["penalty"].cpu())
            self.meter_state = streams[self.dist.rank].get("meter")
        then = payload.get("precision")
        if then is not None and then != self.gan.precision and self.dist.is_main:
            warnings.warn(
                f"resuming in {self.gan.precision} a run trained so far in {then} (train.precision may change on resume): "
                f"its weights will not equal an uninterrupted run's; pass --precision {then} to continue it exactly", AugmentganWarning, stacklevel=2,
            )
        saved_world = int(payload.get("world_size", 1))
        if saved_world != self.dist.world_size and self.dist.is_main:
            warnings.warn(
                f"resuming a run trained on {saved_world} process(es) on {self.dist.world_size}: same global batch and model, "
                "but DiffAugment / penalty noise streams of the ranks differ from an uninterrupted run", AugmentganWarning, stacklevel=2,
            )
        self.batch_rng.bit_generator.state = payload["rng"]["batches"]
        if self.unlabeled_rng is not None:
            self.unlabeled_rng.bit_generator.state = payload["rng"]["unlabeled"]
        ckpt.restore_global_rng(payload["rng"]["global"])
        saved = payload.get("monitor") or {}
        self.best = Best.from_dict(saved.get("best"))
        load = getattr(self.monitor, "load_state_dict", None)
        if callable(load) and saved.get("state") is not None:
            load(saved["state"])
        self.elapsed = float(payload["elapsed_s"])
        if self.dist.is_main:
            self._reconcile_best(path, payload)
        return step

    def _reconcile_best(self, resumed: Path, payload: Mapping[str, Any]) -> None:
        """``best.pt`` written after the checkpoint resumed from (a stretch of the run that was cut off) is
        not the best this run now knows: put the state of that best step in its place, or remove it with a
        warning when its checkpoint is gone (the next evaluation that beats it writes a new one)."""
        path = self.ckpt_dir / "best.pt"
        if not path.is_file():
            return
        try:
            on_disk = int(ckpt.load_checkpoint(path)["step"])
        except (AugmentganError, KeyError, TypeError, ValueError):
            on_disk = None
        if on_disk == self.best.step:
            return
        source = resumed if self.best.step == int(payload["step"]) else ckpt.step_path(self.ckpt_dir, self.best.step) if self.best.step is not None else None
        if source is not None and source.is_file():
            ckpt.save_checkpoint(payload if source == resumed else ckpt.load_checkpoint(source), path)
            return
        for stale in (path, ckpt.digest_path(path)):
            stale.unlink(missing_ok=True)
        known = f"the best evaluated step so far ({self.best.step}) has no checkpoint left" if self.best.step is not None else "no step up to it was evaluated"
        warnings.warn(
            f"{path} was written after the checkpoint resumed from ({resumed.name}) and was removed; {known}, "
            "so generation uses final.pt until an evaluation beats it", AugmentganWarning, stacklevel=3,
        )

    def save(self, step: int, meter: _Meter) -> Path:
        """Write ``step-N.pt`` after checking that nothing went non-finite; prune old ones (rank 0).

        Under torchrun every rank takes part: the ranks' streams are gathered into the checkpoint
        and their weight digests compared - ranks that drifted apart stop the run here.
        """
        self.check_finite(meter)
        path = ckpt.step_path(self.ckpt_dir, step)
        streams = ddp.gather_objects(self.dist, {**self.rank_streams(), "meter": meter.state_dict()})  # each rank sums its own metrics
        self.check_in_sync(step)
        if self.dist.is_main:
            ckpt.save_checkpoint(self.payload(step, streams), path)
            ckpt.prune(self.ckpt_dir, self.cfg.keep_last)
        return path

    def evaluate(self, step: int) -> tuple[dict[str, float], bool]:
        """Rank 0: the monitor's numbers at ``step`` and whether they beat the best so far.

        Runs inside ``fork_rng``: whatever the monitor draws from the global RNGs (building a
        classifier, say) leaves them as they were, and it never sees the training generators.
        """
        assert self.monitor is not None
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=devices):
            values = {k: float(v) for k, v in self.monitor(step, self.sample).items()}
        if "score" not in values:
            raise ConfigError(f"the quality monitor returned no 'score' (keys {sorted(values)}); a monitor must return a score, higher is better")
        improved = self.best.improved_by(values["score"])
        if improved:
            self.best = Best(step, values["score"], dict(values))
        values["eval_s"] = time.perf_counter() - t0
        return values, improved

    def save_best(self, step: int) -> Path:
        """Write ``best.pt`` (the state at ``step``, the best score so far), atomically (rank 0)."""
        path = self.ckpt_dir / "best.pt"
        streams = ddp.gather_objects(self.dist, self.rank_streams())
        if self.dist.is_main:
            ckpt.save_checkpoint(self.payload(step, streams), path)
        return path

    def check_in_sync(self, step: int) -> None:
        ema = self.gan.ema.model if self.gan.ema is not None else None
        # the EMA copy's BatchNorm statistics are left out: rank 0 alone re-estimates them when it samples or saves
        digest = ddp.state_digest(self.gan.G, self.gan.D, bn_stats=self.cfg.sync_bn or not self.dist.active) + ddp.state_digest(ema, bn_stats=False)
        self.digests = tuple(ddp.gather_objects(self.dist, digest))
        if len(set(self.digests)) > 1:
            raise TrainingError(f"step {step}: the ranks' weights differ (digests {[d[:12] for d in self.digests]}); this is a bug - please report it with the run's config.yaml")

    def check_finite(self, meter: _Meter) -> None:
        bad = meter.first_nonfinite(self.dist)
        where = self.gan.nonfinite_weights() if bad is None else None
        if bad is not None or where is not None:
            step, what = bad if bad is not None else (self.gan.num_g_steps, where)
            raise _nonfinite_error(step, what, self.gan_cfg, self.precision, latest_checkpoint(self.out))

    def write_config(self) -> None:
        m = self.gan_cfg.model
        with warnings.catch_warnings():  # resolve_d_norm already warned when the model was built
            warnings.simplefilter("ignore")
            d_norm = resolve_d_norm(m, self.gan_cfg.reg.per_sample_grad) if m.arch == "dcgan" else "none"
        _write_yaml(self.out / "config.yaml", {
            "augmentgan": __version__,
            "gan": self.gan_cfg.model_dump(mode="json"),
            "train": self.cfg.model_dump(mode="json"),
            "resolved": {
                "device": str(self.device),
                "precision": self.precision,
                "precision_reason": self.precision_reason,
                "img_size": self.img_size,
                "fit": self.fit,
                "model": {
                    "attn_res": resolve_attn_res(m, self.img_size),
                    "init": resolve_init(m),
                    "d_norm": d_norm,
                },
                "notes": self.notes,
            },
            "data": self.data_info,
            "versions": _versions(),
        })


def train(
    data: LabeledImages,
    gan: GANConfig,
    cfg: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    force: bool = False,
    callback: Optional[ProgressCallback] = None,
    data_spec: Optional[str] = None,
    monitor: Optional[QualityMonitor] = None,
    unlabeled: Optional[np.ndarray] = None,
    real_fingerprint: Optional[str] = None,
) -> TrainResult:
    """Train a class-conditional GAN on ``data`` into the run folder ``out``.

    ``resume`` continues from the newest checkpoint in ``out`` (same GAN config, data and
    training settings except those in :data:`RESUMABLE`; a larger ``steps`` is allowed).
    Without it an existing non-empty ``out`` is an OutputExistsError unless ``force``.
    Raises TrainingError when a loss or weight becomes non-finite (naming the step; the last
    good checkpoint is kept) and TrainingInterrupted after Ctrl-C (a checkpoint is written).
    ``data_spec`` (where the data came from) is only recorded. ``unlabeled``: uint8 images ``(N, H, W, C)``
    of the data's size and channels without labels (:func:`augmentgan.data.unlabeled.read_unlabeled`),
    for a semi-supervised discriminator (``model.d_cond=kplus1``, preset ``ssgan``); part of the run's
    identity (resume refuses others). ``real_fingerprint``: when ``data`` is real images followed by
    synthetic ones that train the GAN too (``gan.train_on: classical``), the fingerprint of the real
    part, recorded in the checkpoint beside the data's (:func:`augmentgan.generate.sampler.resolve_real`
    accepts those images as the run's real data).

    ``monitor`` (needed when ``cfg.eval_every`` > 0, ignored otherwise): called every
    ``eval_every`` G steps and at the last step on rank 0 as ``monitor(step, sample)``
    (:mod:`augmentgan.gan.monitoring`); the step with the best ``score`` is kept as
    ``checkpoints/best.pt``. :func:`augmentgan.evaluate.monitor.quality_monitor` makes one.

    Started by ``torchrun`` with several processes (or inside a process group the caller set up),
    every rank calls this with the same arguments and trains its share of each global batch; see
    :mod:`augmentgan.gan.distributed`. Only rank 0 writes ``out`` and calls ``callback``.
    """
    with ddp.setup(cfg.device) as (dist, device):
        result = _train(data, gan, cfg, Path(out), resume, force, callback if dist.is_main else None, data_spec, dist, device, monitor, unlabeled,
                        real_fingerprint)
    # The run's networks, optimizer states and last batches sit in reference cycles (closures over the
    # run); free them now rather than at some later GC pass, before the caller's next large arrays.
    gc.collect()
    return result


def _eval_due(cfg: TrainConfig, step: int) -> bool:
    """Every ``eval_every`` steps, and at the last step (so a run shorter than ``eval_every`` is scored too)."""
    every = cfg.eval_every
    return bool(every) and (step % every == 0 or step == cfg.steps)


def _train(
    data: LabeledImages, gan: GANConfig, cfg: TrainConfig, out: Path, resume: bool, force: bool,
    callback: Optional[ProgressCallback], data_spec: Optional[str], dist: DistInfo, device: str,
    monitor: Optional[QualityMonitor] = None, unlabeled: Optional[np.ndarray] = None, real_fingerprint: Optional[str] = None,
) -> TrainResult:
    t0 = time.perf_counter()
    main = dist.is_main
    if cfg.eval_every and monitor is None:
        raise ConfigError(
            f"train.eval_every={cfg.eval_every} needs a quality monitor: pass monitor=augmentgan.evaluate.monitor.quality_monitor(data) to train(), or set eval_every=0"
        )

    def check_out() -> None:
        if not resume:
            _clear_run(out, force)
        elif not out.is_dir():
            raise CheckpointError(f"--resume: run folder {out} does not exist; give the folder of the run to continue, or drop --resume to start a new run there")

    ddp.main_first(dist, check_out)
    run = _Run(data, gan, cfg, out, data_spec, dist, device, unlabeled, real_fingerprint)
    run.monitor = monitor if main else None
    if main:
        for note in run.notes:
            warnings.warn(note, AugmentganWarning, stacklevel=3)
    start = run.resume() if resume else 0
    metrics_path = out / "metrics.jsonl"
    if main:
        try:
            (out / "samples").mkdir(parents=True, exist_ok=True)
            run.ckpt_dir.mkdir(parents=True, exist_ok=True)
            run.write_config()
            _truncate_metrics(metrics_path, start)
        except OSError as err:  # a file in the way, a read-only or virtual file system: before any step, not an internal error
            where = f" ({err.filename})" if err.filename and str(err.filename) != str(out) else ""
            raise OutputError(f"cannot write the run folder {out}{where}: {err.strerror or err}; choose a writable folder for --out") from None
    meter = _Meter(run.gan.metric_names, run.device)
    if resume:
        meter.load_state_dict(run.meter_state)
    metrics: dict[str, float] = {}
    quality: dict[str, float] = {}  # the last evaluation's summary, shown with the training numbers
    grid_path: Optional[Path] = None
    tb = _tensorboard(out) if main else None
    report(callback, "train", start, cfg.steps, resumed_from=start if resume else None)
    last_t, last_step, t_run = time.perf_counter(), start, time.perf_counter()

    def evaluate(step: int, log: Any, tb: Any) -> dict[str, float]:
        """Score ``step`` (rank 0), log it, keep ``best.pt`` when it is the best so far (all ranks)."""
        improved, summary = False, quality
        if main:
            values, improved = run.evaluate(step)
            row = {"step": step, "time": time.time(), **{(k if k == "eval_s" else f"eval/{k}"): v for k, v in values.items()}, "eval/best": run.best.score if math.isfinite(run.best.score) else None}
            if log is not None:
                log.write(json.dumps(row) + "\n")
                log.flush()
            if tb is not None:
                for key, value in values.items():
                    if key != "eval_s" and math.isfinite(value):
                        tb.add_scalar(f"eval/{key}", value, step)
            summary = {"score": values["score"], "best_score": run.best.score}
        if ddp.broadcast_object(dist, improved if main else None):
            run.save_best(step)
        return summary

    try:
        with _sigint_flag(dist.active) as interrupted, (open(metrics_path, "a", encoding="utf-8") if main else contextlib.nullcontext()) as log:
            for step in range(start + 1, cfg.steps + 1):
                meter.add(run.gan.train_iteration(run.batches), step)
                last = step == cfg.steps
                if step % cfg.log_every == 0 or last:
                    run.check_finite(meter)
                    now = time.perf_counter()
                    metrics = meter.flush(dist)
                    speed = (step - last_step) / max(now - last_t, 1e-9)
                    last_t, last_step = now, step
                    o = run.gan_cfg.optim
                    row = {"step": step, "time": time.time(), "elapsed_s": run.elapsed + now - t_run, "steps_per_s": speed, **metrics, "lr_g": o.lr_g, "lr_d": o.lr_d}
                    if log is not None:
                        log.write(json.dumps(row) + "\n")
                        log.flush()
                    if tb is not None:
                        for key, value in metrics.items():
                            tb.add_scalar(f"train/{key}", value, step)
                    report(callback, "train", step, cfg.steps, steps_per_s=speed, **metrics, **quality)
                if main and ((cfg.sample_every and step % cfg.sample_every == 0) or last):
                    grid_path = out / "samples" / f"step-{step:06d}.png"
                    # at the current resolution of progressive growing (the report scales the grids to one size)
                    grid = _save_grid(run.gan.generate(*run.grid_noise, batch=cfg.batch, native=True), cfg.sample_per_class, grid_path)
                    if tb is not None:
                        tb.add_image("samples", grid, step)
                # on Ctrl-C the step's metrics line and grid are written first (above), as an uninterrupted run writes them
                if ddp.any_rank(dist, interrupted.is_set(), run.device):
                    if _eval_due(cfg, step):  # the resumed run starts after this step: evaluate it now
                        quality = evaluate(step, log, tb)
                    run.elapsed += time.perf_counter() - t_run
                    path = run.save(step, meter)
                    raise TrainingInterrupted(f"interrupted at step {step}; checkpoint {path} written", Flag("resume", before="; ", after=" to continue"))
                if _eval_due(cfg, step):
                    t_eval = time.perf_counter()
                    quality = evaluate(step, log, tb)
                    last_t += time.perf_counter() - t_eval  # steps/s measures training alone
                    report(callback, "train", step, cfg.steps, **metrics, **quality)
                if step % cfg.ckpt_every == 0 or last:
                    run.elapsed += time.perf_counter() - t_run
                    t_run = time.perf_counter()
                    run.save(step, meter)
    finally:
        if tb is not None:
            tb.close()
    final_step = ckpt.step_path(run.ckpt_dir, cfg.steps)
    if ddp.broadcast_object(dist, not final_step.is_file() if main else None):  # resumed at the last step after its checkpoint was deleted
        run.save(cfg.steps, meter)
    final = run.ckpt_dir / "final.pt"
    if main:
        with open(final_step, "rb") as src:
            ckpt.atomic_write(final, lambda f: shutil.copyfileobj(src, f), record_sha256=True)
    if not run.digests:
        run.check_in_sync(cfg.steps)
    best = None
    if main and run.best.step is not None and (run.ckpt_dir / "best.pt").is_file():
        best = {**run.best.to_dict(), "checkpoint": str(run.ckpt_dir / "best.pt")}
    return TrainResult(out, final, cfg.steps, start, time.perf_counter() - t0, metrics, grid_path, dist.world_size, run.digests, run.precision, best, dist.rank)
