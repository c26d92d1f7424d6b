"""The Starlette app: routes and thin handlers over ``digest.pipeline``.

Every token page answers the same 404 page for a forged, stale or used token and for one of
a subscriber who is gone, so a response never tells whether an address is subscribed. Only
POST changes anything: GET and HEAD (which Starlette routes to the GET handler) never do,
since mail scanners and link checkers fetch links; the one-click unsubscribe POST answers
200 without a redirect (RFC 8058). A POST from another origin's page and a body over 64 KB
are refused before any handler runs. A link's page grants its own purpose only: the
unsubscribe page hands out no preferences link, and the view-in-browser page (the link
readers forward) names nobody and carries no token that acts. Store calls run in the thread
pool so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from digest import pipeline
from digest.audience.tokens import edition_token, make_token, read_edition_token, read_token
from digest.config import ListConfig, Newsletter, Settings
from digest.errors import SubscriberError
from digest.models import Membership, SubscriberRecord
from digest.periods import KEY_PATTERN
from digest.store import Store
from digest.web.archive import archive_routes
from digest.web.mailer import ConfirmationMailer
from digest.web.pages import Pages
from digest.web.security import (
    AllowedHosts,
    BodyLimit,
    SameOriginPosts,
    SecurityHeaders,
    edge_hosts,
    origin_of,
)

_EDITION_KEY = KEY_PATTERN


def _now() -> datetime:
    return datetime.now(UTC)


class Edge:
    """The handlers, sharing the pipeline context, the secret and the page renderer."""

    def __init__(self, ctx: pipeline.Context, pages: Pages, mailer: ConfirmationMailer):
        self.ctx, self.pages, self.mailer = ctx, pages, mailer
        self.secret = ctx.settings.require_secret()

    # -- helpers ----------------------------------------------------------------------------

    def _list(self, name: str) -> ListConfig | None:
        return next((lst for lst in self.ctx.newsletter.lists if lst.name == name), None)

    async def _reader(
        self, token: str, purpose: str
    ) -> tuple[SubscriberRecord, Membership, ListConfig] | None:
        found = await run_in_threadpool(pipeline.reader, self.ctx, token, purpose)
        lst = None if found is None else self._list(found.list_name)
        if found is None or lst is None:
            return None
        return found.record, found.membership, lst

    def invalid(self) -> Response:
        _ = self.pages.gettext(None)
        return self.pages.render("invalid.html.j2", status=404, title=_("Link not valid"))

    def cross_origin(self) -> Response:
        _ = self.pages.gettext(None)
        return self.pages.render(
            "refused.html.j2",
            status=403,
            title=_("Not sent from here"),
            why=_("This form was not sent from this site's own page."),
        )

    def too_large(self) -> Response:
        _ = self.pages.gettext(None)
        return self.pages.render(
            "refused.html.j2",
            status=413,
            title=_("Too large"),
            why=_("The form sent was larger than any form of this site."),
        )

    def _token(self, record: SubscriberRecord, lst: ListConfig, purpose: str) -> str:
        return make_token(self.secret, record.id, lst.name, purpose)

    # -- unsubscribe (RFC 8058) -------------------------------------------------------------

    async def unsubscribe(self, request: Request) -> Response:
        reader = await self._reader(request.path_params["token"], "unsubscribe")
        if reader is None:
            return self.invalid()
        record, membership, lst = reader
        _ = self.pages.gettext(lst)
        # An unsubscribe token grants unsubscribing only: these pages link to no preferences.
        if request.method != "POST":  # GET, and HEAD (which Starlette routes here too)
            return self.pages.render(
                "unsubscribe.html.j2",
                title=_("Unsubscribe"),
                lst=lst,
                already=membership.state == "unsubscribed",
            )
        await run_in_threadpool(pipeline.unsubscribe, self.ctx, record.email, lst.name, _now())
        return self.pages.render("unsubscribed.html.j2", title=_("Unsubscribed"), lst=lst)

    # -- preferences ------------------------------------------------------------------------

    async def preferences(self, request: Request) -> Response:
        token = request.path_params["token"]
        reader = await self._reader(token, "preferences")
        if reader is None:
            return self.invalid()
        record, membership, lst = reader
        sections = self.ctx.newsletter.sections_of(lst)
        if request.method == "POST":
            form = await request.form()
            error = await self._save(record, lst, form)
            if error is None:
                return RedirectResponse(f"/p/{token}?saved=1", status_code=303)
        else:
            error = None
        found = await run_in_threadpool(pipeline.reader, self.ctx, token, "preferences")
        if found is None:
            return self.invalid()
        membership, chosen = found.membership, found.membership.sections
        _ = self.pages.gettext(lst)
        return self.pages.render(
            "preferences.html.j2",
            title=_("Your preferences"),
            lst=lst,
            membership=membership,
            sections=[(s.slug, s.title, chosen is None or s.slug in chosen) for s in sections],
            frequencies=_frequencies(lst),
            frequency=membership.frequency or lst.cadence.kind,
            # A list that delivers at each reader's own hour asks for the reader's zone.
            zones=_zones() if lst.deliver_local else (),
            zone=found.record.timezone or "",
            saved="saved" in request.query_params and error is None,
            error=error,
            blocked=found.blocked,
            status=400 if error else 200,
        )

    async def _save(self, record: SubscriberRecord, lst: ListConfig, form: FormData) -> str | None:
        action, now = form.get("action", "save"), _now()
        try:
            if action == "unsubscribe":
                await run_in_threadpool(pipeline.unsubscribe, self.ctx, record.email, lst.name, now)
            elif action == "resubscribe":
                await run_in_threadpool(pipeline.resubscribe, self.ctx, record.email, lst.name, now)
            else:
                await run_in_threadpool(
                    pipeline.save_web_preferences,
                    self.ctx,
                    record.email,
                    lst.name,
                    now,
                    chosen=[str(v) for v in form.getlist("section")],
                    pause=form.get("pause") == "on",
                    frequency=str(form["frequency"]) if "frequency" in form else None,
                    timezone=str(form["timezone"]) if "timezone" in form else None,
                )
        except SubscriberError as exc:
            if action == "resubscribe":
                _ = self.pages.gettext(lst)
                return _("This address cannot be subscribed again from here.")
            return exc.message
        return None

    # -- view in browser: the shared copy ---------------------------------------------------

    async def view(self, request: Request) -> Response:
        key, token = request.path_params["key"], request.path_params["token"]
        if not _EDITION_KEY.fullmatch(key):
            return self.invalid()
        list_name = read_edition_token(self.secret, token, key)
        if list_name is None:
            # A personal view link mailed before links became shared opens the same copy.
            found = read_token(self.secret, token, "view")
            list_name = found[1] if found else None
        if list_name is None or self._list(list_name) is None:
            return self.invalid()
        shared = edition_token(self.secret, list_name, key)  # never an old personal one
        html = await run_in_threadpool(
            pipeline.shared_edition,
            self.ctx,
            list_name,
            key,
            f"{self.ctx.settings.base_url}/e/{key}/{shared}",
        )
        return self.invalid() if html is None else HTMLResponse(html)

    async def shared(self, request: Request) -> Response:
        lst = self._list(request.query_params.get("list", "")) or self.ctx.newsletter.lists[0]
        return self.pages.render("shared.html.j2", title=lst.title, lst=lst)

    # -- sign-up with double opt-in ---------------------------------------------------------

    async def subscribe(self, request: Request) -> Response:
        lists = self.ctx.newsletter.lists
        # A page opened for one list (?list=L, the archive's link, a publisher's form) offers
        # that list and its sections only; without one, the reader picks the list.
        named = self._list(request.query_params.get("list", ""))
        lst = named or lists[0]
        # A publisher's own form (see README) opens this page with the address filled in.
        values: dict = {
            "email": request.query_params.get("email", "")[:320],
            "name": request.query_params.get("name", "")[:200],
        }
        error, status = None, 200
        if request.method == "POST":
            form = await request.form()
            lst = self._list(str(form.get("list", ""))) or lst
            values = {
                "email": str(form.get("email", ""))[:320],
                "name": str(form.get("name", ""))[:200],
            }
            _ = self.pages.gettext(lst)
            if form.get("website"):  # the field people never see: a bot filled it in
                return self.pages.render(
                    "check_inbox.html.j2", title=_("Check your inbox"), lst=lst
                )
            known = [s.slug for s in self.ctx.newsletter.sections_of(lst)]
            chosen = [slug for slug in form.getlist("section") if slug in known]
            try:
                # Only queued here, whatever the address: the same work, the same answer.
                queued = await run_in_threadpool(
                    pipeline.request_subscription,
                    self.ctx,
                    values["email"],
                    values["name"],
                    lst.name,
                    None if not chosen or set(chosen) == set(known) else frozenset(chosen),
                    _now(),
                    request.client.host if request.client else None,
                    str(form.get("frequency", "")) or None,
                )
            except SubscriberError as exc:
                error, status = exc.message, 400
            else:
                if not queued:
                    return self.pages.render(
                        "unavailable.html.j2",
                        status=429,
                        title=_("Please try again later"),
                        lst=lst,
                    )
                self.mailer.wake()
                return self.pages.render(
                    "check_inbox.html.j2", title=_("Check your inbox"), lst=lst
                )
        _ = self.pages.gettext(lst)
        return self.pages.render(
            "subscribe.html.j2",
            title=_("Subscribe to %(list)s") % {"list": lst.title},
            lst=lst,
            lists=[lst] if named else lists,
            fixed=named is not None,
            sections=self.ctx.newsletter.sections_of(lst),
            frequencies=_frequencies(lst),
            values=values,
            error=error,
            status=status,
        )

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        if request.method != "POST":  # GET, and HEAD (which Starlette routes here too)
            name = await run_in_threadpool(pipeline.confirmation_open, self.ctx, token, _now())
            lst = self._list(name) if name else None
            if lst is None:
                return self.invalid()
            _ = self.pages.gettext(lst)
            return self.pages.render(
                "confirm.html.j2", title=_("Confirm your subscription"), lst=lst
            )
        ip = request.client.host if request.client else None
        done = await run_in_threadpool(pipeline.confirm_subscription, self.ctx, token, _now(), ip)
        lst = self._list(done[1]) if done else None
        if done is None or lst is None:
            return self.invalid()
        sid = done[0]
        prefs = f"/p/{make_token(self.secret, sid, lst.name, 'preferences')}"
        _ = self.pages.gettext(lst)
        return self.pages.render(
            "confirmed.html.j2", title=_("You are subscribed"), lst=lst, preferences=prefs
        )


_HOW_OFTEN = {"daily": "Every day", "weekly": "Once a week", "monthly": "Once a month"}


def _frequencies(lst: ListConfig) -> list[tuple[str, str]]:
    """The frequencies a reader of the list may choose, worded for the form (none when the
    list offers only its own schedule)."""
    offered = list(lst.offered)
    return [(kind, _HOW_OFTEN[kind]) for kind in offered] if len(offered) > 1 else []


@functools.cache
def _zones() -> tuple[str, ...]:
    """The IANA time zones a reader may choose, by name (the aliases kept for old data,
    such as "US/Eastern" or "Etc/GMT+5", left out)."""
    import zoneinfo

    return tuple(
        sorted(
            zone
            for zone in zoneinfo.available_timezones()
            if "/" in zone and zone.split("/")[0] not in {"Etc", "US", "SystemV"}
        )
    )


def create_app(settings: Settings, newsletter: Newsletter, store: Store) -> Starlette:
    """The ASGI app of the public edge, on an open store. Its lifespan runs the sender of
    confirmation mails (``ConfirmationMailer``)."""
    ctx = pipeline.Context(settings, newsletter, store)
    ctx.sync()
    mailer = ConfirmationMailer(ctx)
    edge = Edge(ctx, Pages(settings.templates, newsletter), mailer)

    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", edge.subscribe, methods=["GET"]),
        Route("/subscribe", edge.subscribe, methods=["GET", "POST"]),
        Route("/c/{token}", edge.confirm, methods=["GET", "POST"]),
        Route("/u/{token}", edge.unsubscribe, methods=["GET", "POST"]),
        Route("/p/{token}", edge.preferences, methods=["GET", "POST"]),
        Route("/e/{key}/{token}", edge.view, methods=["GET"]),
        Route("/shared", edge.shared, methods=["GET"]),
        Route("/healthz", health, methods=["GET"]),
        *archive_routes(ctx, edge.invalid),
    ]
    origin = origin_of(settings.base_url) or settings.base_url
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders, own=frozenset({"cache-control"})),
            # The public name and loopback (a reverse proxy that passes its upstream's name):
            # a page that rebinds its own name to this server is refused.
            Middleware(AllowedHosts, names=edge_hosts(settings.base_url)),
            Middleware(SameOriginPosts, origin=origin, refuse=edge.cross_origin),
            Middleware(BodyLimit, refuse=edge.too_large),
        ],
        exception_handlers={
            404: lambda r, e: edge.invalid(),
            405: lambda r, e: PlainTextResponse("method not allowed", status_code=405),
        },
        lifespan=lambda _app: mailer.running(),
    )
