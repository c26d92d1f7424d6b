"""Constants shared by the test modules: where things are, the tests' clock and secret."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SAMPLES = ROOT / "samples" / "feeds"
EXAMPLE_CSV = ROOT / "subscribers" / "example.csv"
# Usable entries in each sample feed; the sample newsletter's sections are named after them.
SAMPLE_COUNTS = {
    "internet-space.xml": 7,
    "military-space.xml": 7,
    "drone-space.atom": 6,
    "missile-defense.rdf": 6,
    "launch-pad.xml": 7,
}

# The tests' "now": early on the day of the sample edition.
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
# DIGEST_SECRET_KEY of the tests (32 characters, the shortest allowed), and as bytes.
SECRET = "test-secret-key-0123456789abcdef"
SECRET_BYTES = SECRET.encode()
BASE_URL = "https://news.example.com"
