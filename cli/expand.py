"""`augmentgan expand RECIPE`: run a recipe end to end (or print its plan with --dry-run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from augmentgan.cli.console import err_console, out_console
from augmentgan.progress import ProgressEvent

_SOURCES = ("gan", "classical", "smote", "copy", "latent-smote", "pseudo")


class _ProgressView:
    """One bar for the pipeline's stages, one per inner stage (train, generate...)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def __call__(self, event: ProgressEvent) -> None:
        label = f"expand: {event.info.get('name', '')}" if event.stage == "expand" else event.stage
        if event.stage not in self.tasks:
            self.tasks[event.stage] = self.progress.add_task(label, total=event.total)
        self.progress.update(self.tasks[event.stage], completed=event.done, total=event.total, description=label)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _plan_table(result: Any) -> Table:
    plan = result.plan
    title = "augmentgan expand --dry-run: plan" if result.dry_run else f"augmentgan expand: {plan.total} training samples -> {result.out}"
    table = Table(title=title)
    for column in ("class", "real", "target", *_SOURCES, "notes"):
        table.add_column(column, justify="left" if column in ("class", "notes") else "right")
    for c in plan.classes:
        real = str(c.real) if c.keep == c.real else f"{c.keep} (of {c.real})"
        table.add_row(c.name, real, str(c.target), *(str(c.add[s]) for s in _SOURCES), "; ".join(c.notes))
    table.add_row("total", str(sum(c.keep for c in plan.classes)), str(plan.total), *(str(plan.source_total(s)) for s in _SOURCES), "", style="bold")
    return table


def register(app: typer.Typer) -> None:
    @app.command("expand")
    def expand_cmd(
        recipe: Path = typer.Argument(..., help="Recipe YAML file (`augmentgan recipe init` writes a starter)."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a recipe key by its dotted path, e.g. --set data.path=DIR --set gan.steps=300; repeatable."),
        unlabeled: Optional[str] = typer.Option(None, "--unlabeled", help="Unlabeled images for a semi-supervised GAN (gan.preset ssgan): the same as --set data.unlabeled=PATH."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and feasibility checks; train, generate and write nothing."),
        force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Expand a dataset as a recipe says: holdout, GAN, classical, SMOTE, copies; balanced output."""
        if unlabeled is not None:
            set_ = [*(set_ or []), f"data.unlabeled={unlabeled}"]
        from augmentgan.pipeline import expand

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err_console, transient=True)
        with progress:
            result = expand(recipe, overrides=set_ or [], dry_run=dry_run, force=force, callback=_ProgressView(progress))
        if json_out:
            out_console.print_json(json.dumps(result.to_dict()))
            return
        out_console.print(_plan_table(result))
        held = sum(result.holdout_counts.values())
        out_console.print(f"holdout: {held} images ({', '.join(f'{k}={v}' for k, v in result.holdout_counts.items())})" if held else "holdout: none")
        for note in result.notes:
            out_console.print(f"note: {note}", markup=False)
        if result.dry_run:
            e = result.estimates
            out_console.print(f"estimated output size: {_human_bytes(e['output_bytes_uncompressed'])} uncompressed (N x H x W x C bytes)")
            out_console.print(f"estimated GAN training: {e['gan_seconds']:.0f} s ({e['gan_seconds_note']})", markup=False)
            out_console.print("dry run: nothing was trained, generated or written")
            return
        written = sorted(p.name for p in result.out.iterdir() if p not in (result.train, result.holdout)) if result.out else []
        out_console.print(f"wrote {result.train}" + (f", {result.holdout}" if result.holdout else "") + "".join(f", {n}" for n in written) + f" in {result.seconds:.1f} s")
