"""generate / sample_dataset: exact counts, determinism, batch independence, metadata, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from augmentgan.data import load, read_hdf5_attrs, read_hdf5_extra
from augmentgan.data.types import LabeledImages, Source
from augmentgan.errors import ConfigError, DataError, GenerationError, OutputExistsError
from augmentgan.gan.checkpoint import file_sha256
from augmentgan.gan.checkpoint import load_generator
from augmentgan.gan.truncation import class_latents
from augmentgan.generate import CHUNK, generate, sample_dataset
from augmentgan.generate.auto_truncation import GRID, label

# cheap filters whose decisions do not need a well-trained GAN
FILTERS = ["memorization:q=0.05", "discriminator:keep=0.6,burn=64", "dedup:r=0.3"]


@pytest.fixture(scope="module")
def opts(real, classifier):
    return dict(real=real, classifier=classifier, device="cpu")


def test_counts_are_met_exactly_with_provenance_and_metadata(tmp_path, run_dir, opts):
    out = tmp_path / "synth.h5"
    report = generate(run_dir, out, counts="zero=70,two=3", truncation={"two": 2.0}, filters=FILTERS, batch=16, seed=5, max_tries=30, **opts)
    data = load(out)
    assert data.class_counts().tolist() == [70, 0, 3] and data.class_names == ("zero", "one", "two")
    assert (data.source == Source.gan).all() and (data.parent == -1).all() and data.image_shape == (8, 8, 1)
    assert [(c.requested, c.kept) for c in report.classes] == [(70, 70), (0, 0), (3, 3)]
    for c in report.classes:
        assert c.candidates == c.kept + sum(c.rejected.values()) and c.near_copies == c.rejected["memorization"]
    extra = read_hdf5_extra(out)
    np.testing.assert_array_equal(extra["truncation"], np.r_[np.full(70, np.nan), np.full(3, 2.0)].astype(np.float32))
    assert (np.diff(extra["z_index"][:70]) > 0).all()
    attrs = read_hdf5_attrs(out)
    checkpoint = run_dir / "checkpoints" / "final.pt"
    assert attrs["checkpoint_sha256"] == file_sha256(checkpoint) == report.checkpoint_sha256
    assert attrs["run"] == str(run_dir) and attrs["seed"] == 5 and attrs["ema"]
    assert json.loads(attrs["truncation"]) == [None, None, 2.0] and json.loads(attrs["requested"]) == [70, 0, 3]
    assert [f["name"] for f in json.loads(attrs["filters"])] == ["memorization", "discriminator", "dedup"]
    assert sorted(p.name for p in report.grids.iterdir()) == ["two.png", "zero.png"]
    assert report.grids == tmp_path / "synth-grids"


def test_sample_i_of_class_c_is_the_generator_at_latent_i(run_dir, opts):
    """No filters: the k-th sample of a class is G(class_latents(seed, c, k)) at the data size (8x8 data trained at
    16x16: each 2x2 block of G's image averaged, the inverse of the trainer's scaling up)."""
    data, report = sample_dataset(run_dir, per_class=3, truncation="one=1.5", seed=2, **opts)
    G, info = load_generator(run_dir)
    assert info.fit == "scale" and info.img_size == 16
    for c, t in enumerate((None, 1.5, None)):
        assert report.classes[c].truncation == t
        with torch.no_grad():
            x = G(class_latents(2, c, 0, CHUNK, G.z_dim, t), torch.full((CHUNK,), c))[:3]
        x = F.avg_pool2d(x, 2)
        expected = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        np.testing.assert_array_equal(data.images[data.labels == c], expected)


def test_batch_size_and_request_size_do_not_change_the_samples(tmp_path, run_dir, opts):
    a = generate(run_dir, tmp_path / "a.h5", per_class=40, filters=FILTERS, batch=7, **opts)
    b = generate(run_dir, tmp_path / "b.h5", per_class=40, filters=FILTERS, batch=64, **opts)
    x, y = load(tmp_path / "a.h5"), load(tmp_path / "b.h5")
    assert x.images.tobytes() == y.images.tobytes() and np.array_equal(x.labels, y.labels)
    np.testing.assert_array_equal(read_hdf5_extra(tmp_path / "a.h5")["z_index"], read_hdf5_extra(tmp_path / "b.h5")["z_index"])
    assert [c.rejected for c in a.classes] == [c.rejected for c in b.classes]
    assert sum(sum(c.rejected.values()) for c in a.classes) > 0, "the filters must have had something to do"
    fewer, _ = sample_dataset(run_dir, per_class=25, filters=FILTERS, **opts)
    for c in range(3):
        np.testing.assert_array_equal(fewer.images[fewer.labels == c], x.images[x.labels == c][:25])


def test_same_seed_same_bytes_other_seed_other_samples(tmp_path, run_dir, opts):
    paths = [tmp_path / f"{i}.h5" for i in range(3)]
    for path, seed in zip(paths, (4, 4, 5)):
        generate(run_dir, path, per_class=5, seed=seed, grids=False, **opts)
    first, again, other = (load(p) for p in paths)
    assert first.images.tobytes() == again.images.tobytes()
    assert first.images.tobytes() != other.images.tobytes()


def test_folder_output_streams_with_manifest_and_grids_beside_it(tmp_path, run_dir, opts):
    report = generate(run_dir, tmp_path / "synth", per_class=4, truncation=1.0, **opts)
    data = load(tmp_path / "synth")
    assert data.class_counts().tolist() == [4, 4, 4] and (data.source == Source.gan).all()
    assert sorted(p.name for p in (tmp_path / "synth").iterdir()) == ["augmentgan.json", "manifest.csv", "one", "two", "zero"]
    header = (tmp_path / "synth" / "manifest.csv").read_text().splitlines()[0]
    assert header == "file,label,class,source,parent,truncation,z_index"
    meta = json.loads((tmp_path / "synth" / "augmentgan.json").read_text())
    assert meta["truncation"] == [1.0, 1.0, 1.0] and meta["checkpoint_sha256"] == report.checkpoint_sha256
    assert report.grids == tmp_path / "synth-grids" and len(list(report.grids.iterdir())) == 3


def test_auto_truncation_picks_the_best_scoring_threshold_and_records_it(tmp_path, run_dir, opts):
    report = generate(run_dir, tmp_path / "auto.h5", counts={0: 2, 2: 2}, truncation="auto", grids=False, **opts)
    attrs = read_hdf5_attrs(tmp_path / "auto.h5")
    auto = json.loads(attrs["truncation_auto"])
    assert auto["grid"] == [label(t) for t in GRID] and set(auto["scores"]) == {"zero", "two"}
    for c in (0, 2):
        scores = report.classes[c].truncation_scores
        assert scores == auto["scores"][report.classes[c].name]
        assert label(report.classes[c].truncation) == max(scores, key=scores.get)
        assert all(0 <= s <= 1 for s in scores.values())
    assert report.classes[1].truncation is None and report.classes[1].truncation_scores is None
    assert json.loads(attrs["truncation"]) == [c.truncation for c in report.classes]


@pytest.mark.parametrize("name", ["never.h5", "never"])
def test_gives_up_after_max_tries_with_a_clear_message_and_no_output(tmp_path, run_dir, opts, name):
    out = tmp_path / name
    with pytest.raises(GenerationError) as err:
        generate(run_dir, out, counts={"one": 4}, filters=["dedup:d=3"], max_tries=20, **opts)
    message = str(err.value)
    assert "class 'one': kept 1 of 4 requested after 80 candidates" in message and "'dedup' rejected most (79)" in message
    assert "dedup:d" in message and "--max-tries" in message and "\n" not in message
    assert not out.exists() and not (tmp_path / "never-grids").exists() and list(tmp_path.iterdir()) == []


def test_real_data_is_read_from_the_run_and_must_be_the_training_data(run_dir, classifier, heldout):
    data, _ = sample_dataset(run_dir, per_class=2, filters=["confidence:p=0.01"], classifier=classifier, device="cpu")
    assert len(data) == 6
    with pytest.raises(DataError, match="not the data checkpoint .* was trained on"):
        sample_dataset(run_dir, per_class=2, filters=["confidence"], real=heldout, device="cpu")


def test_refusals(tmp_path, run_dir, real, opts):
    (tmp_path / "x.h5").write_bytes(b"")
    with pytest.raises(OutputExistsError):
        generate(run_dir, tmp_path / "x.h5", per_class=1, **opts)
    generate(run_dir, tmp_path / "x.h5", per_class=1, force=True, **opts)
    assert len(load(tmp_path / "x.h5")) == 3
    for kwargs, message in [
        (dict(per_class=1, counts="zero=1"), "exactly one of"),
        (dict(counts="seven=1"), "unknown class 'seven'"),
        (dict(counts="one=5,one=6"), "class 'one' is given twice \\('one' and 'one'\\); give each class once"),  # the last one won
        (dict(counts="1=5,one=6"), "class 'one' is given twice \\('1' and 'one'\\)"),  # an index and the name of one class
        (dict(per_class=1, truncation={"two": 0.5, 2: 1.0}), "--truncation: class 'two' is given twice"),
        (dict(counts=[1, 2]), "2 numbers for 3 classes"),
        (dict(counts=[1, -2, 0]), "is not a whole number"),
        (dict(counts=3), "not a {class: n} mapping"),
        (dict(per_class=1, truncation=-1), "must be a positive number"),
        (dict(per_class=1, checkpoint="best"), "no best checkpoint"),
        (dict(balance_to=LabeledImages(real.images[:4], [0, 1, 0, 1], ("a", "b"))), "balance the data the GAN was trained for"),
    ]:
        with pytest.raises(ConfigError, match=message):
            sample_dataset(run_dir, **kwargs, **opts)
    from augmentgan.errors import DataError

    doubled = LabeledImages(np.repeat(np.repeat(real.images, 2, axis=1), 2, axis=2), real.labels, real.class_names)
    with pytest.raises(DataError, match=r"--balance-to data has \d+x\d+x1 images, the GAN's samples are .*would not join it"):
        sample_dataset(run_dir, balance_to=doubled, **opts)  # samples of another size do not balance it
    balanced, _ = sample_dataset(run_dir, balance_to=real, **opts)
    assert balanced.class_counts().tolist() == [0, 16, 28]
    per_class, _ = sample_dataset(run_dir, counts=np.array([2, 0, 1]), **opts)  # one number per class, in class order
    assert per_class.class_counts().tolist() == [2, 0, 1]
