"""The archive's routes: thin handlers over ``digest.pipeline``'s archive documents, with
conditional GET.

Every answer carries an ETag (a hash of its bytes) and, when it shows an edition, a
Last-Modified (when that edition, or the newest one shown, was frozen); a request whose
If-None-Match matches, or (without one) whose If-Modified-Since is not older, gets 304 with
no body. An edition's page is frozen, so caches may keep it for a week; index pages and
feeds change when an edition goes out, so they are kept five minutes. These pages hold no
token, which is why they alone may be cached (``SecurityHeaders`` keeps their
Cache-Control).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from email.utils import format_datetime, parsedate_to_datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from digest import pipeline
from digest.archive.urls import EDITION_KEY

FROZEN_CACHE = "public, max-age=604800"  # an edition's page: a week
FRESH_CACHE = "public, max-age=300"  # index pages and feeds: five minutes


def conditional(request: Request, document: pipeline.ArchiveDocument) -> Response:
    """``document`` as a response, or 304 when the client's copy is current."""
    etag = '"' + hashlib.sha256(document.body).hexdigest()[:32] + '"'
    headers = {
        "etag": etag,
        "cache-control": FROZEN_CACHE if document.frozen else FRESH_CACHE,
    }
    if document.last_modified is not None:
        headers["last-modified"] = format_datetime(document.last_modified, usegmt=True)
    if _not_modified(request, etag, document):
        return Response(status_code=304, headers=headers)
    return Response(document.body, media_type=document.media_type, headers=headers)


def _not_modified(request: Request, etag: str, document: pipeline.ArchiveDocument) -> bool:
    # RFC 9110 13.2.2: If-None-Match, when present, decides; If-Modified-Since only without it.
    match = request.headers.get("if-none-match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("if-modified-since")
    if since is None or document.last_modified is None:
        return False
    try:
        client = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if client.tzinfo is None:
        return False
    return document.last_modified.replace(microsecond=0) <= client


def archive_routes(ctx: pipeline.Context, missing: Callable[[], Response]) -> list[Route]:
    """The routes of ``/archive/``; ``missing`` answers what is not there (404)."""
    copies = pipeline.ArchiveCopies()  # editions are frozen: each is rendered once

    async def answer(
        request: Request, find: Callable[[], pipeline.ArchiveDocument | None]
    ) -> Response:
        document = await run_in_threadpool(find)
        return missing() if document is None else conditional(request, document)

    async def root(request: Request) -> Response:
        return await answer(request, lambda: pipeline.archive_root(ctx))

    async def index(request: Request) -> Response:
        name = request.path_params["list"]
        page = request.path_params.get("page", 1)
        return await answer(request, lambda: pipeline.archive_index(ctx, name, page))

    async def edition(request: Request) -> Response:
        name, key = request.path_params["list"], request.path_params["key"]
        if not EDITION_KEY.fullmatch(key):
            return missing()
        return await answer(request, lambda: pipeline.archive_edition(ctx, name, key, copies))

    async def feed(request: Request) -> Response:
        name = request.path_params["list"]
        return await answer(request, lambda: pipeline.archive_feed(ctx, name, copies))

    return [
        Route("/archive/", root, methods=["GET"]),
        Route("/archive/{list}.atom", feed, methods=["GET"]),
        Route("/archive/{list}/", index, methods=["GET"]),
        Route("/archive/{list}/page/{page:int}", index, methods=["GET"]),
        Route("/archive/{list}/{key}", edition, methods=["GET"]),
    ]
