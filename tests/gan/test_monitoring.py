"""Quality tracked during training: eval rows, best.pt, generation choosing it, resume with a monitor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augmentgan.errors import ConfigError
from augmentgan.gan.checkpoint import checkpoint_target, load_checkpoint, load_generator
from augmentgan.gan.trainer import TrainConfig, train
from augmentgan.generate import sample_dataset
from trainer_data import bars, tiny


def config(**kw) -> TrainConfig:
    base = dict(steps=8, batch=8, device="cpu", precision="fp32", log_every=2, ckpt_every=2, sample_every=0, eval_every=2)
    return TrainConfig(**{**base, **kw})


class Scripted:
    """Scores from a table by step, plus a number computed from the samples (so it depends on the weights), and state."""

    def __init__(self, scores: dict[int, float]) -> None:
        self.scores, self.calls = scores, 0

    def __call__(self, step, sample):
        images, labels = sample(4)
        assert images.dtype == np.uint8 and images.shape == (12, 16, 16, 1) and np.array_equal(labels, np.repeat(np.arange(3), 4))
        self.calls += 1
        return {"score": self.scores.get(step, 0.0), "pixel_mean": float(images.mean()), "calls": float(self.calls)}

    def state_dict(self):
        return {"calls": self.calls}

    def load_state_dict(self, state):
        self.calls = int(state["calls"])


@pytest.fixture(scope="module")
def data():
    return bars()


def eval_rows(run):
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "eval/score" in r]


def test_the_best_step_is_kept_as_best_pt_and_generation_uses_it(tmp_path, data):
    result = train(data, tiny("dcgan"), config(), tmp_path / "run", monitor=Scripted({2: 0.1, 4: 0.9, 6: 0.3, 8: 0.2}))
    run = result.run_dir
    assert result.best["step"] == 4 and result.best["score"] == 0.9 and result.precision == "fp32"
    rows = eval_rows(run)
    assert [r["step"] for r in rows] == [2, 4, 6, 8] and [r["eval/best"] for r in rows] == [0.1, 0.9, 0.9, 0.9]
    assert all(r["eval_s"] >= 0 for r in rows)
    saved = load_checkpoint(run / "checkpoints" / "best.pt")
    assert saved["step"] == 4 and saved["monitor"]["best"]["step"] == 4 and saved["monitor"]["best"]["score"] == 0.9
    # generation: best by default, final on request
    assert checkpoint_target(run) == (run, "best") and checkpoint_target(run, "final") == (run, "final")
    assert load_generator(*checkpoint_target(run))[1].step == 4
    _, report = sample_dataset(run, per_class=2, device="cpu")
    assert report.step == 4 and report.checkpoint.name == "best.pt"
    _, report = sample_dataset(run, per_class=2, device="cpu", checkpoint="final")
    assert report.step == 8 and report.checkpoint.name == "final.pt"


def test_without_monitoring_there_is_no_best_and_auto_means_final(tmp_path, data):
    run = train(data, tiny("dcgan"), config(steps=2, eval_every=0), tmp_path / "run").run_dir
    assert not (run / "checkpoints" / "best.pt").exists() and checkpoint_target(run) == (run, "final")
    with pytest.raises(ConfigError, match="no best checkpoint"):
        checkpoint_target(run, "best")
    with pytest.raises(ConfigError, match="needs a quality monitor"):
        train(data, tiny("dcgan"), config(steps=2), tmp_path / "other")
    with pytest.raises(ConfigError, match="no 'score'"):
        train(data, tiny("dcgan"), config(steps=2), tmp_path / "bad", monitor=lambda step, sample: {"kid": 0.0})


def test_monitoring_changes_no_weight_and_resume_with_a_monitor_is_bit_exact(tmp_path, data):
    gan = tiny("dcgan", tricks__ema=True, tricks__ema_decay=0.9, tricks__diffaug="translation")
    scores = {2: 0.5, 4: 0.2, 6: 0.7, 8: 0.6}
    straight = train(data, gan, config(), tmp_path / "straight", monitor=Scripted(scores))
    plain = train(data, gan, config(eval_every=0), tmp_path / "plain")
    train(data, gan, config(steps=4), tmp_path / "resumed", monitor=Scripted(scores))
    monitor = Scripted(scores)
    resumed = train(data, gan, config(), tmp_path / "resumed", resume=True, monitor=monitor)
    a, b, c = (load_checkpoint(r.checkpoint)["state"] for r in (straight, plain, resumed))
    for key in ("G", "D"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]) and torch.equal(a[key][name], c[key][name]), (key, name)
    for name in a["G_ema"]["model"]:
        assert torch.equal(a["G_ema"]["model"][name], c["G_ema"]["model"][name])
    assert resumed.best == {**straight.best, "checkpoint": resumed.best["checkpoint"]} and resumed.best["step"] == 6
    assert monitor.calls == 4  # its own state came back from the step-4 checkpoint
    assert eval_rows(straight.run_dir)[-1] | {"time": 0, "eval_s": 0} == eval_rows(resumed.run_dir)[-1] | {"time": 0, "eval_s": 0}
    best_a, best_c = (load_checkpoint(r.run_dir / "checkpoints" / "best.pt")["state"]["G"] for r in (straight, resumed))
    assert all(torch.equal(best_a[k], best_c[k]) for k in best_a)


def test_a_resume_puts_the_best_it_knows_in_best_pt(tmp_path, data):
    """probe: resumed from step 4 with evaluation turned off, the run reported its best as step 4 while
    best.pt still held step 8 from the stretch after the checkpoint, which generation then used."""
    import shutil

    from augmentgan.errors import AugmentganWarning

    first = train(data, tiny("dcgan"), config(keep_last=10), tmp_path / "run", monitor=Scripted({2: 0.1, 4: 0.9, 6: 0.3, 8: 0.95})).run_dir
    assert load_checkpoint(first / "checkpoints" / "best.pt")["step"] == 8
    for cut, keep_step_4, want in ((4, True, 4), (6, True, 4), (6, False, None)):  # resumed from `cut`; the best known then is step 4
        run = tmp_path / f"cut-{cut}-{keep_step_4}"
        shutil.copytree(first, run)
        for p in (run / "checkpoints").glob("*.pt"):
            step = int(p.stem.split("-")[1]) if p.stem.startswith("step-") else None
            if p.name == "final.pt" or (step is not None and (step > cut or (step == 4 and cut > 4 and not keep_step_4))):
                p.unlink()
        if want is None:
            with pytest.warns(AugmentganWarning, match=r"best.pt was written after the checkpoint resumed from \(step-000006.pt\).*best evaluated step so far \(4\) has no checkpoint left"):
                result = train(data, tiny("dcgan"), config(keep_last=10, eval_every=0), run, resume=True)
            assert not (run / "checkpoints" / "best.pt").exists() and checkpoint_target(run) == (run, "final")
        else:
            result = train(data, tiny("dcgan"), config(keep_last=10, eval_every=0), run, resume=True)
            saved = load_checkpoint(run / "checkpoints" / "best.pt")
            assert saved["step"] == want == result.best["step"] and saved["monitor"]["best"]["score"] == 0.9
            assert load_generator(*checkpoint_target(run))[1].step == 4
