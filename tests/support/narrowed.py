"""A real store seen through one of the protocols of ``digest.store.protocols``: a stage
given it fails the test on the first member it uses beyond the protocol."""

from __future__ import annotations

from typing import Protocol


def protocol_members(protocol: type) -> set[str]:
    """The public methods a protocol (and the protocols it extends) declares."""
    return {
        name
        for cls in protocol.__mro__
        if Protocol in cls.__mro__[1:]
        for name, value in vars(cls).items()
        if callable(value) and not name.startswith("_")
    }


class Narrowed:
    def __init__(self, store, protocol: type):
        self._store = store
        self._protocol = protocol.__name__
        self._allowed = protocol_members(protocol)

    def __getattr__(self, name: str):
        if name not in self._allowed:
            raise AssertionError(f"used Store.{name}, which {self._protocol} does not declare")
        return getattr(self._store, name)
