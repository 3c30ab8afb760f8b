"""``precision: auto``: bf16 where the hardware has native bf16, fp32 elsewhere; recorded in the run."""

from __future__ import annotations

import pytest
import torch
import yaml

from augmentgan.gan import precision as P
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import bars, tiny

CPU = torch.device("cpu")


@pytest.mark.parametrize("flags,expected", [
    ({"avx2", "avx512f", "avx512_bf16"}, "bf16"),  # AMD Zen 4, Intel Cooper Lake
    ({"avx2", "amx_bf16", "amx_tile"}, "bf16"),  # Intel Sapphire Rapids
    ({"avx2", "avx512f", "avx512_vnni"}, "fp32"),  # Cascade Lake: bf16 only emulated
    (set(), "fp32"),  # no /proc/cpuinfo (macOS, Windows)
])
def test_auto_follows_the_cpu_flags(monkeypatch, flags, expected):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset(flags))
    resolved, why = P.resolve_precision("auto", CPU)
    assert resolved == expected and why.startswith("auto: ")
    assert P.resolve_precision("fp32", CPU) == ("fp32", "as requested")
    assert P.resolve_precision("bf16", CPU)[0] == "bf16"


def test_auto_on_cuda_asks_torch(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
        assert P.resolve_precision("auto", torch.device("cuda"))[0] == expected
    assert P.resolve_precision("auto", torch.device("mps"))[0] == "fp32"


def test_the_real_flags_are_read_from_proc_cpuinfo():
    flags = P.cpu_flags()
    assert isinstance(flags, frozenset)
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        assert flags == frozenset()
        return
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), None)
    assert flags == (frozenset(line.split(":", 1)[1].split()) if line else frozenset())


@pytest.mark.parametrize("flags,expected", [({"avx512_bf16"}, "bf16"), (set(), "fp32")])
def test_the_run_records_what_auto_resolved_to(tmp_path, monkeypatch, flags, expected):
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset(flags))
    cfg = TrainConfig(steps=2, batch=8, device="cpu", log_every=1, ckpt_every=2, sample_every=0)
    assert cfg.precision == "auto"
    result = train(bars(), tiny("dcgan"), cfg, tmp_path / "run")
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert result.precision == expected and saved["resolved"]["precision"] == expected
    assert saved["train"]["precision"] == "auto" and "bf16" in saved["resolved"]["precision_reason"]
