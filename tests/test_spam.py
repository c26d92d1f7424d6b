"""SpamAssassin's local rules score the demo edition and the 8 x 8 edition 0.0, in both layouts
(rich and compact; `-s` prints the rules each hit): a message that starts with points for its
own markup (text coloured like its background, say) has less room left for a receiver's
network rules. Runs Debian's `spamassassin -L -t` (CI installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from digest.compose import Recipient, make_environment, personalize
from tests.support.cli import load_sample, run, sample_settings, set_settings
from tests.support.editions import compose, long_edition
from tests.support.newsletters import list_config
from tests.support.values import SECRET_BYTES


def _spamassassin() -> str:
    binary = shutil.which("spamassassin")
    if binary is None:
        reason = "spamassassin is not installed (Debian: apt-get install spamassassin)"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs it: a missing one is a broken CI, not a skip
        pytest.skip(reason)
    return binary


def _score(raw: bytes, label: str) -> tuple[float, str]:
    """The local rules' score of a message, and the rules it hit (printed for the log)."""
    done = subprocess.run(
        [_spamassassin(), "-L", "-t"], input=raw, capture_output=True, timeout=120, check=False
    )
    report = done.stdout.decode("utf-8", "replace")
    found = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", report, re.M)
    assert found, report[-2000:]
    details = report.split("Content analysis details:", 1)[-1]
    print(f"{label}: score {found.group(1)}{details}")
    return float(found.group(1)), details


@pytest.mark.parametrize("layout", ["rich", "compact"])
def test_the_demo_edition_scores_zero(monkeypatch, tmp_path, db_url, layout):
    config = list_config(tmp_path, layout=layout)
    set_settings(monkeypatch, sample_settings(db_url, DIGEST_CONFIG=str(config)))
    load_sample()
    run("preview", "--out", str(tmp_path / "preview"))
    score, details = _score((tmp_path / "preview" / "digest.eml").read_bytes(), f"demo, {layout}")
    assert score <= 0.0, details


@pytest.mark.parametrize("layout", ["rich", "compact"])
def test_the_8x8_edition_scores_zero(newsletter, layout):
    lst = newsletter.get_list("daily").model_copy(update={"layout": layout})
    _, template = compose(long_edition(), newsletter, lst, make_environment())
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    score, details = _score(raw, f"8 x 8, {layout}")
    assert score <= 0.0, details


@pytest.mark.parametrize("locale", ["de", "ar"])
def test_an_edition_in_another_language_scores_zero(newsletter, locale):
    from tests.support.editions import golden_edition

    lst = newsletter.get_list("daily").model_copy(update={"locale": locale})
    _, template = compose(
        golden_edition(newsletter), newsletter, lst, make_environment(locale=locale)
    )
    raw = personalize(template, Recipient(1, "reader@example.com"), secret=SECRET_BYTES).raw
    score, details = _score(raw, f"golden, {locale}")
    assert score <= 0.0, details
