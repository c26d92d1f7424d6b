"""The suite's network guard: ``socket.connect`` that refuses any IP address off loopback.
``tests/conftest.py`` puts it in place for the whole run."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable


def loopback_only(connect: Callable) -> Callable:
    """``socket.connect`` that refuses any IP address off loopback: a test that would reach
    another machine (a regressed address guard, a stray default) fails here instead."""

    def guarded(sock: socket.socket, address, *args):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                ip = None  # a host name: resolved and connected to by address further down
            if (
                ip is not None
                and not ip.is_loopback
                and not (
                    ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback
                )
            ):
                raise OSError(f"tests connect to loopback only, not {host}")
        return connect(sock, address, *args)

    return guarded
