"""The conditional GAN object: it owns G, D, the EMA copy, both optimizers, the loss, the penalties
and the tricks, and it knows how to take one training step (mimicry's design: the object trains
itself, the trainer only loops, logs and checkpoints).

``train_iteration`` = ``n_dis`` D steps on fresh real batches + one G step. It returns detached
0-dim tensors and never synchronises with the device; read them with ``float()`` when you log.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable, Literal, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from augmentgan.errors import ConfigError
from augmentgan.gan.config import GANConfig, OptimConfig
from augmentgan.gan.diffaug import diff_augment
from augmentgan.gan.distributed import SINGLE, DistInfo, convert_global_bn, rank_seed
from augmentgan.gan.ema import EMA
from augmentgan.gan.losses import get_loss
from augmentgan.gan.models import build_discriminator, build_generator
from augmentgan.gan.pacgan import pack, pack_labels
from augmentgan.gan.regularizers import D_PENALTIES, clip_weights_, orthogonal_reg
from augmentgan.gan.sampling import FakeLabels, LatentSampler, derive_seeds, torch_generator

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
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu or auto")
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
            raise ConfigError(f"precision fp16 needs a CUDA device (it uses a GradScaler), not {self.device.type}; use --precision bf16 or fp32")
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
        self.aug_gen = torch_generator(rank_seed(seeds.augment, dist.rank), self.device)
        self.penalty_gen = torch_generator(rank_seed(seeds.penalty, dist.rank), self.device)
        self.num_d_steps = 0
        self.num_g_steps = 0

    # --- the pieces of a step -----------------------------------------------------------
    @property
    def metric_names(self) -> list[str]:
        """The keys :meth:`train_iteration` can return, in a fixed order."""
        names = ["d_loss", "g_loss", "d_real", "d_fake", *self.penalties]
        return names + (["ortho"] if self.cfg.reg.ortho > 0 else [])

    def fake_latents(self, n: int) -> tuple[Tensor, Tensor]:
        """``n`` latents and fake labels: this rank's slice of a global draw under torchrun."""
        if not self.dist.active:
            return self.latent(n)
        z, y = self.latent(n * self.dist.world_size)
        part = self.dist.shard(n * self.dist.world_size)
        return z[part], y[part]

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator to sample from: the EMA copy when there is one."""
        return self.ema.model if self.ema is not None else self.G

    def d_inputs(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """What D sees: DiffAugment (each sample its own draw), then PacGAN packing."""
        if self.cfg.tricks.diffaug:
            x = diff_augment(x, self.cfg.tricks.diffaug, generator=self.aug_gen)
        m = self.cfg.tricks.pac
        return (pack(x, m), pack_labels(y, m)) if m > 1 else (x, y)

    def _apply(self, loss: Tensor, opt: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler]) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def d_step(self, x_real: Tensor, y_real: Tensor) -> dict[str, Tensor]:
        """One D update on a real batch and as many fakes; penalties every ``reg.every`` D steps."""
        z, y_fake = self.fake_latents(x_real.shape[0])
        with torch.no_grad(), self._autocast():
            x_fake = self.G_train(z, y_fake)
        real_in, real_y = self.d_inputs(x_real, y_real)
        fake_in, fake_y = self.d_inputs(x_fake, y_fake)
        with self._autocast():
            real_logits = self.D_train(real_in, real_y).float()
            fake_logits = self.D_train(fake_in, fake_y).float()
        loss = self.loss.d_loss(real_logits, fake_logits, label_smoothing=self.cfg.loss.label_smoothing)
        out = {"d_loss": loss.detach(), "d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        self.num_d_steps += 1
        every = self.cfg.reg.every
        if self.penalties and self.num_d_steps % every == 0:
            for name in self.penalties:  # in fp32: gradient penalties are fragile in half precision
                value = _PENALTY_CALLS[name](self.D, real_in, fake_in.float(), real_y, self.penalty_gen)
                loss = loss + (getattr(self.cfg.reg, name) * _PENALTY_SCALE[name] * every) * value
                out[name] = value.detach()
        self._apply(loss, self.opt_d, self.scaler_d)
        if self.cfg.reg.clip is not None:
            clip_weights_(self.D, self.cfg.reg.clip)
        return out

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
            with self._autocast():
                r = functional_call(self.D, (params, buffers), (real_in, real_y)).float()
                f = functional_call(self.D, (params, buffers), (fake_in, fake_y)).float()
            loss = self.loss.d_loss(r, f, label_smoothing=self.cfg.loss.label_smoothing)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True, allow_unused=True)
            params = {n: p if g is None else p - lr * g for (n, p), g in zip(params.items(), grads)}
        return lambda x, y: functional_call(self.D, (params, buffers), (x, y))

    def g_step(self, x_real: Tensor, y_real: Tensor) -> dict[str, Tensor]:
        """One G update with a batch as large as ``x_real``.

        The real batch (the last one D saw) is used only by relativistic losses and unrolling.
        """
        z, y_fake = self.fake_latents(x_real.shape[0])
        relativistic, unrolled = self.loss.relativistic, self.cfg.optim.unrolled_k > 0
        self.D.requires_grad_(False)  # no D weight gradients in the G step
        try:
            with self._autocast():
                x_fake = self.G_train(z, y_fake)
            fake_in, fake_y = self.d_inputs(x_fake, y_fake)
            real_in, real_y = self.d_inputs(x_real, y_real) if relativistic or unrolled else (None, None)
            D = self.unrolled_d(real_in, real_y, fake_in, fake_y) if unrolled else self.D
            with self._autocast():
                fake_logits = D(fake_in, fake_y).float()
                real_logits = D(real_in, real_y).float() if relativistic else None
            loss = self.loss.g_loss(fake_logits, real_logits)
            out = {"g_loss": loss.detach()}
            if self.cfg.reg.ortho > 0:
                ortho = orthogonal_reg(self.G)
                loss = loss + self.cfg.reg.ortho * ortho
                out["ortho"] = ortho.detach()
            self._apply(loss, self.opt_g, self.scaler_g)
        finally:
            self.D.requires_grad_(True)
        self.num_g_steps += 1
        if self.ema is not None:
            self.ema.update(self.G, self.num_g_steps)
        return out

    def train_iteration(self, next_real: RealBatchFn) -> dict[str, Tensor]:
        """``optim.n_dis`` D steps, each on a fresh real batch from ``next_real()``, then one G step.

        Returns detached 0-dim float tensors (means over the D steps; penalties over the D steps
        that computed them) without a device sync.
        """
        sums: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for _ in range(self.cfg.optim.n_dis):
            x, y = next_real()
            for k, v in self.d_step(x, y).items():
                sums[k] = sums[k] + v if k in sums else v
                counts[k] = counts.get(k, 0) + 1
        out = {k: v / counts[k] if counts[k] > 1 else v for k, v in sums.items()}
        out.update(self.g_step(x, y))
        return out

    # --- sampling -------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: Tensor, y: Tensor, *, batch: int = 256) -> Tensor:
        """Images in [-1, 1] (on the CPU) from the sampling generator in eval mode, ``batch`` at a time."""
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        try:
            parts = [G(zc.to(self.device), yc.to(self.device)).float().cpu() for zc, yc in zip(z.split(batch), y.split(batch))]
        finally:
            G.train(was_training)
        return torch.cat(parts)

    def nonfinite_weights(self) -> Optional[str]:
        """``"G"`` or ``"D"`` if that network holds a NaN/inf weight, else None (one device sync)."""
        flags = [torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all() for net in (self.G, self.D)]
        ok = torch.stack(flags).tolist()
        return next((name for name, good in zip(("G", "D"), ok) if not good), None)

    # --- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-identically (tensors and plain data only)."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.ema.state_dict() if self.ema is not None else None,
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
        }

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
