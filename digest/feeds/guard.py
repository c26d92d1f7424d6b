"""Where a fetch may connect: the operator's addresses, and public ones for everything else.

A feed URL written in digest.toml (or given to ``digest feeds check``) is the operator's
choice and may name any host, loopback and private networks included. A URL that comes from
what a server sent (a redirect's ``Location`` today; any link taken from feed content) may not
reach loopback, private, link-local, multicast or otherwise non-public addresses: a feed
must not be able to make the fetcher read an internal service and mail its answer out.

The check is made on the resolved addresses and the connection goes to the very address
checked, so a host name cannot resolve to a public address for the check and to a private
one for the connection (DNS rebinding). It happens in the network backend under httpx, at
connect time, before any packet is sent: ``GuardedBackend`` resolves, checks every address,
and connects to a checked one. ``FeedTransport`` holds two connection pools, the operator's
(unchecked) and the guarded one, and sends a request through the guarded pool when it is
marked ``UNTRUSTED``; connections are never shared between the two.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpcore
import httpx

UNTRUSTED = "digest.untrusted"  # request extension: the URL came from a server, not the operator

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


class RefusedAddress(Exception):
    """A URL from feed content or a redirect resolved to an address that is not public."""

    def __init__(self, host: str, address: str, kind: str):
        super().__init__(
            f"{host} is {kind} ({address})" if host != address else f"{address} is {kind}"
        )
        self.host, self.address, self.kind = host, address, kind


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: a gateway reaches the IPv4 inside


def kind_of(address: IPAddress) -> str | None:
    """What makes ``address`` off limits ("a loopback address", ...), or None if it is public.
    An IPv6 address carrying an IPv4 one (mapped, 6to4, NAT64) is judged by the IPv4 one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address.sixtofour is not None:
            address = address.sixtofour
        elif address in _NAT64:
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a reserved address"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the system resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.NetworkBackend):
    """Connects only to public addresses: resolves the host, refuses it if any of its
    addresses is not public, and connects to the checked addresses themselves."""

    def __init__(
        self,
        resolve: Resolver = system_resolver,
        allowed: Callable[[IPAddress], bool] | None = None,
    ):
        self._backend = httpcore.SyncBackend()
        self._resolve = resolve
        self._allowed = allowed  # None: public addresses only (tests widen it)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._checked(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host}")

    def _checked(self, host: str, port: int) -> list[str]:
        try:
            ipaddress.ip_address(host.strip("[]"))
            addresses = [host.strip("[]")]  # a literal address: nothing to resolve
        except ValueError:
            try:
                addresses = self._resolve(host, port)
            except (socket.gaierror, UnicodeError) as exc:
                raise httpcore.ConnectError(
                    f"[Errno {getattr(exc, 'errno', '')}] {getattr(exc, 'strerror', None) or exc}"
                ) from None
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if self._allowed is not None:
                if not self._allowed(address):
                    raise RefusedAddress(host, text, "not allowed")
            elif kind := kind_of(address):
                raise RefusedAddress(host, text, kind)
        return addresses

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class FeedTransport(httpx.BaseTransport):
    """Two pools: the operator's URLs go straight out; requests marked ``UNTRUSTED`` go
    through ``GuardedBackend``. Proxies from the environment are not used: the check must
    see the address actually connected to."""

    def __init__(self, *, limits: httpx.Limits, backend: GuardedBackend | None = None):
        self._direct = httpx.HTTPTransport(limits=limits)
        self._guarded = httpx.HTTPTransport(limits=limits)
        # httpx takes no network backend: the guarded pool's is set here (tests/test_guard.py
        # checks that it is the one connecting, so an httpx upgrade cannot undo it silently).
        pool = self._guarded._pool
        assert isinstance(pool, httpcore.ConnectionPool)
        pool._network_backend = backend or GuardedBackend()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pool = self._guarded if request.extensions.get(UNTRUSTED) else self._direct
        return pool.handle_request(request)

    def close(self) -> None:
        self._direct.close()
        self._guarded.close()
