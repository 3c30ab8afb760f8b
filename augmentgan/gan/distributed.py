"""Data-parallel training across processes: ``torchrun --nproc_per_node N -m augmentgan train ...``.

How a run is split (one process per GPU, or per CPU socket with gloo):

- ``train.batch`` is the **global** batch. Every rank draws the same global batch of real-image
  indices and of latents from the run's seeded streams (identical on all ranks) and trains on its
  own slice of ``batch / world_size`` - disjoint shards of every batch, so the ranks together see
  exactly what a single process with the same batch would see. (torch's ``DistributedSampler``
  shards an epoch of a fixed order; our real batches are drawn class-balanced with replacement, so
  the batch is sharded instead. The result is the same: no image is trained on twice per step.)
- G and D are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages the
  gradients, so the losses (means over the batch) give the gradient of the global batch.
- BatchNorm layers use the statistics of the global batch (:class:`GlobalBatchNorm2d`, like
  ``nn.SyncBatchNorm`` but also on CPU/gloo) unless ``train.sync_bn=false``; spectral-norm vectors
  depend only on the weights, which are identical on every rank, and DDP broadcasts rank 0's buffers
  before every forward as well.
- DiffAugment and penalty noise draw from per-rank streams (the seed's stream for rank 0), so with
  those on a run is not bit-comparable to a single process (it is the same training problem).
- Rank 0 alone writes the run folder (config, metrics, sample grids, checkpoints); errors that rank
  0 finds in the output folder are sent to every rank, so all exit with the same code.

The backend is NCCL on CUDA devices and gloo otherwise; each rank uses ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from augmentgan.errors import AugmentganError, ConfigError

__all__ = [
    "DistInfo", "GlobalBatchNorm2d", "convert_global_bn", "distributed_from_env", "main_first",
    "setup", "state_digest",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run (``world_size == 1``: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's part of a global batch of ``n`` (``n`` divisible by ``world_size``)."""
        b = n // self.world_size
        return slice(self.rank * b, (self.rank + 1) * b)


SINGLE = DistInfo()


def distributed_from_env() -> bool:
    """True when torchrun (or a launcher setting ``WORLD_SIZE``) started more than one process."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer; launch with torchrun") from None


def is_main_process() -> bool:
    """Rank 0, or not distributed (for the CLI: only rank 0 prints)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


@contextlib.contextmanager
def setup(device_name: str) -> Iterator[tuple[DistInfo, str]]:
    """Join the process group torchrun describes (if any) for the duration of a training run.

    Yields ``(info, device)``: the device name this rank must use (``cuda:LOCAL_RANK`` for
    ``auto``/``cuda`` under NCCL). A process group that already exists (set up by the caller) is
    used as it is and left open; one created here is destroyed on exit.
    """
    if dist.is_available() and dist.is_initialized():
        info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())), dist.get_backend())
        yield info, _rank_device(device_name, info)
        return
    if not distributed_from_env():
        yield SINGLE, device_name
        return
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed; run a single process")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise ConfigError(f"device {device_name!r} requested under torchrun but CUDA is not available; use --device cpu (gloo)")
    backend = "nccl" if cuda else "gloo"
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s); lower --nproc_per_node")
        torch.cuda.set_device(local_rank)
        dist.init_process_group(backend, device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group(backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend)
    try:
        yield info, _rank_device("cuda" if cuda else device_name, info)
    finally:
        dist.destroy_process_group()


def _rank_device(device_name: str, info: DistInfo) -> str:
    if device_name in ("auto", "cuda") and torch.cuda.is_available() and info.backend == "nccl":
        return f"cuda:{info.local_rank}"
    if device_name == "auto":
        return "cpu"
    return device_name


def main_first(info: DistInfo, fn: Callable[[], T]) -> Optional[T]:
    """Run ``fn`` on rank 0 only; if it raises an augmentgan error, every rank raises it.

    Used for what only rank 0 may do (clearing or checking the output folder), so that a bad
    ``--out`` stops all ranks with the same one-line error instead of leaving them waiting.
    """
    if not info.active:
        return fn()
    outcome: list[Any] = [None]
    result: Optional[T] = None
    if info.is_main:
        try:
            result = fn()
        except AugmentganError as err:
            outcome[0] = err
    dist.broadcast_object_list(outcome, src=0)
    if outcome[0] is not None:
        raise outcome[0]
    return result


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled; for checkpoints read by rank 0 alone)."""
    if not info.active:
        return obj
    box = [obj if info.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.active:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(info: DistInfo, tensor: Tensor) -> Tensor:
    """The mean over ranks of ``tensor`` (in place; a no-op for one process)."""
    if info.active:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor /= info.world_size
    return tensor


def any_rank(info: DistInfo, flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (a Ctrl-C seen by one rank stops all at the same step)."""
    if not info.active:
        return flag
    t = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def state_digest(*modules: Optional[nn.Module], bn_stats: bool = True) -> str:
    """sha256 of the parameters and buffers of ``modules`` (bitwise: equal digests = equal weights).

    ``bn_stats=False`` leaves BatchNorm running statistics out (they differ between ranks by design
    when each rank normalises with its own batch, ``train.sync_bn=false``).
    """
    h = hashlib.sha256()
    for module in modules:
        if module is None:
            continue
        skip = set() if bn_stats else {
            f"{prefix}.{buf}".lstrip(".") for prefix, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            for buf in ("running_mean", "running_var", "num_batches_tracked")
        }
        for name, tensor in module.state_dict().items():
            if name in skip:
                continue
            h.update(name.encode())
            h.update(np.ascontiguousarray(tensor.detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of a per-rank stream: ``seed`` itself on rank 0 (so rank 0 = a single-process run)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0])


# --- BatchNorm over the global batch --------------------------------------------------------------
class _AllGatherStack(torch.autograd.Function):
    """``stack(all_gather(t))`` with the gradient of a sum over ranks (all-reduce, then this rank's row).

    torch's differentiable all_gather needs reduce-scatter or all-to-all in backward; an all-reduce
    works on every backend, gloo included, and the tensors here are a few hundred floats.
    """

    @staticmethod
    def forward(ctx: Any, t: Tensor) -> Tensor:  # noqa: D102
        t = t.contiguous()
        parts = [torch.empty_like(t) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, t)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[dist.get_rank()]


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the batch summed over all ranks.

    Each rank computes its mean and (biased) variance in fp32, the ranks exchange ``(count, mean,
    var)`` with a differentiable all-gather, and the global moments follow from the parallel
    variance formula (Chan et al.), so gradients also flow across ranks as in ``nn.SyncBatchNorm``,
    which only runs on accelerators. Outside a process group, or in eval mode, it is exactly
    ``nn.BatchNorm2d`` (same parameters and state-dict keys: checkpoints are interchangeable).
    """

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(0, 2, 3), unbiased=False)
        count = xf.new_full((1,), xf.numel() // c)
        stats = _AllGatherStack.apply(torch.cat([count, mean, var]))  # (world, 1 + 2C)
        counts, means, variances = stats[:, :1], stats[:, 1 : 1 + c], stats[:, 1 + c :]
        n = counts.sum()
        g_mean = (counts * means).sum(0) / n
        g_var = (counts * (variances + (means - g_mean) ** 2)).sum(0) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                unbiased = g_var * (n / (n - 1).clamp(min=1))
                self.running_mean.lerp_(g_mean.to(self.running_mean.dtype), m)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = (xf - g_mean.view(1, c, 1, 1)) * torch.rsqrt(g_var.view(1, c, 1, 1) + self.eps)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def convert_global_bn(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` in ``module`` by a :class:`GlobalBatchNorm2d` sharing its
    parameters and buffers (``nn.SyncBatchNorm.convert_sync_batchnorm``'s recipe)."""
    if type(module) is nn.BatchNorm2d:
        new = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats)
        if module.affine:
            new.weight, new.bias = module.weight, module.bias
        new.running_mean, new.running_var, new.num_batches_tracked = module.running_mean, module.running_var, module.num_batches_tracked
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_global_bn(child))
    return module
