"""`augmentgan train`: the run folder, --json, --resume from the run's own config, Ctrl-C, exit codes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import yaml

from augmentgan.cli.main import main

TINY = ["--set", "model.g_ch=8", "--set", "model.d_ch=8", "--set", "model.z_dim=16", "--set", "model.embed_dim=8"]
FAST = ["--batch", "8", "--device", "cpu", "--log-every", "2", "--sample-every", "2", "--ckpt-every", "2", "--eval-every", "0"]


def run(capsys, *args):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_line_error(err, *parts):
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], lines[0]


def test_train_writes_the_run_and_resumes_from_its_own_config(capsys, tmp_path):
    out = tmp_path / "run"
    code, stdout, _ = run(
        capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "4", "--out", out, *TINY, *FAST,
        "--set", "train.real_sampling=uniform", "--seed", "7", "--json",
    )
    assert code == 0
    result = json.loads(stdout)
    assert result["step"] == 4 and result["resumed_from"] is None
    assert result["checkpoint"] == str(out / "checkpoints" / "final.pt")
    assert result["samples"] == str(out / "samples" / "step-000004.png")
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= result["metrics"].keys()
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["train"]["real_sampling"] == "uniform" and saved["train"]["seed"] == 7
    assert saved["gan"]["model"]["g_ch"] == 8 and saved["gan"]["loss"]["name"] == "bce"
    assert saved["data"]["spec"] == "builtin:digits-lt" and saved["resolved"]["img_size"] == 16

    # --resume without --preset/--set continues with the run's own configuration
    code, stdout, _ = run(capsys, "train", "builtin:digits-lt", "--out", out, "--resume", "--steps", "6", "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["step"] == 6 and result["resumed_from"] == 4


@pytest.mark.parametrize(
    "args, code, parts",
    [
        (["--preset", "nope"], 4, ["unknown GAN preset 'nope'"]),
        (["--set", "model.width=3"], 4, ["unknown key 'model.width'"]),
        (["--set", "train.real_sampling=sometimes"], 4, ["real_sampling"]),
        (["--set", "train.real_sampln=uniform"], 4, ["unknown key 'train.real_sampln'", "real_sampling"]),  # spelled as the user did
        (["--precision", "fp16"], 4, ["fp16 needs a CUDA device"]),
        (["--resume"], 6, ["config.yaml does not exist"]),
        (["--set", "train.steps=3"], 4, ["--steps and --set train.steps are both given"]),  # the --set one silently won
        (["--set", "train.log_every=3"], 4, ["--log-every and --set train.log_every are both given"]),
    ],
)
def test_bad_options_give_one_line_and_an_exit_code(capsys, tmp_path, args, code, parts):
    got, _, err = run(capsys, "train", "builtin:digits-lt", "--steps", "2", "--out", tmp_path / "run", *TINY, *FAST, *args)
    assert got == code
    assert_one_line_error(err, *parts)


def test_a_bad_choice_is_a_usage_error_as_in_the_other_commands(capsys, tmp_path):
    for args in (["--channels", "2"], ["--size", "0"]):  # convert, inspect and train read data alike: exit 2, the option named
        got, _, err = run(capsys, "train", "builtin:digits-lt", "--steps", "2", "--out", tmp_path / "run", *TINY, *FAST, *args)
        assert got == 2 and f"Invalid value for '{args[0]}'" in err, err
    assert not (tmp_path / "run").exists()


def test_a_run_folder_another_process_is_writing_is_refused(capsys, tmp_path):
    # probe: two `train` runs started together into one --out both exited 0 with their files mixed
    from filelock import FileLock

    out = tmp_path / "run"
    with FileLock(str(tmp_path / "run.lock")):  # what a training process holds (the cache's runs use the same lock)
        code, _, err = run(capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "2", "--out", out, *TINY, *FAST)
    assert code == 5 and "run folder" in err and "is being written by another augmentgan process" in err
    assert not out.exists()
    assert run(capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "2", "--out", out, *TINY, *FAST)[0] == 0  # free again


def test_existing_run_needs_force(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "2", "--out", out, *TINY, *FAST]
    assert run(capsys, *args)[0] == 0
    code, _, err = run(capsys, *args)
    assert code == 5
    assert_one_line_error(err, str(out), "--force")
    assert run(capsys, *args, "--force")[0] == 0


def test_the_run_records_its_data_so_generate_rereads_it_from_any_folder(capsys, tmp_path, monkeypatch):
    import numpy as np

    from augmentgan.gan.checkpoint import read_generator

    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "work" / "d.npz", x=rng.integers(0, 256, (24, 8, 8), dtype=np.uint8), y=np.arange(24) % 2)
    monkeypatch.chdir(tmp_path / "work")
    assert run(capsys, "train", "d.npz", "--preset", "dcgan", "--steps", "2", "--out", "run", *TINY, *FAST)[0] == 0
    assert read_generator(tmp_path / "work" / "run").data_spec == str(tmp_path / "work" / "d.npz")
    monkeypatch.chdir(tmp_path / "elsewhere")  # the memorization filter re-reads the training data the run recorded
    code, _, err = run(capsys, "generate", "../work/run", "--out", "g.h5", "--per-class", "2", "--filter", "memorization", "--device", "cpu")
    assert code == 0, err


def test_train_reads_foreign_arrays_and_skips_bad_images_as_the_readers_say(capsys, tmp_path):
    # the readers' errors told train users to pass --keys / --skip-bad, which train did not have
    import h5py
    import numpy as np
    from PIL import Image

    with h5py.File(tmp_path / "f.h5", "w") as f:
        f["imgs"] = np.random.default_rng(0).integers(0, 256, (12, 8, 8), dtype=np.uint8)
        f["lbl"] = np.arange(12) % 2
    args = ("--preset", "dcgan", "--steps", "1", "--eval-every", "0", *TINY, *FAST)
    code, _, err = run(capsys, "train", tmp_path / "f.h5", "--out", tmp_path / "r1", *args)
    assert code == 3 and "pass --keys IMAGES,LABELS" in err
    assert run(capsys, "train", tmp_path / "f.h5", "--keys", "imgs,lbl", "--out", tmp_path / "r1", *args)[0] == 0
    for c in "ab":
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8), i * 9, np.uint8)).save(tmp_path / "d" / c / f"{i}.png")
    (tmp_path / "d" / "a" / "bad.png").write_bytes(b"x")
    code, _, err = run(capsys, "train", tmp_path / "d", "--out", tmp_path / "r2", *args)
    assert code == 3 and "pass --skip-bad" in err
    code, _, err = run(capsys, "train", tmp_path / "d", "--skip-bad", "--out", tmp_path / "r2", *args)
    assert code == 0 and "bad.png" in err  # skipped with a warning


def test_an_unwritable_run_folder_is_an_output_error(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "2", "--out", tmp_path / "afile" / "run", *TINY, *FAST)
    assert code == 5  # was 1, "internal error: NotADirectoryError"
    assert_one_line_error(err, f"cannot write the run folder {tmp_path / 'afile' / 'run'}", "choose a writable folder for --out")


def test_ctrl_c_writes_a_checkpoint_and_exits_130(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "augmentgan", "train", "builtin:digits-lt", "--preset", "dcgan", "--steps", "100000",
           "--out", str(out), *TINY, "--batch", "8", "--device", "cpu", "--ckpt-every", "5", "--sample-every", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "step-000005.pt").exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = [s for s in err.splitlines() if s.startswith("error: ")][-1]
    assert "interrupted at step" in line and "--resume" in line and "Traceback" not in err
    step = int(line.split("interrupted at step ")[1].split(";")[0])
    assert (out / "checkpoints" / f"step-{step:06d}.pt").is_file()
