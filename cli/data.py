"""Data commands: inspect, convert."""

from __future__ import annotations

import enum
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from augmentgan.cli import console
from augmentgan.data import describe, load, save
from augmentgan.data.atomic import check_output
from augmentgan.data.io import output_format
from augmentgan.errors import ConfigError, Flag, command_terms, flag_name, in_terms
from augmentgan.progress import ProgressCallback, ProgressEvent

PROGRESS_MIN_TOTAL = 200
"""Show a progress bar only for folders with at least this many images."""

_DATA_HELP = "A folder (root/<class>/*.png), an .h5/.hdf5 or .npz file, or builtin:digits / builtin:digits-lt."


class ChannelsChoice(str, enum.Enum):
    auto = "auto"
    one = "1"
    three = "3"


class FormatChoice(str, enum.Enum):
    h5 = "h5"
    folder = "folder"


class CompressionChoice(str, enum.Enum):
    gzip = "gzip"
    lzf = "lzf"
    none = "none"


_channels_opt = typer.Option(ChannelsChoice.auto, "--channels", help="auto: 1 if every image is grayscale (folders; one augmentgan wrote: as it records) or as stored (arrays).")
_size_opt = typer.Option(None, "--size", min=1, help="Center-crop to a square and resize to SIZE x SIZE (Lanczos).")
_keys_opt = typer.Option(None, "--keys", help="HDF5/NPZ dataset names: IMAGES,LABELS[,CLASS_NAMES].")
_split_opt = typer.Option("train", "--split", help="NPZ split: reads x_<split>/y_<split> style arrays.")
_skip_bad_opt = typer.Option(False, "--skip-bad", help="Skip unreadable images with a warning instead of failing.")
_json_opt = typer.Option(False, "--json", help="Print one JSON object on stdout.")


@contextmanager
def progress_callback() -> Iterator[Optional[ProgressCallback]]:
    """A rich progress bar on stderr (terminals only) fed by library progress events."""
    if not console.err_console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console.err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def callback(event: ProgressEvent) -> None:
            if event.total is None or event.total < PROGRESS_MIN_TOTAL:
                return
            if event.stage not in tasks:
                tasks[event.stage] = bar.add_task(event.stage, total=event.total)
            bar.update(tasks[event.stage], completed=event.done)

        yield callback


def inspect(
    data: str = typer.Argument(..., help=_DATA_HELP),
    json_out: bool = _json_opt,
    channels: ChannelsChoice = _channels_opt,
    size: Optional[int] = _size_opt,
    keys: Optional[str] = _keys_opt,
    split: str = _split_opt,
    skip_bad: bool = _skip_bad_opt,
) -> None:
    """Show image size, channels, counts per class and source, the imbalance ratio and small-class warnings."""
    with progress_callback() as callback:
        summary = describe(data, channels=channels.value, size=size, keys=keys, split=split, skip_bad=skip_bad, callback=callback)
    for line in summary["warnings"]:
        console.warn(line)
    if json_out:
        typer.echo(json.dumps({"data": data, **summary}))
        return
    ratio = summary["imbalance_ratio"]
    title = (
        f"{data}: {summary['count']} images, {summary['height']}x{summary['width']}, {summary['channels']} channel(s), "
        f"{summary['num_classes']} classes, imbalance ratio {'n/a' if ratio is None else f'{ratio:.2f}'}"
    )
    sources = [s for s, n in summary["by_source"].items() if n > 0]
    typer.echo(title)
    table = Table()
    table.add_column("#", justify="right")
    table.add_column("class")
    table.add_column("count", justify="right")
    table.add_column("share", justify="right")
    for s in sources if len(sources) > 1 else []:
        table.add_column(s, justify="right")
    for cl in summary["classes"]:
        share = cl["count"] / summary["count"] if summary["count"] else 0.0
        extra = [str(cl["by_source"][s]) for s in sources] if len(sources) > 1 else []
        table.add_row(str(cl["index"]), Text(cl["name"]), str(cl["count"]), f"{share:.1%}", *extra)
    console.out_console.print(table)


def _carried(src: str, rows: int) -> dict:
    """``save`` keywords for what an augmentgan output carries besides images, labels, sources and parents:
    its extra per-sample data (latent-smote's second parents, pseudo-labels' confidences), its seed, recipe and
    other file attributes, so that convert passes them on. Nothing for other inputs; no column whose length
    no longer matches the rows (skipped images)."""
    from augmentgan.data.folder import read_folder_extra
    from augmentgan.data.hdf5 import read_hdf5_attrs, read_hdf5_extra
    from augmentgan.data.metadata import RESERVED_KEYS

    path = Path(src)
    if src.startswith("builtin:") or not path.exists():
        return {}
    if path.is_dir():
        extra, meta = read_folder_extra(path)
    elif path.suffix.lower() in (".h5", ".hdf5"):
        meta = read_hdf5_attrs(path)
        if "augmentgan_version" not in meta:  # a foreign file: its attributes are not ours to copy
            return {}
        extra = read_hdf5_extra(path)
    else:
        return {}
    extra = {k: v for k, v in extra.items() if len(v) == rows}
    attrs = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    return {"extra": extra or None, "extra_attrs": attrs or None, "seed": meta.get("seed"), "recipe_text": meta.get("recipe")}


_CONVERT_VALUES = {"channels": "C", "split": "SPLIT"}  # a switch's placeholder where convert needs a value


def reader_error(err: Exception, spec: str, what: str, have: frozenset[str] = frozenset(), spelled: Optional[Mapping[str, str]] = None) -> Exception:
    """A reader's error for a command with some of the reader options only: the hints name the command's
    flags for the options in ``have`` (``spelled`` maps an option to the command's own flag for it, e.g.
    split -> --real-split), and `augmentgan convert` with the option (convert has them all) for the
    others; ``what`` names the argument."""

    def terms(flag: Flag) -> str:
        if spelled and flag.option in spelled:
            return f"pass {spelled[flag.option]} {flag.value}".rstrip()
        if flag.option in have:
            return command_terms(flag)
        value = flag.value or _CONVERT_VALUES.get(flag.option, "")
        return f"convert it first: augmentgan convert {spec} OUT.h5 {flag_name(Flag(flag.option, value))}"

    return in_terms(err, terms, f"{what}: " if what else "")


def convert(
    src: str = typer.Argument(..., metavar="IN", help=_DATA_HELP),
    out: Path = typer.Argument(..., metavar="OUT", help="Output: an .h5/.hdf5 file or a folder."),
    format: Optional[FormatChoice] = typer.Option(None, "--format", help="Output format (default: h5 for .h5/.hdf5, else folder)."),
    size: Optional[int] = _size_opt,
    channels: ChannelsChoice = _channels_opt,
    keys: Optional[str] = _keys_opt,
    split: str = _split_opt,
    skip_bad: bool = _skip_bad_opt,
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    compression: Optional[CompressionChoice] = typer.Option(None, "--compression", help="HDF5 compression (default: gzip); HDF5 output only."),
    json_out: bool = _json_opt,
) -> None:
    """Convert between folder, HDF5, NPZ and built-in data (folder <-> HDF5 is lossless)."""
    fmt = output_format(out, None if format is None else format.value)
    if compression is not None and fmt != "h5":
        raise ConfigError(f"--compression applies to HDF5 output, and OUT {out} is written as a folder of PNGs; drop it, or write an .h5 file")
    check_output(out, force=force, inputs=[src])
    with progress_callback() as callback:
        data = load(src, channels=channels.value, size=size, keys=keys, split=split, skip_bad=skip_bad, callback=callback)
        path = save(data, out, format=fmt, force=force, compression="gzip" if compression is None else compression.value,
                    callback=callback, **_carried(src, len(data)))
    h, w, c = data.image_shape
    result = {"input": src, "output": str(path), "format": fmt, "count": len(data), "num_classes": data.num_classes, "height": h, "width": w, "channels": c}
    if json_out:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"wrote {len(data)} images ({data.num_classes} classes, {h}x{w}x{c}) to {path} ({fmt})")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("convert")(convert)
