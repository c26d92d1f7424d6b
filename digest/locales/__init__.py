"""The message catalogs: ``digest.pot`` (the wording to translate) and one
``<language>/LC_MESSAGES/digest.po`` per language (see ``digest.i18n``)."""
