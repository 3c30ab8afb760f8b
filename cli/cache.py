"""`augmentgan cache list|clear`: what the cache of trained GANs and domain classifiers holds, and pruning it."""

from __future__ import annotations

import json
import re
import time
from typing import Optional

import typer
from rich.table import Table

from augmentgan.cli.console import out_console
from augmentgan.cli.expand import _human_bytes as _human

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` -> seconds. The unit is required: ``14`` meant as days would
    otherwise clear nearly the whole cache as 14 seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not an age: use a number with a unit, s, m, h, d or w (e.g. 7d)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="The cache of trained GAN runs and domain classifiers: list it, prune it.", no_args_is_help=True)

    @group.command("list")
    def list_cmd(json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object.")) -> None:
        """List the cached GAN runs and classifiers: size, age, complete, in use by another process."""
        from augmentgan.cache import cache_entries, cache_root

        entries = cache_entries()
        if json_out:
            out_console.print_json(json.dumps({"root": str(cache_root()), "entries": [e.to_dict() for e in entries]}))
            return
        table = Table(title=f"augmentgan cache: {cache_root()}")
        for column in ("kind", "entry", "size", "age", "complete", "in use"):
            table.add_column(column, justify="right" if column in ("size", "age") else "left")
        now = time.time()
        for e in entries:
            age = now - e.modified
            shown = f"{age / 86400:.1f} d" if age >= 86400 else f"{age / 3600:.1f} h"
            table.add_row(e.kind, e.path.name, _human(e.bytes), shown, "yes" if e.complete else "no", "yes" if e.in_use else "")
        out_console.print(table)
        out_console.print(f"{len(entries)} entries, {_human(sum(e.bytes for e in entries))}")

    @group.command("clear")
    def clear_cmd(
        older_than: Optional[str] = typer.Option(None, "--older-than", help="Only entries untouched for this long: 30m, 12h, 7d, 2w."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Remove cached entries (all, or those older than --older-than); entries in use by another process are kept."""
        from augmentgan.cache import clear_cache

        removed, skipped = clear_cache(older_than=None if older_than is None else parse_age(older_than))
        if json_out:
            out_console.print_json(json.dumps({"removed": [e.to_dict() for e in removed], "in_use": [e.to_dict() for e in skipped]}))
            return
        out_console.print(f"removed {len(removed)} entries ({_human(sum(e.bytes for e in removed))})", markup=False)
        for e in skipped:
            out_console.print(f"kept {e.path}: in use by another process", markup=False)

    app.add_typer(group, name="cache")
