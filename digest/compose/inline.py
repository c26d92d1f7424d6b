"""CSS inlining, kept behind one function so premailer's pitfalls are handled in one place.

premailer is configured so it does not break an email:

- ``allow_network=False``: a template can never make rendering fetch anything;
- ``keep_style_tags=True`` and ``strip_important=False``: the ``<style>`` in ``<head>``
  (media queries, dark mode, ``[data-ogsc]``) is kept verbatim, ``!important`` included,
  instead of being re-serialized by cssutils, which drops rules it does not understand;
- ``disable_validation=True`` and cssutils' logger silenced: vendor properties such as
  ``mso-line-height-rule`` are normal in email and must not print warnings;
- cssutils' ``minimizeColorHash`` off: it would shorten ``#111111`` to ``#111``, which some
  clients (older Outlook among them) do not understand;
- ``disable_basic_attributes`` for width and height: the template sets those attributes.

The CSS to inline comes separately (``css``, from ``base.css``) and is applied to elements
only, never copied into ``<head>``: Gmail caps ``<style>`` at 16 KB, so the head holds only what
cannot be inline.
"""

from __future__ import annotations

import logging

import cssutils
from premailer import Premailer

_SILENT = logging.CRITICAL + 1


def _quiet_cssutils() -> None:
    # cssutils keeps these as process-wide settings; set them every time in case anything
    # else in the process changed them.
    cssutils.ser.prefs.minimizeColorHash = False
    cssutils.log.setLevel(_SILENT)


def inline_css(html: str, css: str = "") -> str:
    """``html`` with ``css`` (and plain rules of its own ``<style>`` blocks) inlined.

    ``<style>`` blocks stay in the document unchanged; MSO conditional comments and the
    doctype pass through untouched.
    """
    _quiet_cssutils()
    premailer = Premailer(
        css_text=[css] if css.strip() else None,
        allow_network=False,
        allow_loading_external_files=False,
        strip_important=False,
        keep_style_tags=True,
        # Without a head target the inlined CSS is not also pasted into <head>.
        disable_leftover_css=True,
        disable_validation=True,
        cssutils_logging_level=_SILENT,
        # premailer would otherwise turn relative links absolute against a base we never give.
        disable_link_rewrites=True,
        # width/height attributes are the template's (Outlook sizes by them); premailer would
        # overwrite them from CSS, e.g. width="100%" on an image meant to be 552 pixels wide.
        disable_basic_attributes=["width", "height"],
    )
    return premailer.transform(html, pretty_print=False)
