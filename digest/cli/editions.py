"""`digest editions`: list and show editions, and curate a draft before it goes out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import (
    EveryListOpt,
    JsonOpt,
    ListOpt,
    app,
    context,
    emit_json,
    err,
    out,
)

editions_app = typer.Typer(
    help="Editions: list, show; curate a draft (lead, pin, drop, move, note, clear) before it "
    "is sent; rebuild.",
    no_args_is_help=True,
)
app.add_typer(editions_app, name="editions")

KeyArg = Annotated[
    str, typer.Argument(help="The edition: a date such as 2026-12-01, today, or next.")
]
ArticleArg = Annotated[int, typer.Argument(help="The article's id, as `editions show` prints.")]


@editions_app.command("list")
def editions_list(lst: EveryListOpt = None, as_json: JsonOpt = False) -> None:
    """Every edition, newest first, with the next one (a draft): state, articles, recipients,
    sent, failed, created, first and last send. With --json, one object per line."""
    with context() as ctx:
        names, now = ctx.lists_covered(lst), pipeline.utcnow()
        rows = [row for name in names for row in pipeline.list_editions(ctx, name, now)]
    if as_json:
        for row in rows:
            emit_json(row)
        return
    columns = ["key", "state", "articles", "recipients", "sent", "failed", "created"]
    columns = (["list"] if len(names) > 1 else []) + columns + ["first send", "last send"]
    cells = [
        [
            *([row["list"]] if len(names) > 1 else []),
            row["key"],
            row["state"],
            *(str(row[name]) for name in ("articles", "recipients", "sent", "failed")),
            *(_time(row[name]) for name in ("created_at", "first_sent_at", "last_sent_at")),
        ]
        for row in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(columns, *cells, strict=True)]
    for line in [columns, *cells]:  # plain columns: a key or a time is never cut
        out.print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


@editions_app.command("show")
def editions_show(key: KeyArg, lst: ListOpt = None, as_json: JsonOpt = False) -> None:
    """One edition: its sections and articles in order, each with its id, the editor's
    curation and note, and the ledger's counts once it is sent."""
    with context() as ctx:
        view = pipeline.show_edition(ctx, lst, key, pipeline.utcnow())
    _print_view(view, as_json)


@editions_app.command("rebuild")
def editions_rebuild(key: KeyArg, lst: ListOpt = None, as_json: JsonOpt = False) -> None:
    """Build a draft afresh from the current articles, digest.toml and its curation, and show
    it. Refused once the edition's sending started: a frozen edition never changes."""
    with context() as ctx:
        view = pipeline.rebuild_edition(ctx, lst, key, pipeline.utcnow())
    _print_view(view, as_json)


@editions_app.command("lead")
def editions_lead(
    key: KeyArg, article: ArticleArg, lst: ListOpt = None, as_json: JsonOpt = False
) -> None:
    """Make an article the lead of its section (it joins the edition if it was not in it)."""
    _curate(key, "lead", lst, as_json, article)


@editions_app.command("pin")
def editions_pin(
    key: KeyArg, article: ArticleArg, lst: ListOpt = None, as_json: JsonOpt = False
) -> None:
    """Keep an article in the edition, ranked first after the lead, whatever its age and the
    section's cap."""
    _curate(key, "pin", lst, as_json, article)


@editions_app.command("drop")
def editions_drop(
    key: KeyArg, article: ArticleArg, lst: ListOpt = None, as_json: JsonOpt = False
) -> None:
    """Leave an article out of the edition (the next newest takes its place)."""
    _curate(key, "drop", lst, as_json, article)


@editions_app.command("move")
def editions_move(
    key: KeyArg,
    article: ArticleArg,
    position: Annotated[int, typer.Argument(help="Its new place in its section, from 1.")],
    lst: ListOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move an article to another place within its section (1 makes it the lead)."""
    _curate(key, "move", lst, as_json, article, position)


@editions_app.command("clear")
def editions_clear(
    key: KeyArg,
    article: Annotated[
        int | None, typer.Argument(help="Only this article's choices (default: all, note too).")
    ] = None,
    lst: ListOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Undo curation: one article's choices, or every choice and the note."""
    _curate(key, "clear", lst, as_json, article)


@editions_app.command("note")
def editions_note(
    key: KeyArg,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="The introduction (- for stdin): paragraphs split by a blank line, *emphasis*, "
            "**strong**, [text](https://link).",
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the note.")] = False,
    lst: ListOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the editor's introduction, shown at the top of the HTML and the plain text."""
    if (file is None) == (not clear):
        err.print("error: give --file F (or - for stdin), or --clear", markup=False)
        raise typer.Exit(2)
    text = ""
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            err.print(f"error: cannot read the note {file}: {exc}", markup=False)
            raise typer.Exit(2) from None
    with context() as ctx:
        view = pipeline.set_note(ctx, lst, key, text, pipeline.utcnow())
    for finding in view["note_findings"]:
        err.print(f"note: {finding}", markup=False)
    _print_view(view, as_json)


def _curate(
    key: str,
    action: str,
    lst: str | None,
    as_json: bool,
    article: int | None,
    position: int | None = None,
) -> None:
    with context() as ctx:
        view = pipeline.curate(
            ctx, lst, key, action, pipeline.utcnow(), article_id=article, position=position
        )
    _print_view(view, as_json)


def _print_view(view: dict, as_json: bool) -> None:
    if as_json:
        emit_json(view)
        return
    state = view["state"]
    what = (
        "a draft: built from the current articles at every look, until its first message is queued"
        if state == "draft"
        else f"{state}, frozen {_time(view['frozen_at'])}"
    )
    out.print(f"list {view['list']}, edition {view['key']}: {what}", markup=False)
    if view["recipients"]:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(view["counts"].items()))
        out.print(f"recipients {view['recipients']}: {counts}", markup=False)
    if view["curation"]["note"]:
        out.print("note:", markup=False)
        for line in view["curation"]["note"].splitlines():
            out.print(f"  {line}", markup=False)
    if not view["sections"]:
        out.print("no articles: nothing new for this edition yet", markup=False)
    for section in view["sections"]:
        out.print(f"\n{section['title']} ({section['slug']})", markup=False)
        for place, article in enumerate(section["articles"], 1):
            marks = f"  [{', '.join(article['marks'])}]" if article["marks"] else ""
            out.print(f"  {place:>2}. {article['id']:>6}  {article['title']}{marks}", markup=False)
            for report in article["also"]:
                out.print(f"      also {report['id']:>6}  {report['url']}", markup=False)
    dropped = view["curation"]["drops"]
    if dropped:
        out.print(f"\ndropped: {', '.join(str(i) for i in dropped)}", markup=False)


def _time(value: object) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text[:16].replace("T", " ")
