"""``--compile``: torch.compile'd training computes what eager training computes, and its checkpoints
are ordinary ones (no ``_orig_mod.`` keys), so generation and resume need no compiler."""

from __future__ import annotations

import pytest
import torch

from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.trainer import TrainConfig, train
from trainer_data import bars, tiny


@pytest.mark.slow
@pytest.mark.parametrize("d_sn", [False, True], ids=["bn-D", "sn-D"])
def test_compiled_training_matches_eager_and_writes_plain_checkpoints(tmp_path, d_sn):
    """With a spectral-norm D only G is compiled (torch.compile cannot train an SN module twice per
    step); training must still run and equal eager."""
    data = bars()
    gan = tiny(model__d_sn=d_sn, model__d_norm="none" if d_sn else "auto")
    runs = {}
    for compiled in (False, True):
        cfg = TrainConfig(steps=3, batch=8, device="cpu", precision="fp32", sample_every=0, log_every=1, compile=compiled)
        if compiled and d_sn:
            with pytest.warns(UserWarning, match="D runs eagerly"):
                runs[compiled] = train(data, gan, cfg, tmp_path / f"compile-{compiled}").checkpoint
        else:
            runs[compiled] = train(data, gan, cfg, tmp_path / f"compile-{compiled}").checkpoint
    eager, compiled = (torch.load(runs[c], map_location="cpu", weights_only=True)["state"] for c in (False, True))
    for net in ("G", "D"):
        assert compiled[net].keys() == eager[net].keys()
        assert not any("_orig_mod" in k or k.startswith("module.") for k in compiled[net])
        for key, value in eager[net].items():  # kernels differ (fused), the math does not
            torch.testing.assert_close(compiled[net][key].float(), value.float(), rtol=1e-4, atol=1e-5, msg=f"{net}.{key}")
    G, info = load_generator(runs[True])  # an eager module from a compiled run's checkpoint
    assert type(G).__name__ != "OptimizedModule" and info.step == 3
