"""`digest lists`: the newsletter's lists and how many subscribers each has."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from digest import pipeline
from digest.cli._app import Format, app, context, emit_json, out, print_rows

if TYPE_CHECKING:
    from digest.config import ListConfig

lists_app = typer.Typer(help="The newsletter's lists: list, show.", no_args_is_help=True)
app.add_typer(lists_app, name="lists")
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")]
STATES = ("active", "paused", "pending", "unsubscribed", "bounced", "complained")


def _row(lst: ListConfig, counts: dict[str, int]) -> dict:
    return {
        "name": lst.name,
        "title": lst.title,
        "sender": lst.sender,
        **{state: counts.get(state, 0) for state in STATES},
    }


@lists_app.command("list")
def lists_list(fmt: FormatOpt = Format.table) -> None:
    """Every list with its subscriber counts by state."""
    with context() as ctx:
        counts = pipeline.list_counts(ctx)
        rows = [_row(lst, counts.get(lst.name, {})) for lst in ctx.newsletter.lists]
    print_rows(rows, fmt, ["name", "title", *STATES])


@lists_app.command("show")
def lists_show(name: str, fmt: FormatOpt = Format.table) -> None:
    """One list: its settings, sections and subscriber counts."""
    with context() as ctx:
        lst = ctx.newsletter.get_list(name)
        row = _row(lst, pipeline.list_counts(ctx).get(lst.name, {}))
        row |= {
            "timezone": lst.timezone,
            "schedule": lst.schedule,
            "send_at": lst.send_at or "00:00",
            "window_hours": lst.window,
            "max_age_hours": lst.max_age_hours,
            "sections": [s.slug for s in ctx.newsletter.sections_of(lst)],
        }
    if fmt is Format.json:
        emit_json(row)
    elif fmt is Format.csv:
        print_rows([row], fmt, list(row))
    else:
        for key, value in row.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            out.print(f"{key:>13}: {shown}", markup=False)
