"""The ``fairmerge`` command: thin typer commands over the library, no logic of their own."""

from __future__ import annotations

import sys

try:  # torch, transformers and pandas take seconds to import, in which Ctrl-C can land
    import typer

    from fairmerge import __version__
    from fairmerge.cli import cache_cmd, data_cmd, evaluate_cmd, export_cmd, run_cmd, train_cmd, vector_cmd
    from fairmerge.errors import FairmergeError
    from fairmerge.paths import anchor_env_dirs
    from fairmerge.warning_log import WarningCollector
except KeyboardInterrupt:
    sys.stderr.write("interrupted; cached work is kept, rerun to resume\n")
    sys.exit(130)

INTERRUPTED = "interrupted; cached work is kept, rerun to resume"
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

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


for module in (data_cmd, evaluate_cmd, train_cmd, vector_cmd, cache_cmd, run_cmd, export_cmd):
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


def _os_error_line(exc: OSError) -> str:
    """``OSError`` as one line: what failed, on which path (no traceback)."""
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{exc.strerror or exc}: {where}" if where else str(exc.strerror or exc)


def _usage_error(exc: Exception) -> int | None:
    """Show a click/typer usage error (wrong option, bad value) as one line; its exit code, or
    None when ``exc`` is not one. Duck-typed: typer ≥ 0.20 vendors click's exception classes."""
    code = getattr(exc, "exit_code", None)
    format_message = getattr(exc, "format_message", None)
    if not isinstance(code, int) or not callable(format_message):
        return None
    if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help text
        exc.show()  # type: ignore[attr-defined]
        return code
    context = getattr(exc, "ctx", None)
    hint = f" (see {context.command_path} --help)" if context is not None else ""
    typer.echo(f"error: {' '.join(str(format_message()).split())}{hint}", err=True)
    return code


def main() -> None:
    """Console entry point.

    Bad input ends with one line ``error: …`` and exit code 2, Ctrl-C with one line and exit code
    130 (typer turns KeyboardInterrupt into ``Exit(130)``, which non-standalone mode returns).
    Python warnings are collected and each distinct one is printed once, without a source path,
    before that last line.
    """
    anchor_env_dirs()  # a relative $FAIRMERGE_DATA_DIR means the folder it names from here
    try:
        with WarningCollector():
            code = app(args=expand_multi_value(sys.argv[1:], "--seeds"), standalone_mode=False)
    except FairmergeError as exc:
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)  # one line, whatever a library said
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort as exc:  # a "no" at a confirmation prompt, or Ctrl-C while it waits
        if not isinstance(exc.__context__, KeyboardInterrupt):
            typer.echo("aborted", err=True)
            sys.exit(1)
        code = EXIT_INTERRUPTED
    except OSError as exc:  # a write or read the filesystem refused (full, read-only, gone)
        typer.echo(f"error: {_os_error_line(exc)}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:
        usage = _usage_error(exc)
        if usage is None:
            raise
        sys.exit(usage)
    if code == EXIT_INTERRUPTED:
        typer.echo(INTERRUPTED, err=True)
    if isinstance(code, int) and code:
        sys.exit(code)
