"""Training speed of every preset: augmentgan's train step against a plain PyTorch loop, GFLOP/s, fast paths.

    python benchmarks/train_step.py                  # every preset, 32 and 64 px, 1 and 3 channels, batch 64
    python benchmarks/train_step.py --quick --json   # 32 px, batch 16, 3 rounds of 1 iteration, one JSON object
    python benchmarks/train_step.py --presets dcgan --sizes 16 --batch 8 --set model.g_ch=8 --set model.d_ch=8 --quick

What is measured, per preset x size x channels (random uint8 images of 10 classes held on the device):

- ``trainer``: the body of ``augmentgan.gan.trainer.train``'s loop, i.e. ``ConditionalGAN.train_iteration``
  (n_dis D steps + one G step, penalties, clipping, DiffAugment, ortho, EMA) fed by the trainer's real-batch
  sampler, plus the metrics meter. The loop's periodic work (a log line every ``log_every`` steps, sample grids
  and checkpoints every 1000) is left out: it is configurable and amortised over many steps.
- ``reference``: the same iteration written below as a minimal plain PyTorch loop over the very same G, D,
  optimizers, EMA copy and batch source (losses, penalties and the ortho term computed with the same math).
  Trainer and reference are timed alternately in rounds (order reversed every other round); the medians give
  ``overhead = 1 - imgs_per_s / reference_imgs_per_s`` (target: < 0.05).
- fast paths (``--fast-path``): the trainer with bf16 autocast and/or channels-last, built identically (same
  seed), timed in the same rounds; ``<name>_speedup`` = its images/s over fp32 eager.
- ``gflops``: matrix-product FLOPs of one iteration (convolutions, matmuls and attention, forward + backward +
  the double backward of penalties, with the formulas of ``torch.utils.flop_counter``) x iterations/s;
  ``peak_gflops``: a square ``--peak-size`` matmul in fp32 and bf16 timed at the start and at the end of the
  run (best of ``--peak-reps`` each; the better of the two is reported).

- ``compile`` fast paths: ``torch.compile`` of the training forward passes (``augmentgan train --compile``); the
  first iteration, which compiles, is timed on its own: ``<name>_compile_s`` (seconds beyond one ordinary
  iteration) and ``<name>_breakeven_steps`` (steps after which compiling has paid for itself; null if never).

images/s = real images D sees per second = iterations/s x n_dis x batch.

Cost: one iteration of every preset at 32 px, batch 64, 1 + 3 channels is about 19 TFLOP (sngan and biggan
are 60% of it), i.e. minutes on a 2-core CPU; ``--quick`` runs 7 fp32 iterations per configuration (batch 16)
plus 4 bf16 ones. On CPUs without native bf16 (no avx512_bf16 / AMX) bf16 runs several times slower than
fp32 and dominates the time: ``--fast-path ''`` skips it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from augmentgan.gan.diffaug import diff_augment
from augmentgan.gan.gan import AMP_DTYPES, ConditionalGAN, resolve_device
from augmentgan.gan.precision import resolve_precision
from augmentgan.gan.presets import get_preset, preset_names
from augmentgan.gan.regularizers import orthogonal_reg
from augmentgan.gan.sampling import RealBatches, RealSampler
from augmentgan.gan.trainer import _Meter, resolve_gan_config

CLASSES = 10
N_IMAGES = 512
# fast-path name -> ConditionalGAN options it changes from fp32 eager
FAST_PATHS: dict[str, dict] = {
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "bf16_channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
    "bf16_compile": {"precision": "bf16", "compile": True},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the plain PyTorch reference ---------------------------------------------------------------------
def _input_grad(D: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, y).sum(), x, create_graph=True)
    return grad.flatten(1)


def _uniform_rows(x: Tensor, g: torch.Generator) -> Tensor:
    return torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), generator=g, device=x.device)


def _gp(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor, g: torch.Generator) -> Tensor:
    eps = _uniform_rows(real, g)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return ((_input_grad(D, x_hat, y).norm(dim=1) - 1) ** 2).mean()


def _dragan(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor, g: torch.Generator) -> Tensor:
    real = real.detach()
    perturbed = real + 0.5 * real.std() * torch.rand(real.shape, generator=g, device=real.device)
    alpha = _uniform_rows(real, g)
    return ((_input_grad(D, real + alpha * (perturbed - real), y).norm(dim=1) - 1) ** 2).mean()


def _r1(D: nn.Module, real: Tensor, fake: Tensor, y: Tensor, g: torch.Generator) -> Tensor:
    return 0.5 * _input_grad(D, real, y).pow(2).sum(dim=1).mean()  # gamma / 2 * E||grad||^2


REFERENCE_PENALTIES = {"gp": _gp, "dragan": _dragan, "r1": _r1}


class Reference:
    """One training iteration as a plain loop over ``gan``'s own G, D, optimizers and EMA copy."""

    def __init__(self, gan: ConditionalGAN) -> None:
        cfg = gan.cfg
        if cfg.tricks.pac > 1 or cfg.optim.unrolled_k > 0:
            raise SystemExit("the reference loop does not implement tricks.pac > 1 or optim.unrolled_k > 0; drop those --set overrides")
        self.cfg, self.G, self.D = cfg, gan.G, gan.D
        self.opt_g, self.opt_d, self.loss = gan.opt_g, gan.opt_d, gan.loss
        self.scaler_g, self.scaler_d = gan.scaler_g, gan.scaler_d
        self.device = gan.device
        self.gen = torch.Generator(device=self.device).manual_seed(12345)
        amp = AMP_DTYPES[gan.precision]
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=amp)) if amp is not None else contextlib.nullcontext
        self.penalties = [(REFERENCE_PENALTIES[n], getattr(cfg.reg, n) * cfg.reg.every) for n in REFERENCE_PENALTIES if getattr(cfg.reg, n) > 0]
        self.ema = gan.ema
        if self.ema is not None:
            self.ema_p, self.src_p = list(self.ema.model.parameters()), [p.detach() for p in self.G.parameters()]
            self.ema_b, self.src_b = list(self.ema.model.buffers()), list(self.G.buffers())
        self.policy = gan.diffaug  # tricks.diffaug with auto resolved from the class counts
        self.d_steps = self.g_steps = 0

    def _aug(self, x: Tensor) -> Tensor:
        return diff_augment(x, self.policy, generator=self.gen) if self.policy else x

    def _latent(self, b: int) -> tuple[Tensor, Tensor]:
        z = torch.randn(b, self.G.z_dim, generator=self.gen, device=self.device)
        return z, torch.randint(0, self.G.num_classes, (b,), generator=self.gen, device=self.device)

    def _step(self, loss: Tensor, opt: torch.optim.Optimizer, scaler: Optional[torch.amp.GradScaler]) -> None:
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def __call__(self, next_real: Callable[[], tuple[Tensor, Tensor]]) -> None:
        cfg, G, D = self.cfg, self.G, self.D
        for _ in range(cfg.optim.n_dis):
            x, y = next_real()
            z, yf = self._latent(x.shape[0])
            with torch.no_grad(), self.autocast():
                xf = G(z, yf)
            xr_in, xf_in = self._aug(x), self._aug(xf)
            with self.autocast():
                lr, lf = D(xr_in, y).float(), D(xf_in, yf).float()
            loss = self.loss.d_fn(lr, lf, cfg.loss.label_smoothing)
            self.d_steps += 1
            if self.d_steps % cfg.reg.every == 0:
                for penalty, weight in self.penalties:
                    loss = loss + weight * penalty(D, xr_in, xf_in.float(), y, self.gen)
            self._step(loss, self.opt_d, self.scaler_d)
            if cfg.reg.clip is not None:
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-cfg.reg.clip, cfg.reg.clip)
        z, yf = self._latent(x.shape[0])
        D.requires_grad_(False)
        with self.autocast():
            xf = G(z, yf)
        xf_in = self._aug(xf)
        with self.autocast():
            lf = D(xf_in, yf).float()
            lr = D(self._aug(x), y).float() if self.loss.relativistic else None
        loss = self.loss.g_fn(lf, lr)
        if cfg.reg.ortho > 0:
            loss = loss + cfg.reg.ortho * orthogonal_reg(G)
        self._step(loss, self.opt_g, self.scaler_g)
        D.requires_grad_(True)
        self.g_steps += 1
        if self.ema is not None:
            with torch.no_grad():
                if self.g_steps < self.ema.start:
                    torch._foreach_copy_(self.ema_p, self.src_p)
                else:
                    torch._foreach_lerp_(self.ema_p, self.src_p, 1.0 - self.ema.decay)
                for e, s in zip(self.ema_b, self.src_b):
                    e.copy_(s)


# --- measurements ------------------------------------------------------------------------------------
class FlopCount(TorchDispatchMode):
    """Matrix-product FLOPs of every aten op run inside it, with the formulas of ``FlopCounterMode``.

    ``FlopCounterMode`` itself cannot be used: its module tracker installs backward hooks that
    ``torch.autograd.grad`` on a leaf (the penalties' double backward) refuses.
    """

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        formula = flop_registry.get(func._overloadpacket)
        if formula is None and func is not torch.ops.prim.device.default:
            with self:  # composite ops count through their parts
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        out = func(*args, **kwargs)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


class TrainerStep:
    """The per-step body of the trainer's loop: ``meter.add(gan.train_iteration(batches), step)``."""

    def __init__(self, gan: ConditionalGAN, batches: RealBatches) -> None:
        self.gan, self.batches = gan, batches
        self.meter = _Meter(gan.metric_names, gan.device)
        self.step = 0

    def __call__(self) -> None:
        self.step += 1
        self.meter.add(self.gan.train_iteration(self.batches), self.step)


def matmul_peak(n: int, dtype: torch.dtype, device: torch.device, reps: int) -> float:
    """GFLOP/s of the best of ``reps`` ``n x n`` matrix products in ``dtype`` (after one warm-up)."""
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=g, device=device).to(dtype)
    b = torch.randn(n, n, generator=g, device=device).to(dtype)
    out = torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _build(cfg, *, size: int, channels: int, batch: int, device: torch.device, **options) -> tuple[ConditionalGAN, RealBatches]:
    gan = ConditionalGAN(cfg, img_size=size, channels=channels, num_classes=CLASSES, device=device, seed=0, **options)
    rng = np.random.default_rng(0)
    labels = np.arange(N_IMAGES) % CLASSES
    images = torch.from_numpy(rng.integers(0, 256, (N_IMAGES, channels, size, size), dtype=np.uint8)).to(device)
    sampler = RealSampler(labels, CLASSES, "balanced", rng)
    return gan, RealBatches(images, torch.from_numpy(labels).to(device), sampler, batch, gan.memory_format)


def _time(fn: Callable[[], None], iters: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / iters


def bench(preset: str, *, size: int, channels: int, batch: int, device: torch.device, fast_paths: list[str], warmup: int, rounds: int, iters: int, overrides: list[str]) -> dict:
    cfg, _ = resolve_gan_config(get_preset(preset, overrides), size)
    gan, batches = _build(cfg, size=size, channels=channels, batch=batch, device=device)
    runners: dict[str, Callable[[], None]] = {"trainer": TrainerStep(gan, batches)}
    reference = Reference(gan)
    runners["reference"] = lambda: reference(batches)
    for name in fast_paths:
        fast_gan, fast_batches = _build(cfg, size=size, channels=channels, batch=batch, device=device, **FAST_PATHS[name])
        runners[name] = TrainerStep(fast_gan, fast_batches)
    with FlopCount() as counter:  # also the first warm-up of G and D, which trainer and reference share
        runners["trainer"]()
    flops = counter.total
    first: dict[str, float] = {}
    for name, fn in runners.items():
        for i in range(warmup if name in ("trainer", "reference") else max(warmup, 1)):
            t0 = time.perf_counter()
            fn()
            _sync(device)
            if i == 0 and "compile" in name:
                first[name] = time.perf_counter() - t0
                fn()  # the no-grad G forward of the D step and the G step compile separately: one more

    seconds: dict[str, list[float]] = {name: [] for name in runners}
    order = list(runners)
    for r in range(rounds):  # A B C, C B A, ...: slow drifts of the machine hit every variant alike
        for name in order if r % 2 == 0 else order[::-1]:
            seconds[name].append(_time(runners[name], iters, device))
    n_dis = cfg.optim.n_dis
    per_iter = {name: statistics.median(s) for name, s in seconds.items()}
    imgs = {name: n_dis * batch / s for name, s in per_iter.items()}
    row = {
        "preset": preset, "size": size, "channels": channels, "batch": batch, "n_dis": n_dis,
        "imgs_per_s": round(imgs["trainer"], 1),
        "reference_imgs_per_s": round(imgs["reference"], 1),
        "overhead": round(1 - imgs["trainer"] / imgs["reference"], 4),
        "ms_per_iter": round(1000 * per_iter["trainer"], 2),
        "gflop_per_iter": round(flops / 1e9, 3),
        "gflops": round(flops / per_iter["trainer"] / 1e9, 2),
        "bf16_speedup": None,
    }
    for name in fast_paths:
        row[f"{name}_imgs_per_s"] = round(imgs[name], 1)
        row[f"{name}_speedup"] = round(imgs[name] / imgs["trainer"], 3)
        if name in first:
            base = "trainer" if name == "compile" else name.removesuffix("_compile")
            base_s = per_iter.get(base, per_iter["trainer"])
            row[f"{name}_compile_s"] = round(first[name] - per_iter[name], 2)
            gain = base_s - per_iter[name]
            row[f"{name}_breakeven_steps"] = round(row[f"{name}_compile_s"] / gain) if gain > 0 else None
    row["rounds_ms"] = {name: [round(1000 * s, 2) for s in v] for name, v in seconds.items()}
    row["g_params"] = sum(p.numel() for p in gan.G.parameters())
    row["d_params"] = sum(p.numel() for p in gan.D.parameters())
    return row


# --- the machine -------------------------------------------------------------------------------------
def machine(device: torch.device) -> dict:
    info: dict = {"device": str(device), "torch": str(torch.__version__), "python": platform.python_version(), "threads": torch.get_num_threads(), "cores": os.cpu_count()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    info["cpu"] = model
    info["cpu_flags"] = {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")}
    info["precision_auto"] = " - ".join(resolve_precision("auto", device))  # what `precision: auto` picks here, and why
    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["mkldnn"] = torch.backends.mkldnn.is_available()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default=",".join(preset_names()))
    parser.add_argument("--sizes", "--size", default=None, help="image sizes, comma-separated (default 32,64; --quick: 32)")
    parser.add_argument("--channels", default="1,3")
    parser.add_argument("--batch", type=int, default=None, help="images per D step (default 64; --quick: 16)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fast-path", default=None, help=f"trainer variants timed against fp32 eager, comma-separated from {list(FAST_PATHS)}; '' for none (default bf16,channels_last; --quick: bf16)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations per variant after the FLOP-counting one (default 1; --quick: 0; fast paths at least 1)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (default 5; --quick: 3)")
    parser.add_argument("--iters", type=int, default=None, help="iterations per variant per round (default 2; --quick: 1)")
    parser.add_argument("--peak-size", type=int, default=2048, help="side of the square matmul that measures the peak")
    parser.add_argument("--peak-reps", type=int, default=None, help="timed peak matmuls per dtype (default 10; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="a reduced run: 32 px, batch 16, fewer rounds (see the defaults above)")
    parser.add_argument("--set", action="append", default=[], help="GAN override KEY=VALUE for every preset (repeatable)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown tables")
    args = parser.parse_args()
    q = args.quick
    sizes = args.sizes or ("32" if q else "32,64")
    fast = args.fast_path if args.fast_path is not None else ("bf16" if q else "bf16,channels_last")
    fast_paths = [f for f in fast.split(",") if f]
    unknown = [f for f in fast_paths if f not in FAST_PATHS]
    if unknown:
        parser.error(f"--fast-path {unknown}: choose from {list(FAST_PATHS)}")
    warmup = args.warmup if args.warmup is not None else (0 if q else 1)
    batch = args.batch if args.batch is not None else (16 if q else 64)
    rounds = args.rounds if args.rounds is not None else (3 if q else 5)
    iters = args.iters if args.iters is not None else (1 if q else 2)
    peak_reps = args.peak_reps if args.peak_reps is not None else (3 if q else 10)
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    peak = {"fp32": round(matmul_peak(args.peak_size, torch.float32, device, peak_reps), 1), "bf16": round(matmul_peak(args.peak_size, torch.bfloat16, device, peak_reps), 1)}
    rows = [
        bench(p, size=int(s), channels=int(c), batch=batch, device=device, fast_paths=fast_paths, warmup=warmup, rounds=rounds, iters=iters, overrides=args.set)
        for p in args.presets.split(",") for s in sizes.split(",") for c in args.channels.split(",")
    ]
    peak_after = {"fp32": round(matmul_peak(args.peak_size, torch.float32, device, peak_reps), 1), "bf16": round(matmul_peak(args.peak_size, torch.bfloat16, device, peak_reps), 1)}
    for r in rows:
        r["fraction_of_fp32_peak"] = round(r["gflops"] / max(peak["fp32"], peak_after["fp32"]), 4)
    env = machine(device) | {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seconds": round(time.perf_counter() - t_start, 1),
        "settings": {"sizes": sizes, "batch": batch, "fast_paths": fast_paths, "warmup": warmup, "rounds": rounds, "iters": iters, "peak_size": args.peak_size, "overrides": args.set},
    }
    result = {
        "env": env,
        "peak_gflops": {k: max(peak[k], peak_after[k]) for k in peak},
        "peak_gflops_before_after": {"before": peak, "after": peak_after},
        "max_overhead": max(r["overhead"] for r in rows),
        "results": rows,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{env['cpu']} ({env['cores']} cores, {env['threads']} threads), device {env['device']}, torch {env['torch']}, {env['date']}")
    print(f"command: {env['command']}")
    print(f"peak matmul {args.peak_size}: fp32 {result['peak_gflops']['fp32']} GFLOP/s, bf16 {result['peak_gflops']['bf16']} GFLOP/s (before/after: {peak} / {peak_after})\n")
    extra = [f"{f} speed-up" for f in fast_paths]
    print("| preset | size | ch | n_dis | imgs/s | reference imgs/s | overhead | ms/iter | GFLOP/iter | GFLOP/s | % fp32 peak | " + " | ".join(extra) + (" |" if extra else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(extra))
    for r in rows:
        cells = [r["preset"], r["size"], r["channels"], r["n_dis"], r["imgs_per_s"], r["reference_imgs_per_s"], f"{100 * r['overhead']:.1f}%", r["ms_per_iter"],
                 r["gflop_per_iter"], r["gflops"], f"{100 * r['fraction_of_fp32_peak']:.1f}%", *[r[f"{f}_speedup"] for f in fast_paths]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
    compiled = [f for f in fast_paths if "compile" in f]
    for r in rows:
        for f in compiled:
            print(f"{r['preset']} {r['size']}px {r['channels']}ch {f}: compile {r[f + '_compile_s']} s, pays off after {r[f + '_breakeven_steps']} steps")
    print(f"\nmax overhead {100 * result['max_overhead']:.1f}% (target < 5%)")


if __name__ == "__main__":
    sys.exit(main())
