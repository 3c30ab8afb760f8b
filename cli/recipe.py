"""`augmentgan recipe schema|validate|init`: the recipe file format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

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
        file: Path = typer.Argument(..., help="Recipe YAML file."),
        set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a key by its dotted path (key=value), repeatable."),
        json_out: bool = typer.Option(False, "--json", help="Print the resolved recipe as JSON."),
    ) -> None:
        """Check a recipe (schema, GAN preset and overrides, classical pipeline); print it resolved."""
        from augmentgan.recipe import check_recipe, dump_recipe, load_recipe

        recipe = check_recipe(load_recipe(file, set_ or []))
        if json_out:
            out_console.print_json(json.dumps({"valid": True, "recipe": recipe.model_dump(mode="json")}))
            return
        err_console.print(f"{file}: valid")
        out_console.print(dump_recipe(recipe), end="", markup=False, highlight=False)

    @group.command("init")
    def init_cmd(
        path: Path = typer.Argument(Path("recipe.yaml"), help="Where to write the starter recipe."),
        force: bool = typer.Option(False, "--force", help="Replace an existing file."),
    ) -> None:
        """Write a commented starter recipe (the quick start on the built-in long-tailed digits)."""
        from augmentgan.recipe import write_starter

        written = write_starter(path, force=force)
        err_console.print(f"wrote {written}; run it with: augmentgan expand {written} --dry-run")

    app.add_typer(group, name="recipe")
