"""The editor's note markup: parsed once, written escaped into HTML and as a plain-text twin,
and checked. Pure."""

from __future__ import annotations

from digest.compose import note
from digest.compose.placeholders import UNSUBSCRIBE_URL


def test_paragraphs_emphasis_strong_and_links_become_html():
    parsed = note.parse("Hello *you* and **all**,\nsee [this](https://ex.org/a).\n\nBye _now_.")
    assert str(note.html(parsed)) == (
        '<p class="note-text">Hello <em>you</em> and <strong>all</strong>, see '
        '<a class="note-link" href="https://ex.org/a">this</a>.</p>\n'
        '<p class="note-text">Bye <em>now</em>.</p>'
    )


def test_html_and_attribute_breaking_text_are_escaped_everywhere():
    parsed = note.parse('<img src=x onerror=alert(1)> [a "b"](https://ex.org/?q="><script>)')
    html = str(note.html(parsed))
    assert "<img" not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert 'href="https://ex.org/?q=&#34;&gt;&lt;script&gt;"' in html
    assert "a &#34;b&#34;</a>" in html


def test_a_link_that_is_not_http_is_written_as_its_text_and_is_an_error():
    parsed = note.parse("Do [this](javascript:alert(1)) and [that](mailto:x@ex.org).")
    assert "<a " not in str(note.html(parsed)) and "javascript" not in str(note.html(parsed))
    errors = [what for sev, what in note.findings("[x](javascript:alert(1))") if sev == "error"]
    assert errors and "not an http(s) address" in errors[0]


def test_a_link_with_parentheses_in_its_address_stays_whole():
    url = "https://en.wikipedia.org/wiki/Mercury_(planet)"
    parsed = note.parse(f"Read [Mercury]({url}).")
    assert f'href="{url}"' in str(note.html(parsed))
    assert not note.findings(f"Read [Mercury]({url}).")


def test_the_text_twin_wraps_prose_and_puts_each_address_on_its_own_line():
    long = "https://ex.org/" + "x" * 90
    text = note.text(note.parse("Word " * 30 + f"and [the report]({long}) **done**."))
    lines = text.splitlines()
    assert all(len(line) <= 78 for line in lines if not line.startswith("https://"))
    assert long in lines and "[1] the report:" in lines
    assert "the report [1] done." in " ".join(lines)


def test_a_backslash_keeps_a_mark_as_text():
    assert str(note.html(note.parse(r"2 \* 3 = 6 and \*not em\*"))) == (
        '<p class="note-text">2 * 3 = 6 and *not em*</p>'
    )
    assert not note.findings(r"2 \* 3")


def test_unclosed_marks_html_and_length_are_warnings():
    assert note.findings("an *unclosed mark") == [
        ("warning", "an unclosed mark in 'an *unclosed mark' is shown as is")
    ]
    assert note.findings("<b>bold</b>")[0] == (
        "warning",
        "HTML in the note is shown as text, not applied",
    )
    assert note.findings("x" * (note.MAX_CHARS + 1))[0][0] == "warning"


def test_a_note_cannot_spell_a_recipient_placeholder():
    parsed = note.parse(f"Go to {UNSUBSCRIBE_URL} now")
    assert UNSUBSCRIBE_URL not in str(note.html(parsed)) + note.text(parsed)


def test_an_empty_note_renders_nothing():
    assert note.parse(" \n\n  ") == ()
