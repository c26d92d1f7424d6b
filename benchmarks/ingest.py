"""Ingest throughput: 200 feeds of 50 entries from a local HTTP server into a fresh SQLite store.

Prints one JSON object: the first pass (every feed fetched, parsed and stored: feeds/s and
articles/s) and a second pass where every feed answers 304 (no parse, nothing stored).
The server runs in its own process on 127.0.0.1 (so it does not share digest's interpreter
lock), so the figures are digest's own cost, not a network's.

Usage: python benchmarks/ingest.py [--feeds 200] [--entries 50] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digest.config import ListConfig, Newsletter, SectionConfig
from digest.feeds import FetchPolicy
from digest.ingest import ingest
from digest.store import open_store

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def feed_bytes(number: int, entries: int) -> bytes:
    items = []
    for n in range(entries):
        published = (NOW - timedelta(minutes=17 * n)).strftime("%a, %d %b %Y %H:%M:%S GMT")
        items.append(
            f"<item><title>Feed {number} story {n}: satellites, launches and more</title>"
            f"<link>https://news.example/{number}/{n}.html?utm_source=rss</link>"
            f"<guid>bench-{number}-{n}</guid><pubDate>{published}</pubDate>"
            f"<author>desk@news.example (Staff Writer {n % 7})</author>"
            f"<category>Section {number % 10}</category>"
            f"<media:content url='https://img.news.example/{number}/{n}.jpg' medium='image'/>"
            f"<description><![CDATA[<p>Washington DC (SPX) Nov 24, 2026 - "
            f"{'A paragraph of the story with <b>markup</b> and a <a href=/x>link</a>. ' * 8}"
            f"</p><script>track()</script>]]></description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel>'
        f"<title>Feed {number}</title><link>https://news.example/{number}/</link>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def serve(feeds: int, entries: int, ready) -> None:
    """The server process: build the feeds, say the port, serve until terminated."""
    httpd = make_server({f"/feed/{n}.xml": feed_bytes(n, entries) for n in range(feeds)})
    ready.put(httpd.server_address[1])
    httpd.serve_forever()


def make_server(bodies: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def do_GET(self) -> None:
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{self.path}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the default 5 drops connection bursts (a 1 s SYN retry)

    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    return httpd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    ready = multiprocessing.Queue()
    server = multiprocessing.Process(
        target=serve, args=(args.feeds, args.entries, ready), daemon=True
    )
    server.start()
    try:
        report = run(args, ready.get(timeout=60))
    finally:
        server.terminate()
        server.join()
    print(json.dumps(report, indent=2))


def run(args, port: int) -> dict:
    urls = [f"http://127.0.0.1:{port}/feed/{n}.xml" for n in range(args.feeds)]
    sections = tuple(
        SectionConfig(slug=f"section-{s}", title=f"Section {s}", feeds=tuple(urls[s::10]))
        for s in range(10)
    )
    letter = Newsletter(
        name="Bench",
        website="https://news.example",
        lists=(
            ListConfig(
                name="daily", title="Daily", sender="b@news.example", postal_address="1 Road"
            ),
        ),
        sections=sections,
    )
    policy = FetchPolicy(retries=0)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{os.path.join(folder, 'bench.db')}")
        started = time.perf_counter()
        first = ingest(store, letter, NOW, policy=policy, concurrency=args.concurrency)
        full = time.perf_counter() - started
        started = time.perf_counter()
        second = ingest(
            store, letter, NOW + timedelta(hours=1), policy=policy, concurrency=args.concurrency
        )
        not_modified = time.perf_counter() - started
        stored = len(store.articles())
        store.close()
    return {
        "feeds": args.feeds,
        "entries_per_feed": args.entries,
        "concurrency": args.concurrency,
        "feed_bytes": len(feed_bytes(0, args.entries)),
        "first_pass": {
            "seconds": round(full, 3),
            "feeds_per_s": round(args.feeds / full, 1),
            "articles_per_s": round(first.added / full, 1),
            "added": first.added,
            "failed": first.failed,
            "parsed": first.parses,
        },
        "second_pass_304": {
            "seconds": round(not_modified, 3),
            "feeds_per_s": round(args.feeds / not_modified, 1),
            "not_modified": sum(f.status == "not-modified" for f in second.feeds),
            "parsed": second.parses,
            "added": second.added,
        },
        "articles_stored": stored,
    }


if __name__ == "__main__":
    main()
