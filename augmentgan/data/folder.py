"""ImageFolder trees: ``root/<class>/**/*.png`` in, ``out/<class>/<source>-<index>.png`` + manifest out.

Reading follows torchvision's ImageFolder: every non-hidden subfolder of ``root`` is a class
(sorted by name), searched recursively. Hidden files and folders (names starting with ".")
and files without an image extension are ignored. When ``root/manifest.csv`` (as written by
:func:`write_folder`) lists exactly the images found, it restores the original class names,
label indices, sample order, sources and parents; otherwise every image is a real sample.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from augmentgan.data.atomic import StagedOutput, final_name, staged_output, write_failure
from augmentgan.data.images import Channels, decode_image, float_scale
from augmentgan.data.metadata import output_metadata, plain
from augmentgan.data.types import SOURCE_NAMES, LabeledImages, Source, check_batch, source_value
from augmentgan.errors import AugmentganWarning, DataError, Flag, OutputError
from augmentgan.progress import ProgressCallback, report

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("file", "label", "class", "source", "parent")
METADATA_NAME = "augmentgan.json"
CLASS_NAMES_KEY = "class_names"  # in augmentgan.json: every class in label order, those without a folder included
CHANNELS_KEY = "channels"  # in augmentgan.json: the images' channels (a 3-channel set of gray images is saved as RGB PNGs that read as gray)
EXTRA_DTYPES_KEY = "extra_dtypes"  # in augmentgan.json: {extra column: numpy dtype string, or "str"}, so the manifest's text reads back as written
RESERVED_FILES = frozenset({MANIFEST_NAME.casefold(), METADATA_NAME.casefold()})
_EMPTY_CLASS_NOTE = (
    "; augmentgan's readers keep the class numbers (augmentgan.json, manifest.csv), torchvision's ImageFolder numbers the folders it finds "
    "(use the training set's class_to_idx)"
)
FORMAT_NAME = "augmentgan-folder"
PROGRESS_EVERY = 100
"""Files between two progress reports."""


def default_workers() -> int:
    """Decoding threads: PIL releases the GIL while decoding, so a few more threads than cores."""
    return min(16, (os.cpu_count() or 1) + 2)


# --- reading -------------------------------------------------------------------------------


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _image_files(class_dir: Path) -> list[Path]:
    """The class's image files, subfolders and symlinked folders included; a folder reached twice (a symlink
    to a folder read already, or to the class folder or one above it: a loop) is read once, with a warning."""
    found = []
    top = os.path.realpath(class_dir)
    seen = {top}
    for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
        kept = []
        for d in sorted(d for d in dirnames if not _is_hidden(d)):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real in seen or top.startswith(real.rstrip(os.sep) + os.sep):
                warnings.warn(f"{Path(dirpath) / d} leads to a folder read already (a symlink loop or a second link): its images are counted once",
                              AugmentganWarning, stacklevel=2)
                continue
            seen.add(real)
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not _is_hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def scan_folder(root: Path) -> list[tuple[str, list[Path]]]:
    """[(class folder name, image files)] in torchvision order; refuses empty trees and classes."""
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder with one subfolder of images per class")
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not _is_hidden(e.name))
    if not classes:
        raise DataError(f"{root} has no class subfolders; put the images of each class in their own folder: {root}/<class>/*.png")
    for name in classes:  # a name in another encoding (an old zip, an SMB share) cannot be stored as a class name
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"class folder {os.fsencode(root / name)!r} has a name that is not UTF-8 text; rename it (e.g. convmv -f latin1 -t utf8)") from None
    tree = []
    for name in classes:
        files = _image_files(root / name)
        if not files:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise DataError(f"class folder {root / name} has no images ({exts}); add images or remove the folder")
        tree.append((name, files))
    return tree


def _read_manifest(root: Path, files: Sequence[str]) -> list[dict[str, str]] | None:
    """Manifest rows if ``root/manifest.csv`` exists and matches ``files`` (relative posix paths)."""
    path = root / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ())[: len(MANIFEST_COLUMNS)] != MANIFEST_COLUMNS:
                raise ValueError(f"columns are {reader.fieldnames}, expected {list(MANIFEST_COLUMNS)} first")
            rows = list(reader)
        if sorted(r["file"] for r in rows) != sorted(files):
            raise ValueError("it does not list exactly the images in the folder")
        labels = {}
        for r in rows:
            if r["source"] not in SOURCE_NAMES:
                raise ValueError(f"unknown source {r['source']!r} for {r['file']}")
            int(r["parent"])
            folder = r["file"].split("/", 1)[0]
            if labels.setdefault(int(r["label"]), (r["class"], folder)) != (r["class"], folder):
                raise ValueError(f"label {r['label']} has more than one class name or folder")
        return rows
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as err:
        warnings.warn(f"{path} ignored ({err}); images are read as real samples named after their folders", AugmentganWarning, stacklevel=3)
        return None


DECODE_WINDOW = 256
"""Files decoded ahead of the reader at most: bounds the decoded images held before they are used."""


def _decode_stream(
    paths: Sequence[Path], *, channels: Channels, size: int | None, workers: int, window: int | None = None,
    multi_frame: list[str] | None = None, float_scale: float | None = None,
) -> Iterator[np.ndarray | DataError]:
    """Decode in a thread pool and yield each result (an image or its DataError) in input order,
    with at most ``window`` (default :data:`DECODE_WINDOW`) files submitted ahead of the consumer.
    Files of several frames (only the first is read) are added to ``multi_frame`` when given."""

    def decode(path: Path) -> np.ndarray | DataError:
        try:
            return decode_image(path, channels=channels, size=size, multi_frame=multi_frame, float_scale=float_scale)
        except DataError as err:
            return err

    ahead = max(1, DECODE_WINDOW if window is None else int(window))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="augmentgan-load")
    pending: deque = deque()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            todo = iter(paths)
            for path in islice(todo, ahead):
                pending.append(pool.submit(decode, path))
            while pending:
                result = pending.popleft().result()
                for path in islice(todo, 1):
                    pending.append(pool.submit(decode, path))
                yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _checked_stream(
    paths: Sequence[Path], skipped: list[tuple[Path, str]], *, channels: Channels, size: int | None, skip_bad: bool, workers: int,
    callback: ProgressCallback | None, multi_frame: list[str] | None = None,
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, image) in input order, None for a skipped file (appended to ``skipped``); unreadable files
    raise unless ``skip_bad``, and without ``size`` every image must have the first one's size."""
    first: tuple[Path, np.ndarray] | None = None
    total = len(paths)
    report(callback, "load", 0, total)
    scale = float_scale(paths)
    stream = _decode_stream(paths, channels=channels, size=size, workers=workers, multi_frame=multi_frame, float_scale=scale)
    for i, result in enumerate(stream):
        if isinstance(result, DataError):
            if not skip_bad:
                raise DataError(str(result), Flag("skip_bad", before=" (or ", after=" to skip unreadable images)"))
            skipped.append((paths[i], str(result)))
            yield i, None
        else:
            if first is None:
                first = (paths[i], result)
            elif size is None and result.shape[:2] != first[1].shape[:2]:
                (h0, w0), (h1, w1) = first[1].shape[:2], result.shape[:2]
                raise DataError(
                    f"images have different sizes: {paths[i]} is {w1}x{h1} but {first[0]} is {w0}x{h0}",
                    Flag("size", "N", before="; ", after=" to center-crop and resize all images to NxN"),
                )
            yield i, result
        if (i + 1) % PROGRESS_EVERY == 0 or i + 1 == total:
            report(callback, "load", i + 1, total)


def _decode_all(
    paths: Sequence[Path], *, channels: Channels, size: int | None, skip_bad: bool, workers: int, callback: ProgressCallback | None
) -> tuple[list[np.ndarray | None], list[tuple[Path, str]]]:
    """Decode in a thread pool; results in input order (None for skipped files) and the skipped list."""
    skipped: list[tuple[Path, str]] = []
    images = [img for _, img in _checked_stream(paths, skipped, channels=channels, size=size, skip_bad=skip_bad, workers=workers, callback=callback)]
    return images, skipped


def _shown(root: Path, paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p.relative_to(root)) for p in paths[:10])
    return shown + (f" and {len(paths) - 10} more" if len(paths) > 10 else "")


def _warn_skipped(root: Path, skipped: list[tuple[Path, str]], orphans: int = 0) -> None:
    lost = (f"; {orphans} derived sample(s) whose parent was among them now have parent -1 (the other parents are renumbered to the rows kept)"
            if orphans else "")
    warnings.warn(f"skipped {len(skipped)} unreadable image(s) under {root}: {_shown(root, [p for p, _ in skipped])}{lost}", AugmentganWarning, stacklevel=3)


def _warn_multi_frame(root: Path, multi_frame: list[str]) -> None:
    paths = sorted(Path(p) for p in multi_frame)
    warnings.warn(f"{len(paths)} image file(s) under {root} hold several frames and only the first was read: {_shown(root, paths)}; "
                  "save each frame as its own image to use them all", AugmentganWarning, stacklevel=3)


def _metadata(root: Path) -> dict[str, Any]:
    """``root/augmentgan.json`` as a dict (empty when there is none, or a damaged one: nothing file-level)."""
    try:
        meta = json.loads((root / METADATA_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _recorded_class_names(meta: Mapping[str, Any]) -> tuple[str, ...] | None:
    """augmentgan.json's class names (None without a readable list)."""
    names = meta.get(CLASS_NAMES_KEY)
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return tuple(names)
    return None


def _folder_rows(root: Path, meta: Mapping[str, Any]) -> tuple[list[Path], tuple[str, ...], list[int], list[int], list[int]]:
    """(paths in sample order, class names, labels, sources, parents): from ``manifest.csv`` when it matches
    (``meta``: augmentgan.json, for the class names)."""
    tree = scan_folder(root)
    paths = [p for _, files in tree for p in files]
    rel = [p.relative_to(root).as_posix() for p in paths]
    manifest = _read_manifest(root, rel)
    if manifest is None:
        folder_label = {name: i for i, (name, _) in enumerate(tree)}
        labels = [folder_label[r.split("/", 1)[0]] for r in rel]
        return paths, tuple(name for name, _ in tree), labels, [Source.real.value] * len(paths), [-1] * len(paths)
    position = {r: i for i, r in enumerate(rel)}
    by_label = {int(r["label"]): r["class"] for r in manifest}
    names = _recorded_class_names(meta)
    if names is not None and all(0 <= k < len(names) and names[k] == name for k, name in by_label.items()):
        new_index, class_names = {k: k for k in by_label}, names  # as written: classes without a folder keep their place
    else:
        old_labels = sorted(by_label)
        new_index, class_names = {k: i for i, k in enumerate(old_labels)}, tuple(by_label[k] for k in old_labels)
    return (
        [paths[position[r["file"]]] for r in manifest],
        class_names,
        [new_index[int(r["label"])] for r in manifest],
        [source_value(r["source"]) for r in manifest],
        [int(r["parent"]) for r in manifest],
    )


def _dtype_name(values: np.ndarray) -> str:
    """How augmentgan.json records an extra column's type: "str" for text, else the numpy dtype string."""
    return "str" if values.dtype.kind in "USO" else values.dtype.str


def _typed_column(values: list[str], dtype: Any) -> np.ndarray | None:
    """A manifest column read back as the type augmentgan.json recorded (None if it cannot be)."""
    if dtype == "str":
        return np.array(values, dtype=str)
    try:
        dt = np.dtype(dtype)
        if dt.kind == "b" and set(values) <= {"True", "False"}:
            return np.array([v == "True" for v in values], dtype=dt)
        if dt.kind in "iu":
            return np.array([int(v) for v in values]).astype(dt)
        if dt.kind == "f":
            return np.array([float(v) for v in values]).astype(dt)
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def _column(values: list[str], dtype: Any = None) -> np.ndarray:
    """A manifest column as written: the type augmentgan.json recorded; without one (older folders, other
    writers) guessed: whole numbers, else numbers, else text."""
    typed = None if dtype is None else _typed_column(values, dtype)
    if typed is not None:
        return typed
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values])
        except ValueError:
            pass
    return np.array(values, dtype=str)


def read_folder_extra(root: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """What a folder written by augmentgan carries besides images, labels, sources and parents: the
    manifest's extra per-sample columns (in sample order, e.g. latent-smote's ``parent2``; none without a
    matching manifest) and ``augmentgan.json`` as a dict (empty without a readable one), as the HDF5 file's
    attributes are."""
    root = Path(root)
    rel = [p.relative_to(root).as_posix() for _, files in scan_folder(root) for p in files]
    meta = _metadata(root)
    dtypes = meta.get(EXTRA_DTYPES_KEY)
    dtypes = dtypes if isinstance(dtypes, dict) else {}
    extra: dict[str, np.ndarray] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugmentganWarning)  # the reader already said why a manifest is ignored
        manifest = _read_manifest(root, rel)
    if manifest:
        for column in (c for c in manifest[0] if c not in MANIFEST_COLUMNS):
            extra[column] = _column([r[column] for r in manifest], dtypes.get(column))
    return extra, meta


FolderIndex = tuple[tuple[int, int, int], np.ndarray, np.ndarray, np.ndarray, tuple[str, ...]]
"""(image shape (H, W, C), labels, source, parent, class names) of the readable images of a folder."""


def _read_folder(
    root: Path, *, keep_images: bool, channels: Channels, size: int | None, skip_bad: bool, workers: int | None, callback: ProgressCallback | None
) -> tuple[np.ndarray | None, FolderIndex]:
    """Decode every image of ``root`` once, in sample order, at most :data:`DECODE_WINDOW` ahead of use.

    Kept images (``keep_images``) are copied as they arrive into one preallocated array: reading
    holds one copy of the dataset plus the window, not a list of images and then their stack.
    """
    meta = _metadata(root)
    if channels == "auto" and meta.get(CHANNELS_KEY) == 3:  # written as 3 channels: RGB PNGs of gray images would read as 1
        channels = 3
    paths, names, labels, sources, parents = _folder_rows(root, meta)
    skipped: list[tuple[Path, str]] = []
    multi_frame: list[str] = []
    keep: list[int] = []
    images: np.ndarray | None = None
    shape: tuple[int, ...] = ()
    rows = _checked_stream(
        paths, skipped, channels=channels, size=size, skip_bad=skip_bad,
        workers=default_workers() if workers is None else workers, callback=callback, multi_frame=multi_frame,
    )
    for i, img in rows:
        if img is None:
            continue
        if not shape:
            shape = img.shape
            images = np.empty((len(paths), *shape), np.uint8) if keep_images else None
        elif img.shape[-1] != shape[-1]:  # auto: some colour image, so all become RGB
            if img.shape[-1] == 1:
                img = np.repeat(img, 3, axis=-1)
            else:
                shape = img.shape
                images = None if images is None else np.repeat(images, 3, axis=-1)
        if images is not None:
            images[len(keep)] = img
        keep.append(i)
    parent = np.asarray([parents[i] for i in keep], np.int64)
    if skipped:  # parents index rows: renumber them to the rows kept, -1 where the parent row itself was skipped
        row = np.full(len(paths), -1, np.int64)
        row[keep] = np.arange(len(keep))
        inside = (parent >= 0) & (parent < len(paths))
        moved = row[np.where(inside, parent, 0)]  # each parent's new row (-1: skipped); rows without a parent keep theirs
        orphans = int((inside & (moved < 0)).sum())
        parent = np.where(inside, moved, parent)
        _warn_skipped(root, skipped, orphans)
    if multi_frame:
        _warn_multi_frame(root, multi_frame)
    kept_labels = np.asarray([labels[i] for i in keep], np.int64)
    counts = np.bincount(kept_labels, minlength=len(names))
    had = np.bincount(np.asarray(labels, np.int64), minlength=len(names))  # a class augmentgan.json names without a folder has none
    if ((counts == 0) & (had > 0)).any():
        empty = names[int(np.flatnonzero((counts == 0) & (had > 0))[0])]
        raise DataError(f"class {empty!r} under {root} has no readable images left; fix its images or remove the folder")
    if images is not None and len(keep) < len(images):
        images = images[: len(keep)]
    source = np.asarray([sources[i] for i in keep], np.uint8)
    return images, (tuple(shape), kept_labels, source, parent, names)  # type: ignore[return-value]


def read_folder(
    root: str | os.PathLike,
    *,
    channels: Channels = "auto",
    size: int | None = None,
    skip_bad: bool = False,
    workers: int | None = None,
    callback: ProgressCallback | None = None,
) -> LabeledImages:
    """Read an ImageFolder tree (see the module doc and :mod:`augmentgan.data.images` for conversions).

    ``channels="auto"`` gives 1 channel when every image is grayscale, else 3. Without ``size``
    all images must share one size. Unreadable images raise :class:`DataError`, or with
    ``skip_bad`` are left out with one :class:`AugmentganWarning` listing them.
    Progress is reported as stage ``"load"`` every :data:`PROGRESS_EVERY` files.
    """
    images, (_, labels, source, parent, names) = _read_folder(
        Path(root), keep_images=True, channels=channels, size=size, skip_bad=skip_bad, workers=workers, callback=callback
    )
    return LabeledImages(images, labels, names, source, parent)  # type: ignore[arg-type]


def read_folder_index(root: str | os.PathLike, **options: Any) -> FolderIndex:
    """What :func:`read_folder` (same keyword options) would return, without its images: every image is
    decoded and checked as there, then dropped, so memory stays flat whatever the folder's size."""
    options.setdefault("channels", "auto")
    for name in ("size", "workers", "callback"):
        options.setdefault(name, None)
    _, index = _read_folder(Path(root), keep_images=False, skip_bad=bool(options.pop("skip_bad", False)), **options)
    return index


# --- writing -------------------------------------------------------------------------------

_UNSAFE_CHARS = re.compile(r'[<>:"|?*\x01-\x1f\x7f]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_dirname(name: str) -> str:
    """A class name as a portable folder name; names that could escape the folder are refused.

    Refused: empty, ``.``, ``..``, or containing ``/``, ``\\`` or NUL. Replaced by ``_``: the
    characters ``<>:"|?*`` and control characters, a leading ``.`` (hidden folder) and trailing
    dots or spaces (Windows). Windows device names (CON, NUL, COM1...) get a ``_`` suffix. The folder's own files
    (``manifest.csv``, ``augmentgan.json``, in any case) are refused.
    """
    if name in ("", ".", "..") or any(c in name for c in "/\\\x00"):
        raise OutputError(
            f"class name {name!r} cannot be a folder name (empty, '.', '..', or contains '/', '\\' or NUL, "
            "so it could escape the output folder); rename the class"
        )
    safe = _UNSAFE_CHARS.sub("_", name)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    stripped = safe.rstrip(". ")
    safe = stripped + "_" * (len(safe) - len(stripped))
    if safe.split(".", 1)[0].upper() in _WINDOWS_RESERVED:
        safe += "_"
    if len(safe.encode("utf-8")) > 255:
        raise OutputError(f"class name {name[:40]!r}... is longer than 255 bytes, too long for a folder name; shorten it")
    if safe.casefold() in RESERVED_FILES:
        raise OutputError(f"class name {name!r} cannot be a folder name: it clashes with the {safe.casefold()} file written beside the class folders; rename the class")
    return safe


def class_dirnames(class_names: Sequence[str]) -> list[str]:
    """Folder names for every class; two classes that would share a folder are refused."""
    dirs = [safe_dirname(n) for n in class_names]
    seen: dict[str, str] = {}
    for name, d in zip(class_names, dirs):
        other = seen.setdefault(d.casefold(), name)
        if other != name:
            raise OutputError(f"class names {other!r} and {name!r} map to the same folder name {d!r} (case-insensitive); rename one of them")
    return dirs


def _metadata_json(
    class_names: Sequence[str], seed: int | None, recipe_text: str | None, extra_attrs: Mapping[str, Any] | None,
    channels: int | None = None, extra: Mapping[str, np.ndarray] | None = None,
) -> str:
    """augmentgan.json: the HDF5 file's attributes, every class name in label order (a class without
    samples has no folder, and the reader keeps the other classes' numbers by it), the images' channels
    and the extra columns' types (which the manifest's text does not keep)."""
    meta = {**output_metadata(FORMAT_NAME, seed=seed, recipe_text=recipe_text, extra_attrs=extra_attrs), CLASS_NAMES_KEY: list(class_names)}
    if channels is not None:
        meta[CHANNELS_KEY] = int(channels)
    if extra:
        meta[EXTRA_DTYPES_KEY] = {name: _dtype_name(values) for name, values in extra.items()}
    return json.dumps(meta, indent=2, ensure_ascii=False)


def write_folder(
    data: LabeledImages,
    out: str | os.PathLike,
    *,
    force: bool = False,
    seed: int | None = None,
    recipe_text: str | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    workers: int | None = None,
    callback: ProgressCallback | None = None,
) -> Path:
    """Write ``out/<class>/<source>-<index>.png`` (index = position in ``data``, zero-padded),
    ``out/manifest.csv`` (file, label, class, source, parent, then one column per ``extra``
    per-sample array) and ``out/augmentgan.json`` (the same metadata as the HDF5 attributes).
    PNG is lossless; 1-channel images are saved as 8-bit gray. Classes with no samples get no
    folder (torchvision's ImageFolder refuses empty class folders) and a warning.
    Written atomically; see :mod:`augmentgan.data.atomic`.
    """
    dirs = class_dirnames(data.class_names)
    extra = {str(k): np.asarray(v) for k, v in (extra or {}).items()}
    for name, values in extra.items():
        if name in MANIFEST_COLUMNS or values.shape != (len(data),):
            raise OutputError(f"extra column {name!r} must be a new column name with one value per sample ({len(data)},), got shape {values.shape}")
    try:
        meta = _metadata_json(data.class_names, seed, recipe_text, extra_attrs, data.image_shape[-1], extra)
    except TypeError as err:
        raise OutputError(f"extra attributes cannot be stored as JSON ({err}); use strings, numbers or lists of them") from None
    n = len(data)
    width = max(5, len(str(max(n - 1, 0))))
    files = [
        f"{dirs[label]}/{SOURCE_NAMES[src]}-{i:0{width}d}.png"
        for i, (label, src) in enumerate(zip(data.labels.tolist(), data.source.tolist()))
    ]
    counts = data.class_counts()
    empty = [data.class_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        warnings.warn(f"classes {empty} have no samples and get no folder in {final_name(out)}{_EMPTY_CLASS_NOTE}", AugmentganWarning, stacklevel=2)
    with staged_output(out, force=force) as tmp:
        tmp.mkdir()
        for i in np.flatnonzero(counts):
            (tmp / dirs[i]).mkdir()

        def save(i: int) -> None:
            img = data.images[i]
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp / files[i], format="PNG")

        report(callback, "write", 0, n)
        with ThreadPoolExecutor(max_workers=default_workers() if workers is None else max(1, workers)) as pool:
            for k, _ in enumerate(pool.map(save, range(n))):
                if (k + 1) % PROGRESS_EVERY == 0 or k + 1 == n:
                    report(callback, "write", k + 1, n)
        with open(tmp / MANIFEST_NAME, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(MANIFEST_COLUMNS + tuple(extra))
            for i in range(n):
                label = int(data.labels[i])
                row = [files[i], label, data.class_names[label], SOURCE_NAMES[data.source[i]], int(data.parent[i])]
                writer.writerow(row + [plain(v[i]) for v in extra.values()])
        (tmp / METADATA_NAME).write_text(meta + "\n", encoding="utf-8")
    return Path(out)


class FolderWriter:
    """Stream samples into the layout of :func:`write_folder` with flat memory.

    ``with FolderWriter(out, class_names=...) as w: w.append(images, labels, source, parent, extra)``.
    Files are numbered in append order (``total``, when known, sets the zero padding as
    :func:`write_folder` does); ``extra_columns`` names the per-sample manifest columns every
    :meth:`append` passes in ``extra``. The tree is built under a temporary name and renamed into
    place by :meth:`close` (a clean ``with`` exit); any exception inside the block deletes it.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        class_names: Sequence[str],
        force: bool = False,
        seed: int | None = None,
        recipe_text: str | None = None,
        extra_attrs: Mapping[str, Any] | None = None,
        extra_columns: Sequence[str] = (),
        total: int | None = None,
        workers: int | None = None,
    ) -> None:
        self.class_names = tuple(str(c) for c in class_names)
        self._dirs = class_dirnames(self.class_names)
        self._meta_args = (self.class_names, seed, recipe_text, extra_attrs)
        self._extra_seen: dict[str, np.ndarray] = {}  # the first batch's extra arrays: their dtypes go to augmentgan.json
        try:
            self._meta = _metadata_json(*self._meta_args)
        except TypeError as err:
            raise OutputError(f"extra attributes cannot be stored as JSON ({err}); use strings, numbers or lists of them") from None
        self._extra = tuple(str(c) for c in extra_columns)
        if set(self._extra) & set(MANIFEST_COLUMNS) or len(set(self._extra)) != len(self._extra):
            raise OutputError(f"extra columns {list(self._extra)} must be unique and differ from {list(MANIFEST_COLUMNS)}")
        self._width = max(5, len(str(max((total or 0) - 1, 0))))
        self._counts = np.zeros(len(self.class_names), np.int64)
        self._shape: tuple[int, ...] | None = None
        self.count = 0
        self._staged = StagedOutput(out, force=force)
        self.path = self._staged.path
        self._manifest = None
        self._pool = None
        try:
            self._staged.tmp.mkdir()
            self._manifest = open(self._staged.tmp / MANIFEST_NAME, "w", newline="", encoding="utf-8")
            self._csv = csv.writer(self._manifest)
            self._csv.writerow(MANIFEST_COLUMNS + self._extra)
            self._pool = ThreadPoolExecutor(max_workers=default_workers() if workers is None else max(1, workers))
        except OSError as err:
            self.abort()
            raise write_failure(self.path, err) from None
        except BaseException:
            self.abort()
            raise

    def append(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        source: np.ndarray | None = None,
        parent: np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Append a batch: images (B, H, W, C) uint8, labels (B,), optional source/parent/extra."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3) or (self._shape is not None and images.shape[1:] != self._shape):
            want = f"(B, {', '.join(map(str, self._shape))})" if self._shape else "(B, H, W, C) with C in {1, 3}"
            raise DataError(f"append expects uint8 images of shape {want}, got {images.dtype} {images.shape}")
        self._shape = images.shape[1:]
        b = images.shape[0]
        labels, source, parent, extra = check_batch(
            b, labels, source, parent, extra, num_classes=len(self.class_names), extra_names=self._extra
        )
        tmp = self._staged.tmp
        for k in np.unique(labels):
            if self._counts[k] == 0:
                (tmp / self._dirs[k]).mkdir(exist_ok=True)
        files = [
            f"{self._dirs[label]}/{SOURCE_NAMES[src]}-{self.count + i:0{self._width}d}.png"
            for i, (label, src) in enumerate(zip(labels.tolist(), source.tolist()))
        ]

        def save(i: int) -> None:
            img = images[i]
            Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp / files[i], format="PNG")

        list(self._pool.map(save, range(b)))  # type: ignore[union-attr]
        for i in range(b):
            label = int(labels[i])
            row = [files[i], label, self.class_names[label], SOURCE_NAMES[source[i]], int(parent[i])]
            self._csv.writerow(row + [plain(extra[name][i]) for name in self._extra])
        self._counts += np.bincount(labels.astype(np.int64), minlength=len(self.class_names))
        if not self._extra_seen:
            self._extra_seen = {name: extra[name][:0] for name in self._extra}
        self.count += b

    def close(self) -> Path:
        """Finish the manifest and metadata and rename the tree into place; returns the final path."""
        empty = [self.class_names[i] for i in np.flatnonzero(self._counts == 0)]
        if empty:
            warnings.warn(f"classes {empty} have no samples and get no folder in {final_name(self.path)}{_EMPTY_CLASS_NOTE}", AugmentganWarning, stacklevel=2)
        try:
            self._manifest.close()  # type: ignore[union-attr]
            channels = None if self._shape is None else self._shape[-1]
            meta = _metadata_json(*self._meta_args, channels, self._extra_seen) if self.count else self._meta
            (self._staged.tmp / METADATA_NAME).write_text(meta + "\n", encoding="utf-8")
            self._pool.shutdown(wait=True)  # type: ignore[union-attr]
        except BaseException:
            self.abort()
            raise
        return self._staged.commit()

    def abort(self) -> None:
        """Delete the temporary tree; nothing appears under the final name."""
        if self._manifest is not None and not self._manifest.closed:
            self._manifest.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._staged.abort()

    def __enter__(self) -> "FolderWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            if exc_type is None:
                self.close()
                return
        except OSError as err:  # close aborted already
            exc = err
        self.abort()
        if isinstance(exc, OSError):  # a full disk or a vanished folder: say which output, not a traceback
            raise write_failure(self.path, exc) from None
