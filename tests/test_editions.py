"""Editions an editor steers: drafts rebuilt at every look until the first message is queued,
then frozen; `digest editions list/show/rebuild`; curation (lead, pin, drop, move, note) in
both parts of the sent message; `preview --next` and `--date`. Through the CLI, on a real
store and a recording SMTP server."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from digest.compose.mime import body_text
from digest.exits import ExitCode
from tests.support.cli import run, sample_settings, set_settings
from tests.support.smtpd import smtp_server
from tests.support.values import EXAMPLE_CSV, ROOT


@pytest.fixture
def editor_project(monkeypatch, tmp_path, db_url) -> Path:
    """The sample newsletter (its definition copied, so a test may edit it), fetched, with
    the example subscribers; delivery into an outbox unless a test names a relay."""
    config = tmp_path / "digest.toml"
    config.write_text((ROOT / "digest.toml").read_text().replace('"samples/', f'"{ROOT}/samples/'))
    set_settings(
        monkeypatch,
        sample_settings(
            db_url,
            DIGEST_CONFIG=str(config),
            DIGEST_OUTBOX=str(tmp_path / "outbox"),
            DIGEST_SEND_RETRY_BUDGET="0",
        ),
    )
    run("init")
    run("fetch")
    return config


def _subscribe() -> None:
    run("subscribers", "import", str(EXAMPLE_CSV))


def _show(key: str = "today") -> dict:
    return json.loads(run("editions", "show", key, "--json").stdout)


def _editions() -> list[dict]:
    return [json.loads(line) for line in run("editions", "list", "--json").stdout.splitlines()]


def _ids(view: dict, slug: str) -> list[int]:
    section = next(s for s in view["sections"] if s["slug"] == slug)
    return [a["id"] for a in section["articles"]]


def _send_and_capture(monkeypatch) -> list:
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        run("send")
        return [message_from_bytes(m.raw, policy=policy.default) for m in server.handler.messages]


# -- drafts ---------------------------------------------------------------------------------


def test_a_draft_follows_a_changed_newsletter_definition_until_it_is_sent(editor_project):
    before = _show()
    assert before["state"] == "draft" and not before["stored"]
    assert "launch-pad" in [s["slug"] for s in before["sections"]]
    # The editor drops a section and renames another in digest.toml: the draft follows.
    text = editor_project.read_text()
    start = text.index('[[sections]]\nslug = "launch-pad"')
    text = text[:start] + text[start:].split("\n\n", 1)[-1]
    editor_project.write_text(text.replace('title = "Drone Space"', 'title = "Drones"'))
    after = _show()
    assert "launch-pad" not in [s["slug"] for s in after["sections"]]
    assert [s["title"] for s in after["sections"] if s["slug"] == "drone-space"] == ["Drones"]
    preview = run("preview", "--out", str(editor_project.parent / "preview"))
    assert "edition" in preview.stdout
    html = (editor_project.parent / "preview" / "digest.html").read_text()
    assert ">Drones<" in html and "Launch Pad" not in html
    assert _editions()[0]["state"] == "draft"  # looking stored nothing


def test_an_edition_is_frozen_once_its_first_message_is_queued(editor_project, monkeypatch):
    _subscribe()
    messages = _send_and_capture(monkeypatch)
    assert messages
    frozen = _show()
    assert frozen["state"] == "complete" and frozen["recipients"] == len(messages)
    # A change of digest.toml after the send changes nothing in the sent edition.
    editor_project.write_text(
        editor_project.read_text().replace('title = "Drone Space"', 'title = "Drones"')
    )
    assert _show()["sections"] == frozen["sections"]
    refused = run("editions", "rebuild", frozen["key"], code=ExitCode.SELECTION)
    assert "is frozen: its sending started" in refused.stderr
    assert f"{len(messages)} messages queued" in refused.stderr
    refused = run("editions", "drop", "today", str(_ids(frozen, "drone-space")[0]), code=7)
    assert "is frozen" in refused.stderr


def test_a_send_with_no_one_to_send_to_leaves_the_edition_a_draft(editor_project, monkeypatch):
    with smtp_server() as server:
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        summary = json.loads(run("send", "--json").stdout)
        assert summary["status"] == "skipped" and "stays a draft" in summary["message"]
        assert _show()["state"] == "draft"
        _subscribe()  # readers arrive later that day: the edition goes to them
        summary = json.loads(run("send", "--json").stdout)
        assert summary["status"] == "complete" and summary["sent"] == len(
            set(server.handler.recipients())
        )
        assert _show()["state"] == "complete"


def test_an_article_arriving_after_the_send_opens_the_next_edition(
    editor_project, monkeypatch, tmp_path
):
    _subscribe()
    _send_and_capture(monkeypatch)
    assert _show("next")["sections"] == []  # nothing new since the send
    late = tmp_path / "late.jsonl"
    late.write_text(
        json.dumps(
            {
                "section": "launch-pad",
                "title": "Late launch news after the morning send",
                "url": "https://news.orbital-dispatch.example/launch-pad/late.html",
                "summary": "It came in after the edition went out.",
            }
        )
        + "\n"
    )
    run("articles", "import", str(late))
    upcoming = _show("next")
    today = date.fromisoformat(_show()["key"])
    assert upcoming["key"] == (today + timedelta(days=1)).isoformat()
    assert [a["title"] for s in upcoming["sections"] for a in s["articles"]] == [
        "Late launch news after the morning send"
    ]
    out = tmp_path / "next"
    run("preview", "--next", "--out", str(out))
    assert "Late launch news after the morning send" in (out / "digest.txt").read_text()
    # The date of tomorrow shows the same draft; nothing was stored by looking.
    run("preview", "--date", upcoming["key"], "--out", str(tmp_path / "dated"))
    assert (tmp_path / "dated" / "digest.txt").read_text() == (out / "digest.txt").read_text()
    assert [e["key"] for e in _editions() if e["state"] != "draft"] == [today.isoformat()]
    assert not any(e["created_at"] for e in _editions() if e["state"] == "draft")


def test_preview_of_a_past_date_never_sent_says_so(editor_project):
    today = date.fromisoformat(_show()["key"])
    result = run("preview", "--date", (today - timedelta(days=3)).isoformat(), code=7)
    assert "was sent" in result.stderr and "editions list" in result.stderr
    assert "not an edition key" in run("editions", "show", "yesterday", code=7).stderr


# -- editions list and show -----------------------------------------------------------------


def test_editions_list_counts_recipients_sent_and_failed_per_edition(editor_project, monkeypatch):
    _subscribe()
    with smtp_server() as server:
        server.handler.rcpt_replies["valentina@example.net"] = "550 5.1.1 No such user"
        monkeypatch.setenv("DIGEST_SMTP_URL", f"smtp://{server.host}:{server.port}")
        run("send", code=ExitCode.FAILED)
        delivered = len(server.handler.messages)
    rows = _editions()
    assert [r["state"] for r in rows] == ["draft", "complete"]  # tomorrow's, then today's
    sent = rows[1]
    assert (sent["sent"], sent["failed"]) == (delivered, 1)
    assert sent["recipients"] == delivered + 1
    assert sent["articles"] == sum(len(s["articles"]) for s in _show()["sections"])
    assert sent["first_sent_at"] and sent["last_sent_at"] and sent["created_at"]
    table = run("editions", "list").stdout
    assert sent["key"] in table and "complete" in table


# -- curation -------------------------------------------------------------------------------


def test_curation_shapes_both_parts_of_the_sent_message(editor_project, monkeypatch, tmp_path):
    draft = _show()
    internet = _ids(draft, "internet-space")
    lead, dropped, moved = internet[2], internet[1], internet[4]
    run("editions", "lead", "today", str(lead))
    run("editions", "drop", "today", str(dropped))
    run("editions", "move", "today", str(moved), "2")
    note = tmp_path / "note.md"
    note.write_text(
        "Good morning: *three* launches and [our report](https://example.com/report?a=1&b=2)."
        "\n\nWrite to us <script>alert(1)</script>.\n"
    )
    run("editions", "note", "today", "--file", str(note))
    curated = _show()
    order = _ids(curated, "internet-space")
    assert order[0] == lead and order[1] == moved and dropped not in order
    assert curated["curation"]["drops"] == [dropped]
    assert "lead" in curated["sections"][0]["articles"][0]["marks"]

    _subscribe()
    messages = _send_and_capture(monkeypatch)
    titles = {a["id"]: a["title"] for a in draft["sections"][0]["articles"]}
    readers_of_the_section = 0
    for message in messages:
        html = body_text(message, "html")
        text = body_text(message, "plain").replace("\r\n", "\n")
        if ">Internet Space<" in html:  # the first section: its lead heads the subject
            readers_of_the_section += 1
            assert titles[lead] in str(message["Subject"])
            assert html.index(titles[lead]) < html.index(titles[moved])
        assert titles[dropped] not in html and titles[dropped] not in text
        assert "<em>three</em>" in html
        assert 'href="https://example.com/report?a=1&amp;b=2"' in html
        assert "&lt;script&gt;" in html and "<script>" not in html
        assert "Good morning: three launches and our report [1]." in text
        assert "\nhttps://example.com/report?a=1&b=2\n" in text
        assert text.index("Good morning") < text.index("-" * 78)
    assert readers_of_the_section == 3  # of the example readers, those who take that section
    # The curation is kept with the frozen edition.
    assert _show()["curation"]["leads"] == [lead]


def test_pinning_brings_in_an_article_the_cap_left_out_ranked_first(editor_project):
    draft = _show()
    before = _ids(draft, "internet-space")
    listed = run("articles", "list", "--section", "internet-space", "--format", "json").stdout
    left_out = next(a["id"] for a in map(json.loads, listed.splitlines()) if a["id"] not in before)
    run("editions", "pin", "today", str(left_out))
    pinned = _show()
    order = _ids(pinned, "internet-space")
    assert order == [left_out, *before[:-1]]  # the cap holds: the pin takes the last place
    assert "pinned" in pinned["sections"][0]["articles"][0]["marks"]
    run("editions", "lead", "today", str(before[3]))  # a chosen lead goes before the pins
    assert _ids(_show(), "internet-space")[:2] == [before[3], left_out]
    run("editions", "clear", "today", str(left_out))
    assert left_out not in _ids(_show(), "internet-space")


def test_curation_names_only_articles_it_can_use(editor_project):
    first = _ids(_show(), "internet-space")[0]
    assert "no article 99999" in run("editions", "lead", "today", "99999", code=7).stderr
    run("editions", "drop", "today", str(first))
    refused = run("editions", "move", "today", str(first), "1", code=7)
    assert "is not in the draft" in refused.stderr


def test_a_note_with_a_link_that_is_not_http_is_refused_and_check_reports_html(
    editor_project, tmp_path
):
    note = tmp_path / "note.md"
    note.write_text("Click [here](javascript:alert(1)) now.")
    refused = run("editions", "note", "today", "--file", str(note), code=ExitCode.COMPOSE)
    assert "is not an http(s) address" in refused.stderr
    assert _show()["curation"]["note"] == ""
    note.write_text("Plain words and <b>markup</b>.")
    saved = run("editions", "note", "today", "--file", str(note))
    assert "HTML in the note is shown as text" in saved.stderr
    report = json.loads(run("check", "--json").stdout)
    assert any(f["code"] == "note" for f in report["findings"])
    run("editions", "note", "today", "--clear")
    assert _show()["curation"]["note"] == ""


def test_check_and_preview_show_the_curated_draft_without_storing_articles(
    editor_project, tmp_path
):
    lead = _ids(_show(), "military-space")[3]
    run("editions", "lead", "today", str(lead))
    rows = _editions()
    assert rows[0]["state"] == "draft" and rows[0]["created_at"]  # the curation is stored
    out = tmp_path / "p"
    run("preview", "--out", str(out))
    title = next(a["title"] for s in _show()["sections"] for a in s["articles"] if a["id"] == lead)
    text = (out / "digest.txt").read_text()
    assert text.index(title) < text.index("Drone Space".upper())
    assert _editions()[0]["recipients"] == 0


def test_the_readme_editors_morning_runs_as_written_in_a_fresh_folder(tmp_path, monkeypatch):
    """The README's block, line by line, in a folder set up by `digest init` as the README
    says (its `digest` lines through the CLI in this process, the others by a shell): every
    line succeeds, and the edition it sends holds the curation."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## The editor's morning\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```", section, re.M | re.S)
    assert block is not None
    for name in [n for n in os.environ if n.startswith("DIGEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    run("init")
    for line in block.group(1).splitlines():
        command = line.split("  #", 1)[0].strip()
        if command.startswith("cd "):
            assert command == "cd ~/my-newsletter"
        elif command.startswith("digest "):
            last = run(*shlex.split(command)[1:])
        else:
            subprocess.run(["/bin/sh", "-ec", command], cwd=tmp_path, check=True)
    assert "complete" in last.stdout.splitlines()[-1]  # `digest editions list`
    sent = next((tmp_path / "outbox" / "new").iterdir()).read_bytes()
    message = message_from_bytes(sent, policy=policy.default)
    assert "Good morning: three stories today." in body_text(message, "plain")


def test_a_sent_edition_stays_in_view_after_the_schedule_changes(editor_project, monkeypatch):
    _subscribe()
    _send_and_capture(monkeypatch)
    sent = _show()
    text = editor_project.read_text().replace('schedule = "daily"', 'schedule = "weekly:mon"')
    editor_project.write_text(text)
    again = _show(sent["key"])
    assert (again["key"], again["state"]) == (sent["key"], "complete")
    assert _show("today")["key"].count("-W") == 1  # the list's keys are weeks now
    refused = run("editions", "show", "2026-12-40", code=ExitCode.SELECTION)
    assert "is not an edition key of list daily (weekly:mon)" in refused.stderr


# -- one story once ---------------------------------------------------------------------------


def test_a_story_two_feeds_carry_is_sent_once_with_an_also_link_and_kept_when_frozen(
    editor_project, monkeypatch, tmp_path
):
    from email.utils import format_datetime

    from tests.support.stories import REWRITES

    pair = REWRITES[9]  # a museum theft, as a wire service and an arts site wrote it
    now = datetime.now(UTC)
    text = editor_project.read_text()
    for slug, side, hours in (("military-space", "a", 2), ("internet-space", "b", 1)):
        entry = pair[side]
        feed = tmp_path / f"{slug}-wire.xml"
        feed.write_text(
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{slug} wire</title><link>https://feeds.example/</link><item>"
            f"<title>{entry['title']}</title><link>{entry['url']}</link>"
            f"<guid>{entry['url']}</guid><description>{entry['summary']}</description>"
            f"<pubDate>{format_datetime(now - timedelta(hours=hours))}</pubDate>"
            "</item></channel></rss>"
        )
        feeds = f'feeds = ["{ROOT}/samples/feeds/{slug}.xml"'
        text = text.replace(feeds, f'{feeds}, "{feed}"', 1)
    editor_project.write_text(text)
    run("fetch")
    shown, other = pair["b"], pair["a"]

    view = _show()
    [story] = [a for s in view["sections"] for a in s["articles"] if a["url"] == shown["url"]]
    assert [a["url"] for a in story["also"]] == [other["url"]]
    assert other["url"] not in [a["url"] for s in view["sections"] for a in s["articles"]]

    _subscribe()
    readers_of_the_section = 0
    for message in _send_and_capture(monkeypatch):
        html = body_text(message, "html")
        plain = body_text(message, "plain").replace("\r\n", "\n")
        if ">Internet Space<" not in html:
            continue
        readers_of_the_section += 1
        assert f'href="{shown["url"]}"' in html and other["title"] not in html
        assert re.search(
            rf'Also: <a [^>]*href="{re.escape(other["url"])}"[^>]*>wire.example.com<', html
        )
        assert f"\nAlso: wire.example.com\n{other['url']}\n" in plain
        assert other["title"] not in plain
    assert readers_of_the_section

    # Frozen: the edition read back (as a resumed send reads it) has the same link.
    frozen = _show()
    assert frozen["state"] == "sending" or frozen["state"] == "complete"
    [again] = [a for s in frozen["sections"] for a in s["articles"] if a["url"] == shown["url"]]
    assert [a["url"] for a in again["also"]] == [other["url"]]
    run("preview", "--date", frozen["key"], "--out", str(tmp_path / "sent"))
    assert (
        f"\nAlso: wire.example.com\n{other['url']}\n"
        in (tmp_path / "sent" / "digest.txt").read_text()
    )
