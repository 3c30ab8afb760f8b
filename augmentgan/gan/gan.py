"""The conditional GAN object: it owns G, D, the EMA copy, both optimizers, the loss, the penalties
and the tricks (with ``bigan.weight`` > 0 also the jointly trained encoder E and D_xz,
:mod:`augmentgan.gan.bigan`), and it knows how to take one training step (mimicry's design: the
object trains itself, the trainer only loops, logs and checkpoints).

``train_iteration`` = ``n_dis`` D steps on fresh real batches + one G step. It returns detached
0-dim tensors and never synchronises with the device; read them with ``float()`` when you log.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from augmentgan.errors import ConfigError, Flag
from augmentgan.gan.bigan import BiGAN, build_bigan
from augmentgan.gan.config import GANConfig, OptimConfig, resolve_diffaug
from augmentgan.gan.diffaug import diff_augment
from augmentgan.gan.distributed import SINGLE, DistInfo, all_reduce_mean, convert_global_bn, rank_seed
from augmentgan.gan.ema import EMA
from augmentgan.gan.layers import set_cond_scale
from augmentgan.gan.losses import get_loss
from augmentgan.gan.models import build_discriminator, build_generator, growth_levels
from augmentgan.gan.models.progressive import resize_reals, set_growth
from augmentgan.gan.models.curriculum import CurriculumDiscriminator, mix, set_curriculum_weights
from augmentgan.gan.pacgan import pack, pack_labels
from augmentgan.gan.regularizers import D_PENALTIES, GroupSpectralReg, LeCamEMA, clip_weights_, lecam_reg, mode_seeking_loss, orthogonal_reg
from augmentgan.gan.sampling import FakeLabels, LatentSampler, child_seed, derive_seeds, torch_generator

Precision = Literal["fp32", "bf16", "fp16"]
AMP_DTYPES: dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
RealBatchFn = Callable[[], tuple[Tensor, Tensor]]

OPTIMIZERS: dict[str, Callable[[Any, float, OptimConfig], torch.optim.Optimizer]] = {
    "adam": lambda params, lr, o: torch.optim.Adam(params, lr=lr, betas=(o.beta1, o.beta2), eps=o.eps),
    "rmsprop": lambda params, lr, o: torch.optim.RMSprop(params, lr=lr, eps=o.eps),
}

# How each D penalty is called and what its config value means as a loss weight
# (R1's gamma multiplies gamma/2 * E||grad||^2, Mescheder et al. 2018).
_PENALTY_CALLS: dict[str, Callable[..., Tensor]] = {
    "gp": lambda D, real, fake, y, g: D_PENALTIES["gp"](D, real, fake, y, generator=g),
    "dragan": lambda D, real, fake, y, g: D_PENALTIES["dragan"](D, real, y, generator=g),
    "r1": lambda D, real, fake, y, g: D_PENALTIES["r1"](D, real, y),
}
_PENALTY_SCALE = {"gp": 1.0, "dragan": 1.0, "r1": 0.5}
STANDING_BATCH = 64  # samples per batch of the EMA copy's standing BatchNorm statistics
_STANDING_KEY = 0x57A4D  # their seed's key beside the step
ADA_INTERVAL = 4  # D steps between adjustments of the adaptive augmentation probability (stylegan2-ada)


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda, else mps, else cpu; an unavailable device is a ConfigError."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not a torch device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available", Flag("device", "cpu or auto", before="; "))
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} requested but MPS is not available", Flag("device", "cpu or auto", before="; "))
    return device


class ConditionalGAN:
    """A class-conditional GAN ready to train.

    Models are built on the CPU inside ``torch.random.fork_rng`` from a seed derived from
    ``seed`` (so construction neither reads nor changes the global RNG) and then moved to
    ``device``. Fake latents/labels, DiffAugment and penalty noise each draw from their own
    ``torch.Generator`` on ``device``, whose states are part of :meth:`state_dict`.
    """

    def __init__(
        self,
        cfg: GANConfig,
        *,
        img_size: int,
        channels: int,
        num_classes: int,
        device: str | torch.device = "cpu",
        precision: Precision = "fp32",
        channels_last: bool = False,
        class_counts: Optional[Sequence[int]] = None,
        fake_labels: FakeLabels = "uniform",
        seed: int = 0,
        dist: DistInfo = SINGLE,
        sync_bn: bool = True,
        compile: bool = False,
    ) -> None:
        self.cfg = cfg
        self.dist = dist
        self.device = resolve_device(device)
        if precision not in AMP_DTYPES:
            raise ConfigError(f"precision {precision!r} is not one of {list(AMP_DTYPES)}")
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"precision fp16 needs a CUDA device (it uses a GradScaler), not {self.device.type}", Flag("precision", "bf16 or fp32", before="; "))
        self.precision = precision
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        seeds = derive_seeds(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds.model)
            G = build_generator(cfg.model, img_size=img_size, channels=channels, num_classes=num_classes)
            D = build_discriminator(
                cfg.model, img_size=img_size, channels=channels, num_classes=num_classes,
                pac=cfg.tricks.pac, per_sample_grad=cfg.reg.per_sample_grad,
            )
            # after G and D, so that their initial weights do not depend on whether BiGAN is on
            bigan_nets = build_bigan(cfg.bigan, img_size=img_size, channels=channels, num_classes=num_classes, z_dim=G.z_dim) if cfg.bigan.active else None
            if cfg.reg.class_twin and getattr(D, "has_projection", False):  # after the others: their initial weights stay as without it
                D.add_twin()
        if dist.active and sync_bn:  # BatchNorm statistics of the global batch, as in a single process
            G, D = convert_global_bn(G), convert_global_bn(D)
        self.G: nn.Module = G.to(self.device, memory_format=self.memory_format).train()
        self.D: nn.Module = D.to(self.device, memory_format=self.memory_format).train()
        self.ema = EMA(self.G, cfg.tricks.ema_decay, cfg.tricks.ema_start) if cfg.tricks.ema else None
        # The modules a training step calls: DDP wrappers (gradient averaging, buffers broadcast from
        # rank 0) under torchrun, else G and D themselves. Everything else (sampling, EMA, penalties,
        # state_dict) uses the plain modules, so checkpoints have the same keys either way.
        self.G_train: nn.Module = self.G
        self.D_train: nn.Module = self.D
        if dist.active:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device] if self.device.type == "cuda" else None
            self.G_train = DDP(self.G, device_ids=ids, broadcast_buffers=True)
            self.D_train = DDP(self.D, device_ids=ids, broadcast_buffers=True)
        self.notes: list[str] = []  # what the trainer should tell the user about how this GAN runs
        if compile:  # the compiled wrappers share the modules' parameters; state_dict keys stay unprefixed
            if self.device.type == "cpu":  # inductor's CPU backend logs a CUDA_HOME warning that concerns GPUs only
                logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
            self.G_train = torch.compile(self.G_train)
            if cfg.model.d_sn:
                # D runs twice (real, fake) before one backward; compiled, the spectral-norm power
                # iteration's in-place update of u then invalidates the first pass's saved tensors
                # ("modified by an inplace operation"; pytorch#185497). G runs once per backward.
                self.notes.append("--compile: D has spectral norm (model.d_sn), which torch.compile cannot train twice per step; G is compiled, D runs eagerly")
            else:
                self.D_train = torch.compile(self.D_train)
        o = cfg.optim
        self.opt_g = OPTIMIZERS[o.name](self.G.parameters(), o.lr_g, o)
        self.opt_d = OPTIMIZERS[o.name](self.D.parameters(), o.lr_d, o)
        self.loss = get_loss(cfg.loss.name)
        self.penalties = [name for name in _PENALTY_CALLS if getattr(cfg.reg, name) > 0]
        amp = AMP_DTYPES[precision]
        self._autocast = (lambda: torch.autocast(self.device.type, dtype=amp)) if amp is not None else contextlib.nullcontext
        self.scaler_g = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        self.scaler_d = torch.amp.GradScaler(self.device.type) if precision == "fp16" else None
        counts = list(class_counts) if class_counts is not None else [1] * num_classes
        self.latent = LatentSampler(self.G.z_dim, counts, fake_labels, torch_generator(seeds.latent, self.device))
        # the EMA copy's standing statistics draw from their own stream, a function of the step alone
        self._standing_latent = lambda step: LatentSampler(
            self.G.z_dim, counts, fake_labels, torch_generator(child_seed(seeds.latent, _STANDING_KEY, step), self.device)
        )
        self.aug_gen = torch_generator(rank_seed(seeds.augment, dist.rank), self.device)
        self.penalty_gen = torch_generator(rank_seed(seeds.penalty, dist.rank), self.device)
        self.num_d_steps = 0
        self.num_g_steps = 0
        # --- techniques against collapse on small data (issue 13); each keeps its state in state_dict() ---
        t, reg = cfg.tricks, cfg.reg
        if class_counts is not None:
            self.diffaug = resolve_diffaug(t.diffaug, counts)[0]
        else:  # no data to decide from: auto is off
            self.diffaug = "" if t.diffaug.strip() == "auto" else t.diffaug
        self.lecam = LeCamEMA(reg.lecam_decay, reg.lecam_start, self.device) if reg.lecam > 0 else None
        if reg.gsr > 0 and not getattr(self.G, "class_affines", list)():
            raise ConfigError(f"reg.gsr={reg.gsr:g} regularizes class-conditional BatchNorm, which model.arch={cfg.model.arch!r} does not have; use resnet, sagan or biggan (or dcgan with model.uncond_res), or set reg.gsr=0")
        self.gsr = GroupSpectralReg(counts, reg.gsr_beta) if reg.gsr > 0 else None
        # ADA (Karras et al. 2020): p starts at 0 and follows E[sign D(real)] toward tricks.ada_target
        self.ada_p = torch.zeros((), device=self.device) if t.ada_target is not None and self.diffaug else None
        self._ada_acc = torch.zeros(2, device=self.device)  # sum of mean sign D(real) over the interval, D steps counted
        # transitional conditioning (Shahbazi et al. 2022): lambda_t from the G step counter
        self.transitional = t.cond_length > 0
        self._split = self.transitional and bool(getattr(self.D, "has_projection", False))
        self.cond_scale = -1.0
        self._set_cond_scale()
        # curriculum GAN (Sharma et al. 2018): D is an ensemble whose mixture weights follow the G step counter
        self.curriculum = isinstance(self.D, CurriculumDiscriminator)
        self.curriculum_weights: list[float] = []
        self._set_curriculum()
        # progressive growing (Karras et al. 2018): resolution and fade-in alpha follow the G step counter
        self.img_size = img_size
        self.grow_levels = growth_levels(cfg.model, img_size)
        self.progressive = len(self.grow_levels) > 1
        self.growth: tuple[int, float] = (img_size, 1.0)
        self._set_growth()
        # semi-supervised GAN (Salimans et al. 2016): a K+1-way D; unlabeled batches come from the trainer
        self.semi = cfg.model.d_cond == "kplus1"
        self.next_unlabeled: Optional[Callable[[], Tensor]] = None
        self._semi_real: Optional[Tensor] = None  # the last D step's real inputs (labeled + unlabeled): feature matching's target
        if self.semi:
            self._check_semi()
        # class consistency (P2GAN): D's projection embeddings double as a classifier of real images
        self.class_loss = cfg.reg.class_loss
        if self.class_loss > 0:
            self._check_class_loss()
        self.twin = getattr(self.D, "twin", None) is not None  # TAC-GAN (reg.class_twin)
        # UTLO (Khorram et al. 2024): unconditional low-resolution layers and an unconditional low-resolution D head
        self.utlo = cfg.model.uncond_res is not None
        if self.utlo:
            self._check_utlo()
        # BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): an encoder trained jointly through D_xz(x, z, y)
        self.bigan: Optional[BiGAN] = None
        if bigan_nets is not None:
            self._check_bigan()
            E, D_xz = (net.to(self.device, memory_format=self.memory_format).train() for net in bigan_nets)
            self.bigan = BiGAN(E, D_xz, cfg.bigan, o, self._autocast)

    # --- the pieces of a step -----------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        """The keys :meth:`train_iteration` can return, in a fixed order."""
        names = ["d_loss", "g_loss", "d_real", "d_fake", *self.penalties]
        names += ["ortho"] if self.cfg.reg.ortho > 0 else []
        names += ["lecam"] if self.lecam is not None else []
        names += ["mode_seeking"] if self.cfg.reg.mode_seeking > 0 else []
        names += ["gsr"] if self.gsr is not None else []
        names += ["ada_p"] if self.ada_p is not None else []
        names += ["d_strength"] if self.curriculum else []
        names += ["resolution", "fade_alpha"] if self.progressive else []
        names += ["d_class", "g_class"] if self.semi or self.class_loss > 0 else []
        names += ["d_twin", "g_twin"] if self.twin else []
        names += ["d_low", "g_low"] if self.utlo else []
        names += [m for m in BiGAN.METRICS if m != "bigan_cycle" or self.cfg.bigan.cycle > 0] if self.bigan is not None else []
        return names + (["cond_scale"] if self.transitional else [])

    def _check_semi(self) -> None:
        cfg, why = self.cfg, None
        if cfg.tricks.pac != 1:
            why = f"tricks.pac={cfg.tricks.pac} (the K+1 head classifies single images)"
        elif self.loss.relativistic:
            why = f"loss.name={cfg.loss.name} (a relativistic loss compares real and fake logits pairwise; use bce, hinge, lsgan or wasserstein)"
        elif cfg.optim.unrolled_k:
            why = "optim.unrolled_k (unrolled D steps)"
        elif self.curriculum:
            why = "model.curriculum (a discriminator ensemble)"
        elif self.transitional:
            why = "tricks.cond_length (transitional conditioning)"
        if why is not None:
            raise ConfigError(f"model.d_cond=kplus1 (semi-supervised GAN) does not work with {why}; turn that off or use another model.d_cond")

    def _check_class_loss(self) -> None:
        cfg, why = self.cfg, None
        if cfg.model.d_cond != "projection":
            why = f"model.d_cond={cfg.model.d_cond!r} (the class logits are the projection embeddings; kplus1 has its own class loss, semi.supervised)"
        elif cfg.tricks.pac != 1:
            why = f"tricks.pac={cfg.tricks.pac} (a PacGAN row mixes several samples)"
        elif self.curriculum:
            why = "model.curriculum (a discriminator ensemble)"
        if why is not None:
            raise ConfigError(f"reg.class_loss={cfg.reg.class_loss:g} does not work with {why}; set reg.class_loss=0 or change that setting")

    def _check_utlo(self) -> None:
        cfg, why = self.cfg, None
        if self.semi:
            why = "model.d_cond=kplus1 (the semi-supervised K+1 head)"
        elif self.curriculum:
            why = "model.curriculum (a discriminator ensemble)"
        elif cfg.optim.unrolled_k:
            why = "optim.unrolled_k (unrolled D steps)"
        elif self.dist.active:
            why = f"{self.dist.world_size} processes (torchrun); train in one process"
        if why is not None:
            raise ConfigError(f"model.uncond_res={cfg.model.uncond_res} (UTLO) does not work with {why}; set model.uncond_res=null or change that setting")

    def _low(self, x: Tensor) -> Tensor:
        """Real images at UTLO's low resolution (average pooling, as ProGAN's real images)."""
        return F.avg_pool2d(x, self.img_size // self.cfg.model.uncond_res)

    def _low_logits(self, x: Tensor, y: Tensor) -> Tensor:
        """D's unconditional low-resolution logits ``[B]`` (fp32) of low-resolution images, augmented and packed as D's input."""
        x, _ = self.d_inputs(x, y)
        with self._autocast():
            return self.D.low_logits(x).float()

    def _fakes(self, z: Tensor, y: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        """G's images for a step, and with UTLO its low-resolution images (else None), from one forward pass."""
        with self._autocast():
            if self.utlo:
                return self.G_train(z, y, low=True)
            return self.G_train(z, y), None

    def _utlo_mix(self, cond: Tensor, low: Tensor) -> Tensor:
        """UTLO's adversarial loss: (L_cond + alpha L_uncond) / (1 + alpha)."""
        a = self.cfg.model.uncond_alpha
        return (cond + a * low) / (1.0 + a)

    def _check_bigan(self) -> None:
        cfg, why = self.cfg, None
        if self.progressive:
            why = f"model.grow.start={cfg.model.grow.start} (progressive growing: E and D_xz work at the training size only)"
        elif self.dist.active:
            why = f"{self.dist.world_size} processes (torchrun: E and D_xz are not synchronised across ranks yet); train in one process"
        if why is not None:
            raise ConfigError(f"bigan.weight={cfg.bigan.weight:g} does not work with {why}; set bigan.weight=0 or change that setting")

    def _bigan_view(self, x: Tensor) -> Tensor:
        """What D_xz sees of an image: DiffAugment as for D (its own draw), unpacked (see augmentgan.gan.bigan)."""
        return diff_augment(x, self.diffaug, generator=self.aug_gen, p=self.ada_p) if self.diffaug else x

    def _class_weight(self) -> float:
        """reg.class_loss, ramped in with the class term under transitional conditioning."""
        return self.class_loss * (self.cond_scale if self.transitional else 1.0)

    def _semi_d_loss(self, real_in: Tensor, real_y: Tensor, fake_in: Tensor, fake_y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """K+1 D loss: the adversarial loss on logsumexp logits of labeled + unlabeled reals vs fakes, plus
        ``semi.supervised`` x cross-entropy on the labeled ones. Returns (loss, real logits, fake logits, CE)."""
        n = real_in.shape[0]
        if self.next_unlabeled is not None and self.cfg.semi.unlabeled_batch:
            xu = self.next_unlabeled()
            xu = resize_reals(xu, *self.growth) if self.progressive and self.growth != (self.img_size, 1.0) else xu
            xu = diff_augment(xu, self.diffaug, generator=self.aug_gen, p=self.ada_p) if self.diffaug else xu
            real_in = torch.cat([real_in, xu.to(real_in.dtype)])
            real_y = torch.cat([real_y, real_y.new_zeros(xu.shape[0])])  # unused by the K+1 head
        with self._autocast():
            logits_r, _ = self.D_train(real_in, real_y, head=True)
            logits_f, _ = self.D_train(fake_in, fake_y, head=True)
        logits_r, logits_f = logits_r.float(), logits_f.float()
        lse_r, lse_f = torch.logsumexp(logits_r, 1), torch.logsumexp(logits_f, 1)
        adv = self.loss.d_loss(lse_r, lse_f, label_smoothing=self.cfg.loss.label_smoothing)
        ce = F.cross_entropy(logits_r[:n], real_y[:n])
        self._semi_real = real_in.detach()
        return adv + self.cfg.semi.supervised * ce, lse_r, lse_f, ce

    def _semi_g_loss(self, fake_in: Tensor, fake_y: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Feature matching (or the adversarial G loss) plus ``semi.g_class`` x cross-entropy toward the conditioned class."""
        with self._autocast():
            logits_f, feat_f = self.D(fake_in, fake_y, head=True)
        logits_f, feat_f = logits_f.float(), feat_f.float()
        if self.cfg.semi.feature_matching and self._semi_real is not None:
            with torch.no_grad(), self._autocast():
                _, feat_r = self.D(self._semi_real, fake_y.new_zeros(self._semi_real.shape[0]), head=True)
            loss = (feat_r.float().mean(0) - feat_f.mean(0)).pow(2).mean()
        else:
            loss = self.loss.g_loss(torch.logsumexp(logits_f, 1))
        ce = F.cross_entropy(logits_f, fake_y)
        return loss + self.cfg.semi.g_class * ce, {"g_loss": loss.detach(), "g_class": ce.detach()}

    def _set_growth(self) -> None:
        """Put progressive growing's resolution and fade-in alpha for the current G step into G, D and the EMA copy."""
        if not self.progressive:
            return
        self.growth = self.cfg.model.grow.phase(self.num_g_steps, self.grow_levels)
        for net in (self.G, self.D, self.ema.model if self.ema is not None else None):
            if net is not None:
                set_growth(net, *self.growth)

    def _grown(self, next_real: RealBatchFn) -> RealBatchFn:
        """``next_real`` with the images at the current resolution (ProGAN: average pooling, blended while fading in)."""
        if not self.progressive or self.growth == (self.img_size, 1.0):
            return next_real

        def batch() -> tuple[Tensor, Tensor]:
            x, y = next_real()
            return resize_reals(x, *self.growth).contiguous(memory_format=self.memory_format), y

        return batch

    def _set_curriculum(self) -> None:
        """Put the curriculum's mixture weights for the current G step into D (a no-op without a curriculum)."""
        if not self.curriculum:
            return
        weights = self.cfg.model.curriculum.weights(self.num_g_steps)
        if weights != self.curriculum_weights:
            self.curriculum_weights = weights
            set_curriculum_weights(self.D, weights)

    def _set_cond_scale(self) -> None:
        """Put transitional conditioning's lambda_t for the current G step into G, D and the EMA copy."""
        if not self.transitional:
            return
        value = self.cfg.tricks.cond_scale(self.num_g_steps)
        if value != self.cond_scale:
            self.cond_scale = value
            for net in (self.G, self.D, self.ema.model if self.ema is not None else None):
                if net is not None:
                    set_cond_scale(net, value)

    def _logits(self, D: Callable[..., Tensor], x: Tensor, y: Tensor, *, members: bool = False) -> Tensor:
        """D's logits in fp32: ``[B]``, or ``[B, 2]`` (unconditional, projection) under transitional conditioning;
        ``members`` (curriculum only): every ensemble member's, ``[B, K]`` or ``[B, K, 2]``."""
        kw = {"split": True} if self._split else {}
        if members and self.curriculum:
            kw["members"] = True
        with self._autocast():
            return D(x, y, **kw).float()

    def _logits_and_classes(self, D: Callable[..., Tensor], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Optional[Tensor]]:
        """:meth:`_logits` plus D's class logits ``[B, K]`` (reg.class_loss) and its twin classifier's (reg.class_twin,
        else None), all in fp32, from one forward pass."""
        kw = {"split": True} if self._split else {}
        with self._autocast():
            logits, classes, *twin = D(x, y, classes=True, **kw)
        return logits.float(), classes.float(), twin[0].float() if twin else None

    def _d_loss(self, real_raw: Tensor, fake_raw: Tensor) -> Tensor:
        """The adversarial D loss; with a curriculum the mean of the members' own losses (members on dim 1)."""
        if self.curriculum:
            k = real_raw.shape[1]
            return sum(self._d_loss_one(real_raw[:, i], fake_raw[:, i]) for i in range(k)) / k
        return self._d_loss_one(real_raw, fake_raw)

    def _d_loss_one(self, real_raw: Tensor, fake_raw: Tensor) -> Tensor:
        smoothing = self.cfg.loss.label_smoothing
        if self._split:  # transitional: L(unconditional) + lambda_t L(projection), as in transitional-cGAN's loss.py
            loss = self.loss.d_loss(real_raw[:, 0], fake_raw[:, 0], label_smoothing=smoothing)
            return loss + self.cond_scale * self.loss.d_loss(real_raw[:, 1], fake_raw[:, 1], label_smoothing=smoothing)
        return self.loss.d_loss(real_raw, fake_raw, label_smoothing=smoothing)

    def _mixed(self, raw: Tensor) -> Tensor:
        """Members' logits -> the ensemble's (the curriculum mixture); other logits unchanged."""
        return mix(raw, self.D.weights) if self.curriculum else raw

    def _combined(self, logits: Tensor) -> Tensor:
        """What D outputs at the current lambda_t: unconditional + lambda_t x projection."""
        return logits[:, 0] + self.cond_scale * logits[:, 1] if self._split else logits

    def fake_latents(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` latents and fake labels: this rank's slice of a global draw under torchrun."""
        if not self.dist.active:
            return self.latent(n)
        z, y = self.latent(n * self.dist.world_size)
        part = self.dist.shard(n * self.dist.world_size)
        return z[part], y[part]

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator to sample from: the EMA copy (with its standing BatchNorm statistics) when there is one."""
        if self.ema is None:
            return self.G
        self.refresh_ema_stats()
        return self.ema.model

    def refresh_ema_stats(self) -> None:
        """Re-estimate the EMA copy's BatchNorm statistics from its own samples (:meth:`EMA.standing_stats`).

        The draws come from a stream seeded by the run seed and the G step, never from the training
        streams, so sampling, the quality monitor and checkpoints leave the training bit-identical.
        """
        if self.ema is not None and not self.ema.stats_fresh:
            latent = self._standing_latent(self.num_g_steps)
            self.ema.standing_stats(lambda: latent(STANDING_BATCH))

    def d_inputs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """What D sees: DiffAugment (each sample its own draw), then PacGAN packing."""
        if self.diffaug:
            x = diff_augment(x, self.diffaug, generator=self.aug_gen, p=self.ada_p)
        m = self.cfg.tricks.pac
        return (pack(x, m), pack_labels(y, m)) if m > 1 else (x, y)

    def _apply(self, loss: Tensor, opts: Sequence[torch.optim.Optimizer], scaler: Optional[torch.amp.GradScaler]) -> None:
        """One backward of ``loss``, then a step of each optimizer in ``opts`` (one GradScaler for them all under fp16)."""
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            for opt in opts:
                opt.step()
        else:
            scaler.scale(loss).backward()
            for opt in opts:
                scaler.step(opt)
            scaler.update()

    def d_step(self, x_real: Tensor, y_real: Tensor) -> dict[str, Tensor]:
        """One D update on a real batch and as many fakes; penalties every ``reg.every`` D steps."""
        z, y_fake = self.fake_latents(x_real.shape[0])
        with torch.no_grad():
            x_fake, x_fake_low = self._fakes(z, y_fake)
        real_in, real_y = self.d_inputs(x_real, y_real)
        fake_in, fake_y = self.d_inputs(x_fake, y_fake)
        if self.semi:
            loss, real_logits, fake_logits, ce = self._semi_d_loss(real_in, real_y, fake_in, fake_y)
        else:
            if self.class_loss > 0:  # never with a curriculum (refused), so members changes nothing
                real_raw, real_classes, _ = self._logits_and_classes(self.D_train, real_in, real_y)
            else:
                real_raw = self._logits(self.D_train, real_in, real_y, members=True)
            if self.twin:  # TAC-GAN: the twin classifier learns the classes of G's samples
                fake_raw, _, fake_twin = self._logits_and_classes(self.D_train, fake_in, fake_y)
            else:
                fake_raw = self._logits(self.D_train, fake_in, fake_y, members=True)
            loss = self._d_loss(real_raw, fake_raw)
            real_logits, fake_logits = self._combined(self._mixed(real_raw)), self._combined(self._mixed(fake_raw))
        out = {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if self.utlo:  # d_loss stays the conditional loss; d_low is the unconditional low-resolution one
            low = self.loss.d_loss(
                self._low_logits(self._low(x_real), y_real), self._low_logits(x_fake_low, y_fake), label_smoothing=self.cfg.loss.label_smoothing
            )
            loss = self._utlo_mix(loss, low)
            out["d_low"] = low.detach()
        if self.semi:
            out["d_class"] = ce.detach()
        elif self.class_loss > 0:  # after d_loss is recorded: the logged adversarial loss stays comparable across runs
            ce = F.cross_entropy(real_classes, real_y)
            loss = loss + self._class_weight() * ce
            out["d_class"] = ce.detach()
            if self.twin:
                ce_twin = F.cross_entropy(fake_twin, fake_y)
                loss = loss + self._class_weight() * ce_twin
                out["d_twin"] = ce_twin.detach()
        if self.curriculum:  # the schedule's position: 0 = the weakest member alone, 1 = the strongest
            out["d_strength"] = torch.tensor(self.cfg.model.curriculum.position(self.num_g_steps) / (len(self.D.members) - 1), device=loss.device)
        if self.lecam is not None:
            self.lecam.update(real_logits, fake_logits, self.num_g_steps)
            if self.lecam.active(self.num_g_steps):
                value = lecam_reg(real_logits, fake_logits, self.lecam.value[0], self.lecam.value[1])
                loss = loss + self.cfg.reg.lecam * value
                out["lecam"] = value.detach()
        self.num_d_steps += 1
        if self.ada_p is not None:
            self._ada_update(real_logits.detach(), x_real.shape[0] * self.dist.world_size)
            out["ada_p"] = self.ada_p.clone()
        every = self.cfg.reg.every
        if self.penalties and self.num_d_steps % every == 0:
            critics = list(self.D.members) if self.curriculum else [self.D]  # a curriculum penalises each member
            for name in self.penalties:  # in fp32: gradient penalties are fragile in half precision
                value = sum(_PENALTY_CALLS[name](c, real_in, fake_in.float(), real_y, self.penalty_gen) for c in critics) / len(critics)
                loss = loss + (getattr(self.cfg.reg, name) * _PENALTY_SCALE[name] * every) * value
                out[name] = value.detach()
        opts = [self.opt_d]
        if self.bigan is not None:  # D_xz: real pairs (x, E(x, y), y) vs the fake pairs of this step's fakes
            z_real = self.bigan.encode(x_real, y_real)
            value, parts = self.bigan.discriminator_loss(self._bigan_view(x_real), z_real, y_real, self._bigan_view(x_fake), z, y_fake)
            loss = loss + self.cfg.bigan.weight * value
            out.update(parts)
            opts.append(self.bigan.opt_d)
        self._apply(loss, opts, self.scaler_d)
        if self.cfg.reg.clip is not None:
            clip_weights_(self.D, self.cfg.reg.clip)
        return out

    @torch.no_grad()
    def _ada_update(self, real_logits: Tensor, global_batch: int) -> None:
        """ADA's heuristic (stylegan2-ada training_loop.py): every 4 D steps move p by
        ``sign(E[sign D(real)] - target) * batch * 4 / (ada_kimg * 1000)``, clamped to [0, 1]."""
        self._ada_acc += torch.stack([real_logits.sign().mean(), torch.ones((), device=real_logits.device)])
        if self.num_d_steps % ADA_INTERVAL:
            return
        acc = all_reduce_mean(self.dist, self._ada_acc)
        rt = acc[0] / acc[1].clamp(min=1.0)
        step = global_batch * ADA_INTERVAL / (self.cfg.tricks.ada_kimg * 1000.0)
        self.ada_p.copy_((self.ada_p + torch.sign(rt - self.cfg.tricks.ada_target) * step).clamp(0.0, 1.0))
        self._ada_acc.zero_()

    def unrolled_d(self, real_in: Tensor, real_y: Tensor, fake_in: Tensor, fake_y: Tensor) -> Callable[[Tensor, Tensor], Tensor]:
        """D after ``optim.unrolled_k`` virtual steps on a copy of its parameters (Metz et al. 2017).

        Each virtual step is a plain gradient step ``p <- p - lr_d * grad`` (Metz et al. use the
        D optimizer's update) on the D loss of the given real batch and of G's fakes, with
        ``create_graph=True`` so that G's gradient flows through the unrolled updates. D's own
        parameters, buffers (spectral-norm vectors, BN statistics) and optimizer are untouched.
        """
        params = {n: p.detach().requires_grad_(True) for n, p in self.D.named_parameters()}
        buffers = {n: b.clone() for n, b in self.D.named_buffers()}
        lr = self.cfg.optim.lr_d
        for _ in range(self.cfg.optim.unrolled_k):
            # the D step's own objective: a curriculum's members, transitional conditioning's L(u) + lambda_t L(p)
            kw = {**({"members": True} if self.curriculum else {}), **({"split": True} if self._split else {})}
            with self._autocast():
                r = functional_call(self.D, (params, buffers), (real_in, real_y), kw).float()
                f = functional_call(self.D, (params, buffers), (fake_in, fake_y), kw).float()
            loss = self._d_loss(r, f)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
            params = {n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads)}
        return lambda x, y, **kw: functional_call(self.D, (params, buffers), (x, y), kw)

    def g_step(self, x_real: Tensor, y_real: Tensor) -> dict[str, Tensor]:
        """One G update with a batch as large as ``x_real``.

        The real batch (the last one D saw) is used only by relativistic losses and unrolling.
        """
        z, y_fake = self.fake_latents(x_real.shape[0])
        ms, half = self.cfg.reg.mode_seeking, x_real.shape[0] // 2
        if ms > 0 and half:  # MSGAN: the second half repeats the first half's classes with other latents
            y_fake = torch.cat([y_fake[:half], y_fake[:half], y_fake[2 * half:]])
        relativistic, unrolled = self.loss.relativistic, self.cfg.optim.unrolled_k > 0
        self.D.requires_grad_(False)  # no D weight gradients in the G step
        if self.bigan is not None:
            self.bigan.D.requires_grad_(False)
        try:
            x_fake, x_fake_low = self._fakes(z, y_fake)
            fake_in, fake_y = self.d_inputs(x_fake, y_fake)
            real_in, real_y = self.d_inputs(x_real, y_real) if relativistic or unrolled else (None, None)
            D = self.unrolled_d(real_in, real_y, fake_in, fake_y) if unrolled else self.D
            if self.semi:
                loss, out = self._semi_g_loss(fake_in, fake_y)
            else:
                fake_classes = None
                if self.class_loss > 0:
                    fake_raw, fake_classes, fake_twin = self._logits_and_classes(D, fake_in, fake_y)
                else:
                    fake_raw = self._logits(D, fake_in, fake_y)
                real_raw = self._logits(D, real_in, real_y) if relativistic else None
                if self._split:
                    loss = self.loss.g_loss(fake_raw[:, 0], real_raw[:, 0] if real_raw is not None else None)
                    loss = loss + self.cond_scale * self.loss.g_loss(fake_raw[:, 1], real_raw[:, 1] if real_raw is not None else None)
                else:
                    loss = self.loss.g_loss(fake_raw, real_raw)
                out = {"g_loss": loss.detach()}
                if self.utlo:
                    real_low = self._low_logits(self._low(x_real), y_real) if relativistic else None
                    low = self.loss.g_loss(self._low_logits(x_fake_low, y_fake), real_low)
                    loss = self._utlo_mix(loss, low)
                    out["g_low"] = low.detach()
                if fake_classes is not None:
                    ce = F.cross_entropy(fake_classes, fake_y)
                    loss = loss + self._class_weight() * ce
                    out["g_class"] = ce.detach()
                    if self.twin:  # TAC-GAN: G also pulls away from what the twin learned of its own samples
                        ce_twin = F.cross_entropy(fake_twin, fake_y)
                        loss = loss - self._class_weight() * ce_twin
                        out["g_twin"] = ce_twin.detach()
            if self.cfg.reg.ortho > 0:
                ortho = orthogonal_reg(self.G)
                loss = loss + self.cfg.reg.ortho * ortho
                out["ortho"] = ortho.detach()
            if ms > 0 and half:
                value = mode_seeking_loss(x_fake[:half], x_fake[half : 2 * half], z[:half], z[half : 2 * half])
                loss = loss + ms * value
                out["mode_seeking"] = value.detach()
            if self.gsr is not None:
                value = self.gsr(self.G)
                loss = loss + self.cfg.reg.gsr * value
                out["gsr"] = value.detach()
            opts = [self.opt_g]
            if self.bigan is not None:  # G and E fool D_xz (labels swapped); E learns from this term alone
                value, parts = self.bigan.generator_loss(self._bigan_view(x_real), x_real, y_real, self._bigan_view(x_fake), z, y_fake)
                loss = loss + self.cfg.bigan.weight * value
                out.update(parts)
                if self.cfg.bigan.cycle > 0:
                    value, parts = self.bigan.cycle_loss(x_fake, z, y_fake)
                    loss = loss + self.cfg.bigan.weight * self.cfg.bigan.cycle * value
                    out.update(parts)
                opts.append(self.bigan.opt_e)
            self._apply(loss, opts, self.scaler_g)
        finally:
            self.D.requires_grad_(True)
            if self.bigan is not None:
                self.bigan.D.requires_grad_(True)
        self.num_g_steps += 1
        if self.ema is not None:
            self.ema.update(self.G, self.num_g_steps)
        return out

    def train_iteration(self, next_real: RealBatchFn) -> dict[str, Tensor]:
        """``optim.n_dis`` D steps, each on a fresh real batch from ``next_real()``, then one G step.

        Returns detached 0-dim float tensors (means over the D steps; penalties over the D steps
        that computed them) without a device sync.
        """
        self._set_cond_scale()
        self._set_curriculum()
        self._set_growth()
        next_real = self._grown(next_real)
        sums: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for _ in range(self.cfg.optim.n_dis):
            x, y = next_real()
            for k, v in self.d_step(x, y).items():
                sums[k] = sums[k] + v if k in sums else v
                counts[k] = counts.get(k, 0) + 1
        out = {k: v / counts[k] if counts[k] > 1 else v for k, v in sums.items()}
        out.update(self.g_step(x, y))
        if self.transitional:
            out["cond_scale"] = torch.tensor(self.cond_scale, device=out["g_loss"].device)
        if self.progressive:
            out["resolution"] = torch.tensor(float(self.growth[0]), device=out["g_loss"].device)
            out["fade_alpha"] = torch.tensor(self.growth[1], device=out["g_loss"].device)
            self._set_growth()  # after the step: the growth a checkpoint of it loads (growth_at), which the monitor and grids then see
        return out

    # --- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor, *, batch: int = 256, native: bool = False) -> Tensor:
        """Images in [-1, 1] (on the CPU) from the sampling generator in eval mode, ``batch`` at a time.

        At the training size, or with ``native`` (progressive growing) at the current resolution."""
        G = self.sampling_generator
        was_training = G.training
        kw = {"native": True} if native and self.progressive else {}
        G.eval()
        try:
            parts = [G(zc.to(self.device), yc.to(self.device), **kw).float().cpu() for zc, yc in zip(z.split(batch), y.split(batch))]
        finally:
            G.train(was_training)
        return torch.cat(parts)

    def nonfinite_weights(self) -> Optional[str]:
        """``"G"``, ``"D"`` (or ``"E"``, ``"D_xz"`` with BiGAN) if that network holds a NaN/inf weight, else None (one device sync)."""
        nets = {"G": self.G, "D": self.D, **(self.bigan.modules if self.bigan is not None else {})}
        flags = [torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all() for net in nets.values()]
        ok = torch.stack(flags).tolist()
        return next((name for name, good in zip(nets, ok) if not good), None)

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-identically (tensors and plain data only)."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self._ema_state(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g is not None else None,
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d is not None else None,
            "num_d_steps": self.num_d_steps,
            "num_g_steps": self.num_g_steps,
            "generators": {
                "latent": self.latent.generator.get_state(),
                "augment": self.aug_gen.get_state(),
                "penalty": self.penalty_gen.get_state(),
            },
            # issue 13's techniques (absent = off): LeCam EMAs, gSR power-iteration vectors, ADA p
            "lecam": self.lecam.state_dict() if self.lecam is not None else None,
            "gsr": self.gsr.state_dict() if self.gsr is not None else None,
            "ada": {"p": self.ada_p.clone(), "acc": self._ada_acc.clone()} if self.ada_p is not None else None,
            # BiGAN (absent = off): E, D_xz and their optimizers
            "bigan": self.bigan.state_dict() if self.bigan is not None else None,
        }

    def _ema_state(self) -> Optional[dict[str, Any]]:
        if self.ema is None:
            return None
        self.refresh_ema_stats()  # what is saved is what sampling from the file should use
        return self.ema.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.ema is not None:
            if state["G_ema"] is None:
                raise ValueError("the checkpoint has no EMA generator but tricks.ema is on")
            self.ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for scaler, key in ((self.scaler_g, "scaler_g"), (self.scaler_d, "scaler_d")):
            if scaler is not None and state.get(key):
                scaler.load_state_dict(state[key])
        self.num_d_steps = int(state["num_d_steps"])
        self.num_g_steps = int(state["num_g_steps"])
        gens = state["generators"]
        self.latent.generator.set_state(gens["latent"].cpu())
        self.aug_gen.set_state(gens["augment"].cpu())
        self.penalty_gen.set_state(gens["penalty"].cpu())
        for name, part in (("lecam", self.lecam), ("gsr", self.gsr)):
            if part is not None:
                if state.get(name) is None:
                    raise ValueError(f"the checkpoint has no {name} state but reg.{name} is on")
                part.load_state_dict(state[name])
        if self.bigan is not None:
            if state.get("bigan") is None:
                raise ValueError("the checkpoint has no BiGAN encoder but bigan.weight is on")
            self.bigan.load_state_dict(state["bigan"])
        if self.ada_p is not None:
            if state.get("ada") is None:
                raise ValueError("the checkpoint has no ADA state but tricks.ada_target is set")
            self.ada_p.copy_(state["ada"]["p"])
            self._ada_acc.copy_(state["ada"]["acc"])
        self.cond_scale = -1.0
        self._set_cond_scale()
        self.curriculum_weights = []
        self._set_curriculum()
        self._set_growth()
