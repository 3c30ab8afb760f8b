"""`augmentgan recipe schema|validate|init`: the recipe file format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional

import typer

from augmentgan.cli.console import err_console, out_console


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Recipe files: print the schema, validate one, write a commented starter.", no_args_is_help=True)

    @group.command("schema")
    def schema_cmd() -> None:
        """Print the JSON Schema of a recipe."""
        from augmentgan.recipe import recipe_schema

        out_console.print_json(json.dumps(recipe_schema()))

    @group.command("validate")
    def validate_cmd(
        files: List[Path] = typer.Argument(..., help="Recipe YAML files (several: each is checked, e.g. recipes/*.yaml)."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key by its dotted path (key=value), repeatable; applied to every file."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    ) -> None:
        """Check recipes (schema, GAN preset and overrides, classical pipeline); print one resolved.

        Every file is checked, a bad one does not stop the others; the exit code is that of the
        first bad file (4 for a bad key or value). With one file the resolved recipe is printed.
        """
        from augmentgan.errors import AugmentganError
        from augmentgan.recipe import dump_recipe, load_recipe

        results: list[dict[str, Any]] = []
        first_error: Optional[AugmentganError] = None
        for file in files:
            try:
                recipe = load_recipe(file, set_ or [])
            except AugmentganError as err:
                first_error = first_error or err
                results.append({"path": str(file), "valid": False, "error": str(err), "exit_code": err.exit_code})
                # which file, where the message does not say (the checks beyond the schema); on stderr with --json too, as every error is
                err_console.print(f"error: {err}" if str(err).startswith(str(file)) else f"error: {file}: {err}", markup=False)
                continue
            results.append({"path": str(file), "valid": True, "recipe": recipe.model_dump(mode="json")})
            if not json_out:
                err_console.print(f"{file}: valid", markup=False)
                if len(files) == 1:
                    out_console.print(dump_recipe(recipe), end="", markup=False, highlight=False)
        if json_out:
            summary: dict[str, Any] = {"valid": first_error is None, "files": results}
            if len(files) == 1 and first_error is None:
                summary["recipe"] = results[0]["recipe"]
            if first_error is not None:  # the keys every command's --json error has (README "Errors"), of the first bad file
                first = next(r for r in results if not r["valid"])
                summary.update(error=first["error"], type=type(first_error).__name__, exit_code=first_error.exit_code)
            out_console.print_json(json.dumps(summary))
        if first_error is not None:
            raise typer.Exit(first_error.exit_code)

    @group.command("init")
    def init_cmd(
        path: Path = typer.Argument(Path("recipe.yaml"), help="Where to write the starter recipe."),
        force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    ) -> None:
        """Write a commented starter recipe (recipes/small-data.yaml's settings, on the built-in long-tailed digits; output expanded/<its name>)."""
        from augmentgan.recipe import write_starter

        written = write_starter(path, force=force)
        err_console.print(f"wrote {written}; run it with: augmentgan expand {written} --dry-run")

    app.add_typer(group, name="recipe")
