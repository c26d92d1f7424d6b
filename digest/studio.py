"""The preview studio: today's edition as every reader may see it, refreshed on every edit.

A small Starlette app (``digest preview --serve``, 127.0.0.1 by default) that composes one
message through ``pipeline.sample`` (the same code path as a real send) and shows it in
desktop (700 px) and phone (375 and 320 px) frames, light and dark, next to its plain-text
part, its raw headers and ``digest check``'s findings, for any subscriber or section set.

Live reload: ``/version`` is a fingerprint (path, size, mtime) of the template folders,
``digest.toml`` and the ``.env``; the page polls it and reloads when it changes, so saving a
template, the stylesheet or the newsletter definition shows the result at once. Dark frames
turn the head's ``prefers-color-scheme: dark`` queries on (light frames turn them off), so
the frame shows what a client in dark mode applies whatever the viewer's own setting.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import islice
from email import message_from_bytes, policy
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest import compose, pipeline
from digest.compose.check import Finding, check
from digest.config import Settings, load_settings
from digest.errors import DigestError

WIDTHS = (("desktop", 700), ("phone", 375), ("small phone", 320))
_DARK_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)", re.I)
_LIGHT_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)", re.I)
_ALWAYS, _NEVER = "(min-width: 0px)", "(max-width: 0px)"


def force_scheme(page: str, scheme: str) -> str:
    """``page`` as a client in ``scheme`` ("light" or "dark") renders it."""
    dark = scheme == "dark"
    page = _DARK_QUERY.sub(_ALWAYS if dark else _NEVER, page)
    page = _LIGHT_QUERY.sub(_NEVER if dark else _ALWAYS, page)
    page = re.sub(r'(<meta name="color-scheme" content=")[^"]*', rf"\g<1>{scheme}", page)
    # Links open outside the studio; a frame never navigates away from the message.
    return re.sub(r"<head>", '<head><base target="_blank">', page, count=1)


@dataclass(frozen=True)
class View:
    edition: str
    recipient: str
    sections: tuple[str, ...]
    html: str
    text: str
    headers: str
    eml: bytes
    notes: tuple[str, ...]
    findings: tuple[Finding, ...]


class Studio:
    """Composes views on demand, re-reading settings and the newsletter when files change."""

    def __init__(self, settings: Settings | None = None, list_name: str | None = None):
        self.list_name = list_name
        self._settings = settings
        self._ctx: pipeline.Context | None = None
        self._ctx_stamp = ""
        self._cache: dict[tuple, View] = {}
        self._cache_stamp = ""

    def watched(self) -> list[Path]:
        settings = self._settings or load_settings()
        paths = [compose.TEMPLATES, settings.config, Path(".env")]
        if settings.templates is not None:
            paths.insert(0, settings.templates)
        return paths

    def version(self) -> str:
        marks = []
        for path in self.watched():
            files = sorted(path.rglob("*")) if path.is_dir() else [path]
            for file in files:
                try:
                    stat = file.stat()
                except OSError:
                    continue
                marks.append(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}")
        return hashlib.sha256("\n".join(marks).encode()).hexdigest()[:16]

    def context(self, stamp: str) -> pipeline.Context:
        if self._ctx is None or stamp != self._ctx_stamp:
            if self._ctx is not None:
                self._ctx.close()
            self._ctx = pipeline.Context.open(self._settings or load_settings())
            self._ctx_stamp = stamp
        return self._ctx

    def view(self, subscriber: str | None, sections: frozenset[str] | None) -> View:
        stamp = self.version()
        if stamp != self._cache_stamp or len(self._cache) > 16:
            self._cache, self._cache_stamp = {}, stamp
        key = (subscriber, sections)
        if key not in self._cache:
            ctx = self.context(stamp)
            done = pipeline.sample(ctx, self.list_name, now=pipeline.utcnow(),
                                   subscriber_email=subscriber, sections=sections)
            raw = done.message.raw
            parsed = message_from_bytes(raw, policy=policy.default)
            findings = sorted(check(raw), key=lambda f: f.severity != "error")
            self._cache[key] = View(
                done.edition.key, done.message.recipient, done.sections,
                parsed.get_body(("html",)).get_content(),
                parsed.get_body(("plain",)).get_content(),
                raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n"),
                raw, done.notes, tuple(findings))
        return self._cache[key]

    def choices(self) -> tuple[list[tuple[str, str]], list[str]]:
        """The list's sections (slug, title) and some subscribers, for the studio's form."""
        ctx = self.context(self.version())
        lst = ctx.newsletter.get_list(self.list_name)
        people = [s.email for s in islice(ctx.store.recipients(lst.name), 200)]
        return [(s.slug, s.title) for s in ctx.newsletter.sections_of(lst)], people

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.close()


def _choice(request: Request) -> tuple[str | None, frozenset[str] | None]:
    subscriber = request.query_params.get("subscriber", "").strip() or None
    picked = request.query_params.getlist("section")
    return subscriber, frozenset(picked) if picked else None


def create_app(settings: Settings | None = None, list_name: str | None = None) -> Starlette:
    studio = Studio(settings, list_name)
    pages = jinja2.Environment(loader=jinja2.DictLoader({"index": _PAGE}), autoescape=True)

    async def index(request: Request) -> Response:
        subscriber, sections = _choice(request)
        data = {"query": request.url.query, "subscriber": subscriber or "",
                "picked": sections or frozenset(), "widths": WIDTHS,
                "version": studio.version(), "view": None, "error": None,
                "sections": [], "people": []}
        try:
            data["sections"], data["people"] = studio.choices()
            data["view"] = studio.view(subscriber, sections)
        except DigestError as exc:
            data["error"] = str(exc)
        return HTMLResponse(pages.get_template("index").render(data),
                            status_code=200 if data["error"] is None else 500)

    def guarded(make):
        async def endpoint(request: Request) -> Response:
            try:
                return make(request, studio.view(*_choice(request)))
            except DigestError as exc:
                return PlainTextResponse(f"error: {exc}\n", status_code=500)
        return endpoint

    async def version(request: Request) -> Response:
        return JSONResponse({"version": studio.version()})

    routes = [
        Route("/", index),
        Route("/version", version),
        Route("/frame", guarded(lambda r, v: HTMLResponse(
            force_scheme(v.html, "dark" if r.query_params.get("scheme") == "dark" else "light")))),
        Route("/text", guarded(lambda r, v: PlainTextResponse(v.text))),
        Route("/headers", guarded(lambda r, v: PlainTextResponse(v.headers))),
        Route("/check", guarded(lambda r, v: JSONResponse(
            {"edition": v.edition, "recipient": v.recipient, "notes": list(v.notes),
             "findings": [f.as_dict() for f in v.findings]}))),
        Route("/message.eml", guarded(lambda r, v: Response(
            v.eml, media_type="message/rfc822",
            headers={"Content-Disposition": f'attachment; filename="{v.edition}.eml"'}))),
    ]
    @asynccontextmanager
    async def lifespan(_app):
        yield
        studio.close()

    return Starlette(routes=routes, lifespan=lifespan)


def serve(*, host: str = "127.0.0.1", port: int = 8025, list_name: str | None = None) -> None:
    """Run the studio until interrupted."""
    import uvicorn

    load_settings()  # fail now, in one line, rather than on the first page
    # No settings held: each reload reads .env and the environment again.
    uvicorn.run(create_app(None, list_name), host=host, port=port, log_level="warning")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>digest preview studio</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #e9ebee; color: #1f2328; }
header, section { padding: 12px 20px; } header { background: #0b2545; color: #ffffff; }
form { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; }
.frames { display: flex; gap: 20px; overflow-x: auto; align-items: flex-start; }
figure { margin: 0; } figcaption { font-weight: 600; margin: 0 0 4px; }
iframe { border: 1px solid #8c959f; background: #ffffff; height: 900px; display: block; }
pre { background: #ffffff; padding: 12px; overflow-x: auto; border: 1px solid #d0d7de; }
.error { color: #a40e26; font-weight: 600; } .warning { color: #7d4e00; }
table { border-collapse: collapse; background: #ffffff; } td, th { padding: 4px 8px;
border: 1px solid #d0d7de; text-align: left; vertical-align: top; }
</style></head><body>
<header><strong>digest preview studio</strong>
{% if view %} · edition {{ view.edition }} for {{ view.recipient }}
 · sections: {{ view.sections|join(", ") }}{% endif %}</header>
<section><form method="get" action="/">
<label>Subscriber <input name="subscriber" list="people" value="{{ subscriber }}"
 placeholder="a sample reader"></label>
<datalist id="people">{% for p in people %}<option value="{{ p }}">{% endfor %}</datalist>
{% for slug, title in sections %}<label><input type="checkbox" name="section"
 value="{{ slug }}"{% if slug in picked %} checked{% endif %}> {{ title }}</label>{% endfor %}
<button>Show</button> <a href="/">every section</a>
{% if view %}<a href="/message.eml?{{ query }}">.eml</a>{% endif %}
</form></section>
{% if error %}<section><p class="error" id="error">{{ error }}</p></section>{% endif %}
{% if view %}
<section>{% for note in view.notes %}<p class="warning">trimmed: {{ note }}</p>{% endfor %}
<h2>Check: {{ view.findings|selectattr("severity", "eq", "error")|list|length }} error(s),
{{ view.findings|selectattr("severity", "eq", "warning")|list|length }} warning(s)</h2>
{% if view.findings %}<table id="findings"><tr><th>severity</th><th>where</th><th>what</th></tr>
{% for f in view.findings %}<tr class="{{ f.severity }}"><td>{{ f.severity }}</td>
<td>{{ f.where }}</td><td>{{ f.what }}</td></tr>{% endfor %}</table>{% endif %}</section>
{% for scheme in ("light", "dark") %}<section><h2>{{ scheme|capitalize }}</h2><div class="frames">
{% for name, width in widths %}<figure><figcaption>{{ name }} · {{ width }} px</figcaption>
<iframe title="{{ name }}, {{ scheme }}" width="{{ width }}" style="width: {{ width }}px"
 src="/frame?scheme={{ scheme }}&amp;{{ query }}"></iframe></figure>{% endfor %}
</div></section>{% endfor %}
<section><h2>Plain text</h2><pre id="text">{{ view.text }}</pre></section>
<section><h2>Headers</h2><pre id="headers">{{ view.headers }}</pre></section>
{% endif %}
<script>
const version = {{ version|tojson }};
for (const frame of document.querySelectorAll("iframe")) {
  frame.addEventListener("load", () => {
    const doc = frame.contentDocument;
    if (doc) frame.style.height = (doc.documentElement.scrollHeight + 4) + "px";
  });
}
async function poll() {
  try {
    const reply = await fetch("/version", {cache: "no-store"});
    if ((await reply.json()).version !== version) { location.reload(); return; }
  } catch (e) { /* the studio restarts: keep polling */ }
  setTimeout(poll, 1000);
}
setTimeout(poll, 1000);
</script></body></html>
"""
