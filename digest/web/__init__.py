"""The public edge: the web pages a reader reaches from a digest or the sign-up form.

``create_app(settings, newsletter, store)`` returns a Starlette ASGI app (``digest serve``
runs it on uvicorn). Every page is a thin handler over ``digest.pipeline`` and the store;
the capability is the signed token in the URL, and only POST changes anything (GET and
HEAD never do; a POST from another origin's page, or over 64 KB, is refused):

    GET  /subscribe            sign-up form            POST: queue it (``mailer`` mails it)
    GET  /c/<token>            confirm page            POST: activate (once)
    GET  /u/<token>            unsubscribe page        POST: unsubscribe at once (RFC 8058)
    GET  /p/<token>            preferences             POST: sections, pause, unsubscribe
    GET  /e/<edition>/<token>  the shared copy of an edition (names nobody, acts for no one)
    GET  /shared               where a reader's own links are
    GET  /healthz              "ok"
    GET  /archive/...          the public archive and its Atom feeds (``digest.web.archive``)
"""

from digest.web.app import create_app

__all__ = ["create_app"]
