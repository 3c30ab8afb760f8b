"""The CLI shell: version, help, error lines and exit codes."""

import subprocess
import sys

from augmentgan import __version__


def run(*args):
    return subprocess.run([sys.executable, "-m", "augmentgan", *args], capture_output=True, text=True, timeout=120)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"augmentgan {__version__}"
    r = run("--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_unknown_command_is_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2
    assert "frobnicate" in r.stderr
