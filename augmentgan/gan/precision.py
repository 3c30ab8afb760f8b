"""``precision: auto``: bf16 autocast where the hardware computes bf16 natively, else fp32.

Decided at run time from the machine, never from a constant:

- CUDA: ``torch.cuda.is_bf16_supported()`` (Ampere and later).
- CPU: the ``avx512_bf16`` or ``amx_bf16`` flag in ``/proc/cpuinfo`` (Linux; other systems report
  no flags, hence fp32). Without them oneDNN emulates bf16 and a train step runs at about 0.3-0.4x
  fp32 (measured on Cascade Lake); with avx512_bf16 (AMD EPYC Zen 4) it runs at 1.2-2x
  (benchmarks/RESULTS.md, "bf16 on this CPU").
- Anything else (MPS): fp32.

The resolved value and the reason are recorded in the run's config.yaml and result.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch

Requested = Literal["auto", "fp32", "bf16", "fp16"]
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def _read_cpu_flags() -> frozenset[str]:
    path = Path("/proc/cpuinfo")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none, e.g. macOS, Windows)."""
    return _read_cpu_flags()


def native_bf16(device: torch.device) -> tuple[bool, str]:
    """(does ``device`` compute bf16 natively, why) - read from the machine at call time."""
    if device.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported())
        return ok, f"CUDA device {'supports' if ok else 'does not support'} bf16 (torch.cuda.is_bf16_supported)"
    if device.type == "cpu":
        found = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
        if found:
            return True, f"the CPU has native bf16 ({', '.join(found)})"
        return False, f"the CPU has no native bf16 (no {' or '.join(NATIVE_BF16_FLAGS)} in /proc/cpuinfo); emulated bf16 is slower than fp32"
    return False, f"bf16 autocast is not known to pay off on {device.type}"


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """``(precision, reason)``: ``requested`` itself unless it is ``auto``."""
    if requested != "auto":
        return requested, "as requested"
    ok, why = native_bf16(device)
    return ("bf16" if ok else "fp32"), f"auto: {why}"
