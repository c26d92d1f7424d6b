"""The public edge: the web pages a reader reaches from a digest or the sign-up form.

``create_app(settings, newsletter, store)`` returns a Starlette ASGI app (``digest serve``
runs it on uvicorn). Every page is a thin handler over ``digest.pipeline`` and the store;
the capability is the signed token in the URL, and only POST changes anything:

    GET  /subscribe            sign-up form            POST: store pending, mail confirm link
    GET  /c/<token>            confirm page            POST: activate (once)
    GET  /u/<token>            unsubscribe page        POST: unsubscribe at once (RFC 8058)
    GET  /p/<token>            preferences             POST: sections, pause, unsubscribe
    GET  /e/<edition>/<token>  the edition as this reader got it
    GET  /healthz              "ok"
"""

from digest.web.app import create_app

__all__ = ["create_app"]
