"""Typer app: thin wrappers over the library. Errors become one line on stderr and an exit code."""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Optional

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import typer

from augmentgan._version import __version__
from augmentgan.cli import console
from augmentgan.errors import AugmentganError

app = typer.Typer(
    name="augmentgan",
    help="Expand small, imbalanced labeled image datasets with class-conditional GANs, classical augmentation and SMOTE.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"augmentgan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    cache_dir: Optional[str] = typer.Option(
        None, "--cache-dir", envvar="AUGMENTGAN_CACHE_DIR", show_envvar=True,
        help="Folder of the cache of trained GAN runs and domain classifiers (default: the user cache folder, see README).",
    ),
) -> None:
    console.state.debug = debug
    if cache_dir:
        os.environ["AUGMENTGAN_CACHE_DIR"] = cache_dir  # the library reads it where it caches


def _register() -> None:
    from augmentgan.cli import cache as cache_cmds
    from augmentgan.cli import data as data_cmds
    from augmentgan.cli import encode as encode_cmds
    from augmentgan.cli import evaluate as evaluate_cmds
    from augmentgan.cli import expand as expand_cmds
    from augmentgan.cli import generate as generate_cmds
    from augmentgan.cli import label as label_cmds
    from augmentgan.cli import recipe as recipe_cmds
    from augmentgan.cli import train as train_cmds

    for module in (data_cmds, train_cmds, generate_cmds, label_cmds, encode_cmds, expand_cmds, recipe_cmds, evaluate_cmds, cache_cmds):
        module.register(app)


_register()


def main(argv: Optional[list[str]] = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    console.state.debug = "--debug" in args
    console.state.json = "--json" in args
    console.state.shown = set()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = console.show_warning  # type: ignore[assignment]
        try:
            rc = app(args=args, prog_name="augmentgan", standalone_mode=False)
        except AugmentganError as err:
            console.fail(err, err.exit_code)
        except KeyboardInterrupt as err:
            console.fail(err, 130, "interrupted")
        except Exception as err:
            # Typer vendors click in recent versions: recognise its exceptions by shape, not by import.
            if type(err).__name__ == "Abort":
                console.fail(err, 130, "interrupted")
            if hasattr(err, "show") and isinstance(getattr(err, "exit_code", None), int):
                err.show()  # usage errors: click's own message with the usage line
                if console.state.json and hasattr(err, "format_message"):
                    sys.stdout.write(json.dumps({"error": err.format_message(), "type": "UsageError", "exit_code": err.exit_code}) + "\n")
                sys.exit(err.exit_code)
            console.fail(err, 1, f"internal error: {type(err).__name__}: {err} (rerun with --debug for the traceback)")
    sys.exit(rc if isinstance(rc, int) else 0)


if __name__ == "__main__":
    main()
