"""Random input thrown at the readers, the recipe loader and ``--set`` (hypothesis).

The property, for every input: the command either succeeds or fails with a documented exit code
(3 data, 4 configuration, 5 output; never 1, an internal error) and exactly one ``error:`` line;
every message on stderr is one line and nothing is a traceback; a failed ``convert`` leaves no
file under the output name (nor a temporary one beside it).

CI runs a bounded, derandomized profile (``AUGMENTGAN_FUZZ_EXAMPLES`` examples per reader, 30 by
default; a few seconds each). For a deeper search: ``AUGMENTGAN_FUZZ_EXAMPLES=1000 pytest
tests/test_fuzz.py`` (that run also varies the seed unless ``AUGMENTGAN_FUZZ_SEED`` is set).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from augmentgan.cli.main import main  # noqa: E402

EXAMPLES = int(os.environ.get("AUGMENTGAN_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 30 and "AUGMENTGAN_FUZZ_SEED" not in os.environ,  # CI: the same cases on every run
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
DOCUMENTED = {0, 3, 4, 5}  # README "Exit codes": success, bad data, bad configuration, output problem


def run_cli(*args: str) -> tuple[int, str, str]:
    """``augmentgan ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as stop:
            code = stop.code
    return int(code or 0), out.getvalue(), err.getvalue()


def check_outcome(code: int, stderr: str, *, outputs: tuple[Path, ...] = ()) -> None:
    assert code in DOCUMENTED, f"exit code {code}: {stderr}"
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == (0 if code == 0 else 1), stderr
    if code != 0:
        # every message is one line: warnings and the error, nothing in between
        assert all(line.startswith(("warning: ", "error: ")) for line in lines), stderr
        for out in outputs:
            assert not out.exists(), f"{out} written by a failed command: {stderr}"
            assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "temporary output left behind"


# --- strategies -----------------------------------------------------------------------------------
def _png(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, a real small image, or a real image truncated or with bytes flipped."""
    kind = draw(st.sampled_from(["random", "valid", "truncated", "flipped"]))
    if kind == "random":
        return draw(st.binary(max_size=300))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "I;16"]))
    channels = {"L": (), "RGB": (3,), "RGBA": (4,), "I;16": ()}[mode]
    dtype = np.uint16 if mode == "I;16" else np.uint8
    pixels = draw(hnp.arrays(dtype, (h, w, *channels), elements=st.integers(0, int(np.iinfo(dtype).max))))
    fmt = draw(st.sampled_from(["PNG", "JPEG"])) if mode in ("L", "RGB") else "PNG"
    raw = _png(pixels, fmt)
    if kind == "truncated":
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "flipped":
        data = bytearray(raw)
        for i in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=4)):
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    return raw


class_names = st.text(alphabet="abcxyz019_-. ", min_size=1, max_size=6)


@st.composite
def image_folders(draw: st.DrawFn) -> dict[str, dict[str, bytes]]:
    classes = draw(st.lists(class_names, min_size=1, max_size=3, unique_by=str.strip))
    return {
        c: draw(st.dictionaries(st.tuples(st.text("abc", min_size=1, max_size=3), st.sampled_from(["png", "jpg", "jpeg", "bmp", "webp"])).map(".".join),
                                image_bytes(), min_size=0, max_size=3))
        for c in classes
    }


_DTYPES = st.sampled_from([np.uint8, np.int64, np.int8, np.float32, np.float64, np.bool_, np.uint16])


def _arrays(max_dims: int = 5) -> st.SearchStrategy[np.ndarray]:
    shapes = hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4)
    return _DTYPES.flatmap(lambda dt: hnp.arrays(dt, shapes))


_KEYS = ["images", "labels", "class_names", "source", "parent", "x", "y", "X", "x_train", "y_train", "x_test", "y_test", "other"]


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    """Array name -> a random array, or (for names) a list of strings; sometimes the well-formed pair."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):  # a plausible start that the rest may break
        n = draw(st.integers(0, 5))
        out["images"] = draw(hnp.arrays(np.uint8, (n, draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.sampled_from([1, 3, 4])))))
        out["labels"] = draw(hnp.arrays(np.int64, (draw(st.sampled_from([n, n + 1, max(n - 1, 0)])),), elements=st.integers(-2, 5)))
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=4, unique=True)):
        out[key] = draw(st.one_of(_arrays(), st.lists(st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)), max_size=4), max_size=4)))
    return out


# --- the readers ------------------------------------------------------------------------------------
def _convert(source: Path, out: Path, extra: list[str]) -> None:
    code, _, err = run_cli("convert", str(source), str(out), *extra)
    check_outcome(code, err, outputs=(out,))
    if code == 0:
        code, _, err = run_cli("inspect", str(out), "--json")  # what convert wrote reads back
        assert code == 0, err


@FUZZ
@given(folder=image_folders(), size=st.sampled_from([None, 4]), skip_bad=st.booleans())
def test_image_folders_of_random_bytes(folder: dict, size: Any, skip_bad: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        root.mkdir()
        for cls, files in folder.items():
            (root / cls).mkdir(exist_ok=True)
            for name, raw in files.items():
                (root / cls / name).write_bytes(raw)
        extra = (["--size", str(size)] if size else []) + (["--skip-bad"] if skip_bad else [])
        _convert(root, Path(tmp) / "out.h5", extra)


def _write_h5(path: Path, layout: dict[str, Any], ours: bool) -> None:
    with h5py.File(path, "w") as f:
        if ours:
            f.attrs["format"] = "augmentgan-hdf5"
            f.attrs["format_version"] = 1
        for key, value in layout.items():
            if isinstance(value, list):
                f.create_dataset(key, data=np.array(value, dtype=object), dtype=h5py.string_dtype())
            else:
                f.create_dataset(key, data=value)


@FUZZ
@given(layout=layouts(), ours=st.booleans(), keys=st.sampled_from([None, "x,y", "images,labels,class_names", "images", "a,b,c,d", ",labels"]),
       garbage=st.one_of(st.none(), st.binary(max_size=200)))
def test_hdf5_files_of_random_layout(layout: dict, ours: bool, keys: Any, garbage: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.h5"
        if garbage is not None:
            src.write_bytes(garbage)
        else:
            _write_h5(src, layout, ours)
        _convert(src, Path(tmp) / "out.h5", ["--keys", keys] if keys else [])


@FUZZ
@given(layout=layouts(), pickled=st.booleans(), split=st.sampled_from(["train", "test", "nope"]),
       keys=st.sampled_from([None, "x,y", "images,labels", "X,y,other"]), garbage=st.one_of(st.none(), st.binary(max_size=200)))
def test_npz_files_of_random_layout(layout: dict, pickled: bool, split: str, keys: Any, garbage: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.npz"
        if garbage is not None:
            src.write_bytes(garbage)
        else:
            arrays = {k: (np.array(v, dtype=object) if pickled else np.array(v, dtype=str)) if isinstance(v, list) else v for k, v in layout.items()}
            np.savez(src, **arrays)
            if not arrays:
                zipfile.ZipFile(src, "a").close()
        _convert(src, Path(tmp) / "out.h5", ["--split", split] + (["--keys", keys] if keys else []))


# --- recipes and --set ------------------------------------------------------------------------------
BASE = {
    "seed": 0,
    "data": {"path": "builtin:digits-lt"},
    "holdout": {"fraction": 0.2},
    "gan": {"preset": "dcgan", "steps": 10, "batch": 8},
    "plan": {"target": "max", "mix": {"classical": 0.5, "smote": 0.3, "copy": 0.2}},
    "output": {"path": "never-written", "format": "h5"},
}
_SECTIONS = {
    "seed": [], "data": ["channels", "size", "split", "keys", "skip_bad"], "holdout": ["fraction"],
    "gan": ["preset", "steps", "batch", "img_size", "device", "overrides", "run", "checkpoint", "cache"],
    "generate": ["truncation", "filters", "max_tries", "ema"], "classical": ["pipeline"], "smote": ["method", "k_neighbors"],
    "plan": ["target", "mix", "max_synthetic_ratio", "undersample"], "output": ["format", "compression"], "bogus": ["x"],
}
_PATHS = [s for s, keys in _SECTIONS.items() if not keys] + [f"{s}.{k}" for s, keys in _SECTIONS.items() for k in keys if s != "data"] + [
    "gan.overrides.model.g_ch", "gan.overrides.optim.lr_g", "gan.overrides.loss.name", "plan.mix.gan", "plan.mix.smote", "plan.target.0",
]
# data values that are safe to load (a random data.path could name a huge folder; a random data.size a huge resize)
_DATA_VALUES = {"data.size": st.sampled_from([None, 0, -1, 4, 12, "x"]), "data.keys": st.sampled_from([None, "x,y", "a"]),
                "data.channels": st.sampled_from(["auto", 1, 2, 3, "rgb", None]), "data.split": st.text(max_size=4), "data.skip_bad": st.booleans()}
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["max", "auto", "none", "light", "smote", "dcgan", "sngan", "gzip", "folder", "1e9", "-1", "0.5"]),
)
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)), max_leaves=8)


def _set(tree: dict, dotted: str, value: Any) -> dict:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value
    return tree


@st.composite
def recipes(draw: st.DrawFn) -> Any:
    """The base recipe with a few keys set to random trees, or a random tree / random text."""
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "tree", "text"]))
    if kind == "tree":
        return yaml.safe_dump(draw(trees))
    if kind == "text":
        return draw(st.text(alphabet=":-[]{}#&*!|>'\"%@` \n\tabc019.,", max_size=60))
    recipe = yaml.safe_load(yaml.safe_dump(BASE))
    for path in draw(st.lists(st.sampled_from(_PATHS + list(_DATA_VALUES)), min_size=1, max_size=3)):
        _set(recipe, path, draw(_DATA_VALUES[path] if path in _DATA_VALUES else trees))
    return yaml.safe_dump(recipe)


def _safe(recipe_text: str) -> bool:
    """Keep data.path on the built-in set and gan steps small: a dry run must stay cheap whatever the rest says."""
    try:
        tree = yaml.safe_load(recipe_text)
    except yaml.YAMLError:
        return True
    data = tree.get("data") if isinstance(tree, dict) else None
    return not isinstance(data, dict) or data.get("path") in (None, "builtin:digits-lt") or not isinstance(data.get("path"), str)


@FUZZ
@given(text=recipes().filter(_safe))
def test_random_recipes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(text, encoding="utf-8")
        out = Path(tmp) / "out"
        code, _, err = run_cli("recipe", "validate", str(path))
        check_outcome(code, err)
        code, _, err = run_cli("expand", str(path), "--dry-run", "--set", f"output.path={out}")
        check_outcome(code, err, outputs=(out,))


set_keys = st.one_of(st.sampled_from(_PATHS), st.text(alphabet="abcgp.=_ ", max_size=10))
set_values = st.one_of(
    st.text(alphabet="{}[]:,'\" -.e0123456789abcnulrtufs=\\", max_size=16),
    scalars.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("...").strip()),
)
set_strings = st.one_of(st.tuples(set_keys, set_values).map("=".join), st.text(max_size=20))


@FUZZ
@given(sets=st.lists(set_strings, min_size=1, max_size=3))
def test_random_set_strings(sets: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        out = Path(tmp) / "out"
        path.write_text(yaml.safe_dump({**BASE, "output": {"path": str(out)}}), encoding="utf-8")
        args = [a for s in sets for a in ("--set", s)]
        code, _, err = run_cli("expand", str(path), "--dry-run", *args)
        check_outcome(code, err, outputs=(out,))
