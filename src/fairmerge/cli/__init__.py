"""The ``fairmerge`` command: thin typer commands over the library, no logic of their own."""

from __future__ import annotations

import sys

import typer

from fairmerge import __version__
from fairmerge.cli import cache_cmd, data_cmd, evaluate_cmd, run_cmd, train_cmd, vector_cmd
from fairmerge.errors import FairmergeError

app = typer.Typer(
    name="fairmerge",
    help="Fairness-aware task arithmetic: subgroup task vectors, merging, and group-fairness evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fairmerge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Fairness-aware task arithmetic. Run `fairmerge COMMAND --help` for each command."""


for module in (data_cmd, evaluate_cmd, train_cmd, vector_cmd, cache_cmd, run_cmd):
    module.register(app)


def expand_multi_value(args: list[str], option: str) -> list[str]:
    """Rewrite ``--seeds 0 1 2`` as ``--seeds 0 --seeds 1 --seeds 2`` (click options take one value)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        out.append(args[i])
        if args[i] == option:
            i += 1
            values = []
            while i < len(args) and args[i].lstrip("-").isdigit():
                values.append(args[i])
                i += 1
            out.pop()
            for value in values:
                out += [option, value]
            if not values:
                out.append(option)
            continue
        i += 1
    return out


def main() -> None:
    """Console entry point: bad input ends with a one-line reason and exit code 2."""
    try:
        app(args=expand_multi_value(sys.argv[1:], "--seeds"), standalone_mode=False)
    except FairmergeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code or 0)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
