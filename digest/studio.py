"""The preview studio: today's edition as every reader may see it, refreshed on every edit.

A small Starlette app (``digest preview --serve``, 127.0.0.1 by default) that composes one
message through ``pipeline.sample`` (the same code path as a real send) and shows it in
desktop (700 px) and phone (375 and 320 px) frames, light and dark, next to its plain-text
part, its raw headers and ``digest check``'s findings, for any subscriber or section set.

Safe on a developer's machine: it answers only loopback Host names (a page on another site
cannot read it through DNS rebinding) unless started on another address, sends the security
headers of ``digest serve`` (loosened only to let the page frame its own messages and run
its own script), lists no subscriber, and signs its messages' links with a key derived for
previews, so a token copied from the studio does nothing on the live edge. The page is the
Jinja template ``templates/studio/index.html.j2`` and its script ``studio.js``.

Live reload: ``/version`` is a fingerprint (path, size, mtime) of the template folders,
``digest.toml`` and the ``.env``; the page polls it and reloads when it changes, so saving a
template, the stylesheet or the newsletter definition shows the result at once. Dark frames
turn the head's ``prefers-color-scheme: dark`` queries on (light frames turn them off), so
the frame shows what a client in dark mode applies whatever the viewer's own setting.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest import compose, pipeline
from digest.compose import note as editor_note
from digest.compose.check import Finding, check
from digest.compose.mime import body_text
from digest.config import Settings, load_newsletter, load_settings
from digest.errors import DigestError
from digest.web.security import HEADERS, LOOPBACK_NAMES, AllowedHosts, SecurityHeaders

STUDIO_TEMPLATES = compose.TEMPLATES / "studio"
# ``digest serve``'s headers, loosened only as far as the studio needs: its page frames its
# own messages (/frame) and runs its own script (/studio.js, polling /version); images in a
# message load as in a mail client. A message's frame still runs no script.
STUDIO_HEADERS = {
    **HEADERS,
    "x-frame-options": "SAMEORIGIN",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; "
        "script-src 'self'; connect-src 'self'; frame-src 'self'; form-action 'self'; "
        "frame-ancestors 'self'; base-uri 'none'"
    ),
}
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


def off_loopback(host: str) -> bool:
    """Whether binding ``host`` lets other machines reach the studio."""
    if host.strip("[]").lower() == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The Host names the studio answers when bound to ``host``: the loopback names, and
    ``host`` itself when the operator chose another address; None (any) for a wildcard."""
    if host in ("0.0.0.0", "::", "[::]", ""):
        return None
    name = f"[{host.strip('[]')}]" if ":" in host else host
    return LOOPBACK_NAMES | {name.lower()}


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
    curation: tuple[str, ...] = ()  # the edition's state and the editor's choices, in words


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
        try:  # the lists' own template folders, as digest.toml names them now
            lists = load_newsletter(settings.config).lists
        except DigestError:  # a broken digest.toml: watched already, the page says so
            lists = ()
        paths[:0] = [lst.templates for lst in lists if lst.templates is not None]
        return paths

    def version(self) -> str:
        """Changes whenever what the studio shows may: a watched file, the articles, or the
        editor's curation (the page reloads when it does)."""
        files = self.files_version()
        try:
            mark = pipeline.editorial_mark(self.context(files))
        except DigestError:  # a broken digest.toml: the page says so, and reloads once fixed
            mark = "unavailable"
        return hashlib.sha256(f"{files}\n{mark}".encode()).hexdigest()[:16]

    def files_version(self) -> str:
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
            settings = pipeline.preview_settings(self._settings or load_settings())
            self._ctx = pipeline.Context.open(settings)
            self._ctx_stamp = stamp
        return self._ctx

    def lists(self) -> list[str]:
        """The newsletter's lists, by name, for the studio's picker."""
        return [lst.name for lst in self.context(self.files_version()).newsletter.lists]

    def pick(self, asked: str | None) -> str:
        """The list to show: the one ``asked``, else the one the studio was started with
        (``--list``), else the first; UnknownList if there is none by that name."""
        names = self.lists()
        asked = asked or self.list_name
        if asked is None:
            return names[0]
        if asked not in names:
            raise UnknownList(f"no list named {asked!r}; lists: {', '.join(names)}")
        return asked

    def view(self, list_name: str, subscriber: str | None, sections: frozenset[str] | None) -> View:
        stamp = self.version()
        if stamp != self._cache_stamp or len(self._cache) > 16:
            self._cache, self._cache_stamp = {}, stamp
        key = (list_name, subscriber, sections)
        if key not in self._cache:
            ctx = self.context(self.files_version())
            done = pipeline.sample(
                ctx,
                list_name,
                now=pipeline.utcnow(),
                subscriber_email=subscriber,
                sections=sections,
            )
            raw = done.message.raw
            parsed = message_from_bytes(raw, policy=policy.default)
            findings = check(raw) + [
                Finding(severity, "note", what, "the editor's note")
                for severity, what in editor_note.findings(done.edition.curation.note)
            ]
            findings.sort(key=lambda f: f.severity != "error")
            self._cache[key] = View(
                done.edition.key,
                done.message.recipient,
                done.sections,
                body_text(parsed, "html"),
                body_text(parsed, "plain"),
                raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace").replace("\r\n", "\n"),
                raw,
                done.notes,
                tuple(findings),
                tuple(pipeline.curation_lines(done.edition)),
            )
        return self._cache[key]

    def sections(self, list_name: str) -> list[tuple[str, str]]:
        """The list's sections (slug, title), for the studio's form (which lists no one)."""
        ctx = self.context(self.files_version())
        lst = ctx.newsletter.get_list(list_name)
        return [(s.slug, s.title) for s in ctx.newsletter.sections_of(lst)]

    def close(self) -> None:
        if self._ctx is not None:
            self._ctx.close()


class UnknownList(LookupError):
    """A page asked for a list the newsletter does not have: 404, with the picker."""


def _choice(request: Request) -> tuple[str | None, str | None, frozenset[str] | None]:
    asked = request.query_params.get("list", "").strip() or None
    subscriber = request.query_params.get("subscriber", "").strip() or None
    picked = request.query_params.getlist("section")
    return asked, subscriber, frozenset(picked) if picked else None


def create_app(
    settings: Settings | None = None,
    list_name: str | None = None,
    hosts: frozenset[str] | None = LOOPBACK_NAMES,
) -> Starlette:
    """The studio's app; ``hosts``: the Host names it answers (None: any)."""
    studio = Studio(settings, list_name)
    pages = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(STUDIO_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )

    async def index(request: Request) -> Response:
        asked, subscriber, sections = _choice(request)
        data: dict[str, Any] = {
            "lists": [],
            "list": "",
            "query": request.url.query,
            "subscriber": subscriber or "",
            "picked": sections or frozenset(),
            "widths": WIDTHS,
            "version": studio.version(),
            "view": None,
            "error": None,
            "sections": [],
        }
        status = 200
        try:
            data["lists"] = studio.lists()
            data["list"] = studio.pick(asked)
            data["sections"] = studio.sections(data["list"])
            data["view"] = studio.view(data["list"], subscriber, sections)
        except UnknownList as exc:
            data["error"], status = str(exc), 404
        except DigestError as exc:
            data["error"], status = str(exc), 500
        return HTMLResponse(pages.get_template("index.html.j2").render(data), status_code=status)

    def guarded(make):
        async def endpoint(request: Request) -> Response:
            asked, subscriber, sections = _choice(request)
            try:
                return make(request, studio.view(studio.pick(asked), subscriber, sections))
            except UnknownList as exc:
                return PlainTextResponse(f"error: {exc}\n", status_code=404)
            except DigestError as exc:
                return PlainTextResponse(f"error: {exc}\n", status_code=500)

        return endpoint

    async def version(request: Request) -> Response:
        return JSONResponse({"version": studio.version()})

    async def script(request: Request) -> Response:
        return Response((STUDIO_TEMPLATES / "studio.js").read_bytes(), media_type="text/javascript")

    routes = [
        Route("/", index),
        Route("/version", version),
        Route("/studio.js", script),
        Route(
            "/frame",
            guarded(
                lambda r, v: HTMLResponse(
                    force_scheme(
                        v.html, "dark" if r.query_params.get("scheme") == "dark" else "light"
                    )
                )
            ),
        ),
        Route("/text", guarded(lambda r, v: PlainTextResponse(v.text))),
        Route("/headers", guarded(lambda r, v: PlainTextResponse(v.headers))),
        Route(
            "/check",
            guarded(
                lambda r, v: JSONResponse(
                    {
                        "edition": v.edition,
                        "recipient": v.recipient,
                        "notes": list(v.notes),
                        "findings": [f.as_dict() for f in v.findings],
                    }
                )
            ),
        ),
        Route(
            "/message.eml",
            guarded(
                lambda r, v: Response(
                    v.eml,
                    media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{v.edition}.eml"'},
                )
            ),
        ),
    ]

    @asynccontextmanager
    async def lifespan(_app):
        yield
        studio.close()

    middleware = [Middleware(SecurityHeaders, headers=STUDIO_HEADERS)]
    if hosts is not None:
        middleware.append(Middleware(AllowedHosts, names=hosts))
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def serve(*, host: str = "127.0.0.1", port: int = 8025, list_name: str | None = None) -> None:
    """Run the studio until interrupted."""
    import uvicorn

    load_settings()  # fail now, in one line, rather than on the first page
    # No settings held: each reload reads .env and the environment again.
    uvicorn.run(
        create_app(None, list_name, allowed_hosts(host)),
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
    )
