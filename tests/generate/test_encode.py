"""GAN inversion (augmentgan encode) on the tiny run of conftest.py, and the source names users see."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from augmentgan.data import load, save
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source
from augmentgan.errors import ConfigError, DataError, OutputExistsError
from augmentgan.gan.checkpoint import load_generator, read_generator
from augmentgan.gan.fit import to_data, to_train
from augmentgan.generate.encode import EncodeSettings, _to_uint8, check_data, decode, encode, encode_images, read_codes, report_path

FAST = EncodeSettings(encoder_steps=60, refine_steps=60, feature_weight=0.0, seed=1)


def _own_samples(G, info, n: int = 24, seed: int = 5) -> tuple[LabeledImages, torch.Tensor]:  # noqa: ANN001
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    y = torch.arange(n) % len(info.class_names)
    with torch.no_grad():
        images = _to_uint8(to_data(G(z, y), tuple(info.data_size), info.fit))
    return LabeledImages(images, y.numpy(), info.class_names), z


def test_encoding_g_samples_recovers_codes_that_redraw_them(run_dir: Path) -> None:
    G, info = load_generator(run_dir)
    own, _ = _own_samples(G, info)
    codes = encode_images(G, info, own, settings=FAST)
    redrawn = decode(G, codes.codes, codes.labels, tuple(info.data_size), info.channels, torch.device("cpu"), info.fit)
    diff = np.abs(redrawn.astype(np.int64) - own.images.astype(np.int64))
    spread = np.abs(own.images.astype(np.int64) - own.images[::-1].astype(np.int64)).mean()  # two different samples differ this much
    assert diff.mean() < 0.1 * spread and diff.mean() < 4, (diff.mean(), spread)
    assert (redrawn == codes.reconstructions).all()
    # refinement never loses to the encoder's guess, and is what brings the error down
    assert (codes.error <= codes.error_encoder + 1e-7).all() and codes.error.mean() < 0.5 * codes.error_encoder.mean()


def test_feature_loss_uses_the_domain_classifier(run_dir: Path, real: LabeledImages, classifier) -> None:  # noqa: ANN001
    G, info = load_generator(run_dir)
    codes = encode_images(G, info, real[:12], classifier=classifier, settings=EncodeSettings(encoder_steps=10, refine_steps=5, seed=1))
    assert (codes.feature_distance > 0).all() and (codes.feature_distance <= 2).all()
    per_class = codes.per_class()
    assert set(per_class) == {real.class_names[c] for c in np.unique(real.labels[:12])}


def test_encode_writes_codes_and_worst_first_pairs(run_dir: Path, real: LabeledImages, tmp_path: Path) -> None:
    out = tmp_path / "codes.h5"
    result = encode(run_dir, real, out, settings=FAST, device="cpu")
    codes = read_codes(out)
    assert codes.codes.shape == (len(real), 16) and (codes.labels == real.labels).all()
    assert codes.class_names == real.class_names and codes.reconstructions.shape == real.images.shape
    assert np.allclose(codes.error, result.codes.error) and codes.attrs["format"] == "augmentgan-codes"
    assert codes.attrs["data_fingerprint"] == real.fingerprint() and result.report == report_path(out) and result.report.is_file()
    assert codes.attrs["encoder"] == "fitted" and json.loads(codes.attrs["settings"])["encoder_requested"] == "fitted"  # the default
    with pytest.raises(OutputExistsError):
        encode(run_dir, real, out, settings=FAST)
    encode(run_dir, real[:6], out, settings=EncodeSettings(encoder_steps=2, refine_steps=0, feature_weight=0), force=True)
    assert len(read_codes(out)) == 6 and not list(tmp_path.glob(".*tmp*"))


def test_other_classes_or_size_are_refused_naming_both(run_dir: Path, real: LabeledImages) -> None:
    _, info = load_generator(run_dir)
    renamed = LabeledImages(real.images, real.labels, ("a", "b", "c"))
    with pytest.raises(DataError, match=r"\['a', 'b', 'c'\].*\['zero', 'one', 'two'\]"):
        check_data(renamed, info)
    bigger = LabeledImages(np.zeros((3, 16, 16, 1), np.uint8), np.arange(3), real.class_names)
    with pytest.raises(DataError, match=r"16x16x1.*8x8x1.*--size 8"):
        check_data(bigger, info)


def _cli(capsys, *args) -> tuple[int, str, str]:  # noqa: ANN001, ANN002
    """``augmentgan ARGS...`` in this process: (exit code, stdout, stderr)."""
    from augmentgan.cli.main import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_encode_command_exit_codes_and_one_line_errors(capsys, run_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    def run(*args):  # noqa: ANN002, ANN202
        return _cli(capsys, *args)

    data = run_dir.parent / "real.h5"
    out = tmp_path / "codes.h5"
    fast = ["--encoder-steps", "5", "--refine-steps", "2", "--feature-weight", "0", "--device", "cpu"]
    code, stdout, err = run("encode", run_dir, data, "--out", out, *fast, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["images"] == 76 and set(summary["per_class"]) == {"zero", "one", "two"} and (tmp_path / "codes-reconstructions.png").is_file()
    code, _, err = run("encode", run_dir, data, "--out", out, *fast)
    assert code == 5 and "--force" in err
    code, _, err = run("encode", run_dir, "builtin:digits", "--out", tmp_path / "other.h5", *fast)
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1 and "['0', '1'" in lines[0] and "['zero', 'one', 'two']" in lines[0]
    code, _, err = run("encode", run_dir, data, "--out", tmp_path / "big.h5", "--size", "16", *fast)
    assert code == 3 and "16x16x1" in err and "8x8x1" in err and not (tmp_path / "big.h5").exists()
    # an output that cannot be written is exit 5 before any encoding (was an internal error after all of it)
    (tmp_path / "afile").write_text("x")
    import augmentgan.generate.encode as encode_module

    real_encode = encode_module.encode_images
    encode_module.encode_images = lambda *a, **k: pytest.fail("encoded before the output was checked")
    try:
        code, _, err = run("encode", run_dir, data, "--out", tmp_path / "afile" / "codes.h5", *fast)
    finally:
        encode_module.encode_images = real_encode
    assert code == 5 and len(err.strip().splitlines()) == 1 and f"cannot write {tmp_path / 'afile' / 'codes.h5'}" in err, err


def test_source_names_keep_old_files_readable(tmp_path: Path) -> None:
    assert SOURCE_NAMES == ("real", "classical", "smote", "gan", "copy", "latent-smote", "pseudo")  # new names only appended
    data = LabeledImages(np.zeros((6, 4, 4, 1), np.uint8), np.arange(6) % 2, ("a", "b"), np.arange(6, dtype=np.uint8), np.full(6, -1))
    for name in ("x.h5", "x"):
        back = load(save(data, tmp_path / name))
        assert (back.source == data.source).all()


# --- the jointly trained (BiGAN) encoder ------------------------------------------------------------
def test_joint_encoder_gives_the_initial_codes_without_fitting(bigan_run_dir: Path, real: LabeledImages) -> None:
    source = read_generator(bigan_run_dir)
    G, info = source.generator()
    E = source.encoder()
    settings = EncodeSettings(encoder="joint", refine_steps=0, feature_weight=0.0, encoder_steps=10**6)  # a fit would take forever
    codes = encode_images(G, info, real[:12], source=source, settings=settings)
    x = to_train(torch.from_numpy(real.images[:12]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0), info.img_size, info.fit)
    with torch.no_grad():
        assert np.allclose(codes.codes, E(x, torch.from_numpy(real.labels[:12])).numpy(), atol=1e-5)
    assert codes.attrs["encoder"] == "joint" and json.loads(codes.attrs["settings"])["encoder"] == "joint"
    fitted = encode_images(G, info, real[:12], source=source, settings=EncodeSettings(encoder="fitted", encoder_steps=2, refine_steps=0, feature_weight=0.0))
    assert fitted.attrs["encoder"] == "fitted" and not np.allclose(fitted.codes, codes.codes)
    default = encode_images(G, info, real[:12], source=source, settings=EncodeSettings(encoder_steps=2, refine_steps=0, feature_weight=0.0))
    assert default.attrs["encoder"] == "fitted" and np.array_equal(default.codes, fitted.codes)  # a BiGAN run too is fitted unless asked (measured better)
    with pytest.raises(ConfigError, match="encoder 'bigan'"):
        EncodeSettings(encoder="bigan")


def test_encode_command_encoder_joint_and_its_one_line_error_on_a_plain_run(capsys, run_dir: Path, bigan_run_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    def run(*args):  # noqa: ANN002, ANN202
        return _cli(capsys, *args)

    data = run_dir.parent / "real.h5"
    fast = ["--refine-steps", "2", "--feature-weight", "0", "--device", "cpu"]
    out = tmp_path / "joint.h5"
    code, stdout, err = run("encode", bigan_run_dir, data, "--out", out, "--encoder", "joint", *fast, "--json")
    assert code == 0, err
    assert json.loads(stdout)["encoder"] == "joint"
    codes = read_codes(out)
    assert codes.attrs["encoder"] == "joint" and json.loads(codes.attrs["settings"])["encoder"] == "joint" and len(codes) == 76
    plain = tmp_path / "plain.h5"
    code, _, err = run("encode", run_dir, data, "--out", plain, "--encoder", "joint", *fast)
    lines = err.strip().splitlines()
    assert code == 4 and len(lines) == 1, err
    assert str(run_dir) in lines[0] and "bigan.weight=1" in lines[0] and "--encoder fitted" in lines[0]
    assert not plain.exists() and not report_path(plain).exists() and not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(ConfigError, match="bigan.weight=0"):
        read_generator(run_dir).encoder()


def test_data_without_some_of_the_runs_classes_is_encoded(run_dir: Path, real: LabeledImages, tmp_path: Path, cache_root: Path, monkeypatch) -> None:  # noqa: ANN001
    # e.g. a validation set of the rare classes only: the feature loss's classifier learns the classes DATA has
    # (it refused: "a conditional GAN cannot learn them", about a GAN that encode does not train)
    monkeypatch.setenv("AUGMENTGAN_CACHE_DIR", str(cache_root))
    two = real[real.labels != 0]
    codes = encode(run_dir, two, tmp_path / "two.h5", settings=EncodeSettings(encoder_steps=5, refine_steps=2, seed=1, classifier_steps=20), device="cpu").codes
    assert len(codes.codes) == len(two) and (codes.labels == two.labels).all() and (codes.feature_distance > 0).all()
    assert set(codes.per_class()) == {"one", "two"}
    one = real[real.labels == 2]
    with pytest.raises(DataError, match=r"^DATA has images of one class \('two'\): the feature loss needs a classifier of two or more; "
                                        r"add images of another class of the run or set --feature-weight 0$"):
        encode(run_dir, one, tmp_path / "one.h5", settings=EncodeSettings(encoder_steps=5, refine_steps=2, seed=1, classifier_steps=20), device="cpu")
    assert not (tmp_path / "one.h5").exists()
