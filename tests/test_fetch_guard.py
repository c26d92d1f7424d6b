"""The fetcher's address guard, against real HTTP servers on loopback: the operator's feed may
be anywhere, but a redirect off its origin (or a URL from feed content) may only reach public
addresses, and is refused before any connection is made otherwise."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from digest.errors import FeedError
from digest.feeds import fetch, new_client
from digest.feeds.guard import FeedTransport, GuardedBackend, kind_of
from tests.support.httpd import NO_RETRY, FeedServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'


@pytest.mark.parametrize(
    "target,kind",
    [
        ("http://10.20.30.40/feed.xml", "10.20.30.40 is a private address"),
        ("http://192.168.1.1/feed.xml", "192.168.1.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://[fe80::1]/feed.xml", "fe80::1 is a link-local address"),
        ("http://224.0.0.1/feed.xml", "224.0.0.1 is a multicast address"),
        ("http://0.0.0.0/feed.xml", "0.0.0.0 is an unspecified address"),
        ("http://[::ffff:127.0.0.1]/feed.xml", "::ffff:127.0.0.1 is a loopback address"),
    ],
)
def test_a_redirect_to_a_non_public_address_is_refused_before_connecting(target, kind):
    with FeedServer() as server:
        source = server.add("/feed.xml", status=302, location=target)
        with pytest.raises(FeedError) as info:
            fetch(source, policy=NO_RETRY)
    assert str(info.value) == (
        f"{source}: redirected to {target}, but {kind}: refused (only the feeds written in "
        "digest.toml may be on loopback or private addresses)"
    )


def test_a_redirect_to_another_loopback_server_is_refused_and_never_reaches_it():
    with FeedServer() as configured, FeedServer() as internal:
        secret = internal.add("/admin", body=FEED)
        source = configured.add("/feed.xml", status=301, location=secret)
        named = configured.add(
            "/by-name.xml", status=301, location=secret.replace("127.0.0.1", "localhost")
        )
        with pytest.raises(FeedError, match=r"127\.0\.0\.1 is a loopback address: refused"):
            fetch(source, policy=NO_RETRY)
        loopback = r"localhost is a loopback address \((127\.0\.0\.1|::1)\)"
        with pytest.raises(FeedError, match=loopback):
            fetch(named, policy=NO_RETRY)
        assert internal.requests == []


def test_the_operators_own_loopback_feed_and_its_same_origin_redirects_are_fetched():
    with FeedServer() as server:
        server.add("/feed.xml", body=FEED)
        source = server.add("/old.xml", status=301, location="/feed.xml")
        result = fetch(source, policy=NO_RETRY)
    assert (result.status, result.content, result.redirects) == ("ok", FEED, 1)


def test_a_url_from_feed_content_may_not_reach_loopback():
    with FeedServer() as server:
        url = server.add("/feed.xml", body=FEED)
        assert fetch(url, policy=NO_RETRY).status == "ok"  # the operator's: allowed
        with pytest.raises(FeedError, match=r"127\.0\.0\.1 is a loopback address: refused"):
            fetch(url, policy=NO_RETRY, trusted=False)
        assert len(server.requests_to("/feed.xml")) == 1


def test_the_guard_connects_to_the_address_it_checked_not_to_a_second_lookup():
    # `rebind.test` exists only in this resolver (.test is reserved, the system resolver has
    # no answer): reaching the server proves the connection went to the checked address.
    lookups = []

    def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    loopback_allowed = GuardedBackend(resolve=resolve, allowed=lambda ip: ip.is_loopback)
    transport = FeedTransport(limits=httpx.Limits(), backend=loopback_allowed)
    with FeedServer() as server, new_client(transport=transport) as client:
        server.add("/feed.xml", body=FEED)
        url = server.url("/feed.xml").replace("127.0.0.1", "rebind.test")
        result = fetch(url, client=client, policy=NO_RETRY, trusted=False)
    assert result.content == FEED and lookups == ["rebind.test"]


def test_a_host_with_any_non_public_address_is_refused():
    def resolve(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.5"]  # never connected to: 10.0.0.5 refuses the host

    transport = FeedTransport(limits=httpx.Limits(), backend=GuardedBackend(resolve=resolve))
    refused = r"mixed\.test is a private address \(10\.0\.0\.5\)"
    with new_client(transport=transport) as client, pytest.raises(FeedError, match=refused):
        fetch("http://mixed.test/feed.xml", client=client, policy=NO_RETRY, trusted=False)


def test_fetch_refuses_a_client_that_does_not_guard_redirects():
    with httpx.Client() as plain, pytest.raises(TypeError, match="new_client"):
        fetch("http://127.0.0.1:9/feed.xml", client=plain)


@pytest.mark.parametrize(
    "address,public",
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.53", False),
        ("::1", False),
        ("10.1.1.1", False),
        ("172.16.0.1", False),
        ("100.64.0.1", False),
        ("fd00::1", False),
        ("169.254.1.1", False),
        ("239.255.255.250", False),
        ("ff02::1", False),
        ("192.0.2.1", False),
        ("64:ff9b::a00:1", False),
        ("2002:a00:1::1", False),
        ("64:ff9b::5db8:d70e", True),
    ],
)
def test_which_addresses_count_as_public(address, public):
    assert (kind_of(ipaddress.ip_address(address)) is None) is public
