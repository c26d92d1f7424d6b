"""What every command module shares: the app, the consoles, options, error handling, output.

Start-up matters here (``digest --help`` should answer at once): rich is imported when a
command first prints through a console, not before, and help is typer's plain help.
"""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from digest import __version__, pipeline
from digest.errors import DigestError
from digest.exits import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

# rich_markup_mode=None: typer's plain help, the same text as its rich panels without loading
# rich and markdown-it (a third of `digest --help`'s wall time went there).
app = typer.Typer(
    help="digest: daily newsletter digests for sectioned news sites.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
articles_app = typer.Typer(
    help="Ingested articles: import from a file, list.", no_args_is_help=True
)
subscribers_app = typer.Typer(
    help="Manage subscribers: add, remove, import, export, list.", no_args_is_help=True
)
app.add_typer(articles_app, name="articles")
app.add_typer(subscribers_app, name="subscribers")


class _LazyConsole:
    """A rich Console made on first use. Plain text (``print(text, markup=False)``, what most
    commands print) is written without it, as rich would write it (no styles; the control
    codes rich strips, stripped), so a command that prints a line or two does not pay for
    importing rich."""

    # BEL, BS, VT, FF and CR: what rich's Text leaves out of what it prints.
    _CONTROL = dict.fromkeys((7, 8, 11, 12, 13))

    def __init__(self, *, stderr: bool = False, **options: Any) -> None:
        self._stderr = stderr
        self._options = options
        self._console: Console | None = None

    def print(self, *objects: Any, markup: bool | None = None, **options: Any) -> None:
        if markup is False and not options and all(isinstance(o, str) for o in objects):
            text = " ".join(objects)
            if "\t" not in text:  # rich expands tabs by the cell widths of what precedes them
                stream = sys.stderr if self._stderr else sys.stdout
                try:
                    stream.write(text.translate(self._CONTROL) + "\n")
                    stream.flush()
                except BrokenPipeError:  # `digest ... | head`: end quietly, as rich does
                    self._rich().on_broken_pipe()
                return
        self._rich().print(*objects, markup=markup, **options)

    def _rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, **self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rich(), name)


out: Console = _LazyConsole(highlight=False, soft_wrap=True)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True, highlight=False, soft_wrap=True)  # type: ignore[assignment]
_state = {"verbose": False}
T = TypeVar("T")
_TERMINAL_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


ListOpt = Annotated[
    str | None, typer.Option("--list", "-l", help="The list (default: the only one).")
]
EveryListOpt = Annotated[
    str | None, typer.Option("--list", "-l", help="The list (default: every list).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"digest {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show details (tracebacks) on errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Settings come from DIGEST_* environment variables and .env; the newsletter's lists and
    sections from digest.toml (DIGEST_CONFIG)."""
    _state["verbose"] = verbose


@contextmanager
def errors() -> Iterator[None]:
    """Turn errors into one line on stderr and an exit code."""
    try:
        yield
    except typer.Exit:
        raise
    except DigestError as exc:
        if _state["verbose"]:
            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: the next run resumes where this one stopped", err=True)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    except Exception as exc:  # a bug: still one line, details behind --verbose
        if _state["verbose"]:
            traceback.print_exc()
        typer.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --verbose for details)",
            err=True,
        )
        raise typer.Exit(ExitCode.ERROR) from None


@contextmanager
def context() -> Iterator[pipeline.Context]:
    with errors():
        ctx = pipeline.Context.open()
        try:
            yield ctx
        finally:
            ctx.close()


def each_list(
    names: list[str | None], run: Callable[[str | None], T], codes: list[int], as_json: bool
) -> Iterator[tuple[str | None, T]]:
    """``run`` for each list a command covers, with its result. With several lists, one
    list's error is reported (a line on stderr, or its JSON line) and counted in ``codes``,
    and the others go on; a command naming one list raises it as usual."""
    for name in names:
        try:
            result = run(name)
        except DigestError as exc:
            if len(names) == 1:
                raise
            codes.append(exc.exit_code)
            list_failed(name, exc, as_json)
            continue
        yield name, result


def list_failed(name: str | None, exc: DigestError, as_json: bool) -> None:
    """One list of several could not be done: a line on stderr, or its JSON line."""
    if as_json:
        emit_json({"list": name, "status": "error", "error": str(exc), "exit_code": exc.exit_code})
    else:
        said = str(exc)  # most errors of a list name it already
        typer.echo(
            f"error: {said if said.startswith(f'list {name}') else f'list {name}: {said}'}",
            err=True,
        )


def counted(count: int, noun: str) -> str:
    """``count`` and the noun in the number it takes: "1 recipient", "5 recipients"."""
    return f"{count} {noun if count == 1 else noun + 's'}"


def emit_json(obj: object) -> None:
    # C1 controls and bidirectional overrides are written as \u escapes (the same JSON value):
    # raw, they would act on the terminal that shows the line.
    import json  # here: a command's help and its plain output need neither json nor csv

    typer.echo(
        _TERMINAL_UNSAFE.sub(
            lambda m: f"\\u{ord(m.group()):04x}", json.dumps(obj, ensure_ascii=False, default=str)
        )
    )


def print_rows(rows: list[dict], fmt: Format, columns: list[str]) -> None:
    if fmt is Format.json:
        for row in rows:
            emit_json(row)
    elif fmt is Format.csv:
        import csv

        writer = csv.DictWriter(
            sys.stdout, fieldnames=list(rows[0]) if rows else columns, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    else:
        from rich.table import Table

        table = Table(*columns, show_lines=False)
        for row in rows:
            table.add_row(
                *(
                    ""
                    if row[c] is None
                    else ";".join(row[c])
                    if isinstance(row[c], list)
                    else str(row[c])
                    for c in columns
                )
            )
        out.print(table)
        out.print(f"{len(rows)} shown")


# -- subscribers ------------------------------------------------------------------------------
