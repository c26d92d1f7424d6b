"""The subscriber side: who may be mailed, and how people arrive and leave.

- ``addresses``: the one normal form of an address and the key it is matched by; safe names;
- ``policy``: the consent policy, the one table of who may become active and how;
- ``files``: import and export files (CSV, JSON lines);
- ``confirmation``: the double opt-in mail;
- ``tokens``: the signed tokens of the links in a digest;
- ``bounces``: reading returned mail and complaints.

Pure but for reading files and mailboxes: storing is the store's job, and wiring it together
``digest.pipeline.people``'s.
"""

from digest.audience.addresses import clean_name, email_key, needs_smtputf8, normalize_email
from digest.audience.tokens import make_token, read_token

__all__ = [
    "clean_name",
    "email_key",
    "make_token",
    "needs_smtputf8",
    "normalize_email",
    "read_token",
]
