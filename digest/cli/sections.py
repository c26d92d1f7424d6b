"""`digest sections`: the sections, who chose them, and moving readers when one is renamed."""

from __future__ import annotations

from typing import Annotated

import typer

from digest import pipeline
from digest.cli._app import Format, app, context, emit_json, out, print_rows

sections_app = typer.Typer(
    help="Sections: list them; rename one (its readers and articles follow).",
    no_args_is_help=True,
)
app.add_typer(sections_app, name="sections")


@sections_app.command("list")
def sections_list(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")] = (
        Format.table
    ),
) -> None:
    """The sections of digest.toml (then any it no longer has that readers or articles still
    hold): slug, title, the lists carrying it, subscribers who chose it, stored articles."""
    with context() as ctx:
        rows = [row.as_dict() for row in pipeline.list_sections(ctx)]
    columns = ["slug", "title", "lists", "subscribers", "articles"]
    if fmt is not Format.json:
        rows = [
            {
                **{c: row[c] for c in columns},
                "lists": ";".join(row["lists"])
                if row["in_digest_toml"]
                else "(not in digest.toml)",
            }
            for row in rows
        ]
    print_rows(rows, fmt, columns)


@sections_app.command("rename")
def sections_rename(
    old: Annotated[str, typer.Argument(help="The section's old slug.")],
    new: Annotated[str, typer.Argument(help="Its slug now: a section of digest.toml.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would move; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Move subscribers who chose OLD to NEW (a subscriber holding both keeps one), and the
    articles filed under OLD, so stories not sent yet follow; editions already sent keep
    theirs. One transaction. NEW must be a section of digest.toml."""
    with context() as ctx:
        moved = pipeline.rename_section(ctx, old, new, pipeline.utcnow(), dry_run=dry_run)
    if as_json:
        emit_json({"old": old, "new": new, "dry_run": dry_run, **vars(moved)})
        return
    verb = "would move" if dry_run else "moved"
    out.print(
        f"{verb} {old} -> {new}: {moved.subscribers} subscriber(s) "
        f"({moved.subscriptions} subscription(s)), {moved.articles} article(s), "
        f"{moved.pending} pending sign-up(s)" + (" (dry run: nothing changed)" if dry_run else ""),
        markup=False,
    )
