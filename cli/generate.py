"""`augmentgan generate`: per-class samples from a trained GAN, truncated and filtered, to HDF5 or a folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from augmentgan.cli.console import err_console, out_console
from augmentgan.cli.data import CompressionChoice, FormatChoice
from augmentgan.errors import ConfigError
from augmentgan.progress import ProgressEvent

_FILTER_HELP = (
    "Quality filter NAME[:KEY=VALUE,...], repeatable: confidence:p=0.5 (classifier probability of the class), "
    "memorization:q=0.01 (reject near-copies of training images), dedup:r=0.1 or dedup:d=DIST (reject near-duplicates of kept samples), "
    "discriminator:keep=0.8 (top fraction by D score) or discriminator:percentile=95 (rejection sampling, bce runs), "
    "harmful:k=5 (reject samples the real data's classifier puts in another class), "
    "informative:keep=0.5 (over-generate 1/keep x, keep the in-class samples the classifier is least sure of)."
)


class _ProgressView:
    """Library progress events as rich progress bars on stderr, one per stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, event: ProgressEvent) -> None:
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(event.stage, total=event.total)
        self.progress.update(self.tasks[event.stage], completed=event.done, total=event.total)


def _load(spec: str, size: Optional[int], channels: str):  # noqa: ANN202 - LabeledImages
    from augmentgan.data import load

    if channels not in ("auto", "1", "3"):
        raise ConfigError(f"--channels {channels!r}: use auto, 1 or 3")
    from augmentgan.cli.data import reader_error
    from augmentgan.errors import DataError

    try:
        return load(spec, channels=channels if channels == "auto" else int(channels), size=size)
    except DataError as err:  # generate reads --real / --balance-to with --size and --channels only
        raise reader_error(err, spec, "", frozenset({"size", "channels"})) from None


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate_cmd(
        run: str = typer.Argument(..., help="Run folder of `augmentgan train` (or one of its .pt checkpoints)."),
        out: Path = typer.Option(..., "--out", help="Output: FILE.h5 or a folder (ImageFolder tree)."),
        per_class: Optional[int] = typer.Option(None, "--per-class", help="Samples for every class."),
        counts: Optional[List[str]] = typer.Option(None, "--counts", help="Samples per class: CLASS=N,CLASS=N (names or indices; others get 0); repeatable, the classes of every one together."),
        balance_to: Optional[str] = typer.Option(None, "--balance-to", help="Dataset to balance: each class gets (largest class count - its count)."),
        truncation: Optional[str] = typer.Option(None, "--truncation", help="Truncation threshold T (0.5, 1.0, 2.0...), 'auto' (chosen per class), or CLASS=T,... (default: none)."),
        filter_: Optional[List[str]] = typer.Option(None, "--filter", help=_FILTER_HELP),
        format_: Optional[FormatChoice] = typer.Option(None, "--format", help="h5 or folder (default: from the --out suffix: .h5/.hdf5 is h5)."),
        batch: int = typer.Option(512, "--batch", help="Samples per write (memory stays at about this many images)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the latents and of every random decision."),
        checkpoint: str = typer.Option("auto", "--checkpoint", help="auto (best when the run kept a best.pt, else final), best, final, last, a step number, or a .pt file."),
        real: Optional[str] = typer.Option(None, "--real", help="The GAN's training data, for confidence/memorization/dedup filters and --truncation auto (default: the data recorded in the run)."),
        size: Optional[int] = typer.Option(None, "--size", help="Load --real / --balance-to resized to SIZE x SIZE, as for training."),
        channels: str = typer.Option("auto", "--channels", help="Load --real / --balance-to with auto, 1 or 3 channels, as for training."),
        max_tries: int = typer.Option(10, "--max-tries", help="Give up on a class after this many candidates per requested sample."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
        no_ema: bool = typer.Option(False, "--no-ema", help="Sample the raw generator instead of its EMA copy."),
        no_grids: bool = typer.Option(False, "--no-grids", help="Do not write the per-class PNG grids (OUT-grids/)."),
        compression: CompressionChoice = typer.Option(CompressionChoice.gzip, "--compression", help="HDF5 compression: gzip, lzf or none."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output (and its grids)."),
        json_out: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    ) -> None:
        """Generate labeled samples from a trained GAN into an HDF5 file or an ImageFolder tree."""
        from augmentgan.data.atomic import check_not_over
        from augmentgan.generate import generate

        check_not_over(out, [run, real, balance_to])  # before reading the data
        real_data = _load(real, size, channels) if real is not None else None
        balance = _load(balance_to, size, channels) if balance_to is not None else None
        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=err_console, transient=False,
        )
        with progress:
            result = generate(
                run, out, counts=",".join(counts) if counts else None, per_class=per_class, balance_to=balance, truncation=truncation,
                filters=list(filter_ or []), format=None if format_ is None else format_.value, batch=batch, seed=seed, checkpoint=checkpoint, ema=not no_ema,
                real=real_data, max_tries=max_tries, device=device, force=force, grids=not no_grids,
                compression=compression.value, callback=_ProgressView(progress),
            )
        if json_out:
            out_console.print_json(json.dumps(result.to_dict()))
            return
        names = [f["name"] for f in result.filters]
        table = Table(title=f"augmentgan generate: {result.kept} samples -> {result.out}")
        for column in ("class", "requested", "kept", "candidates", *(f"rejected: {n}" for n in names), "truncation"):
            table.add_column(column, justify="left" if column == "class" else "right")
        for c in result.classes:
            t = "none" if c.truncation is None else f"{c.truncation:g}"
            table.add_row(c.name, str(c.requested), str(c.kept), str(c.candidates), *(str(c.rejected[n]) for n in names), t)
        out_console.print(table)
        if "memorization" in names:
            out_console.print(f"near-copies of training images rejected: {sum(c.near_copies or 0 for c in result.classes)}")
        out_console.print(f"checkpoint {result.checkpoint} (step {result.step}, {'EMA' if result.ema else 'raw'} generator, sha256 {result.checkpoint_sha256[:12]})")
        if result.grids is not None:
            out_console.print(f"grids: {result.grids}")
