"""Accessibility audits with axe-core in the headless chromium of ``tests.support.browser``.

axe-core is the npm package, at the exact version the Makefile pins, installed by ``make axe``
(which ``make test`` runs) into ``build/axe``; it is never fetched from anywhere but the npm
registry. ``find_axe()`` gives its script, running ``make axe`` first; without it (no npm, or
npm could not install it) the caller skips with the reason, or fails under CI.

``open_audited(browser, target, width, script, dark=...)`` opens a page with the script in
every frame (iframes too); ``audit(page)`` runs the WCAG 2.0 and 2.1 level A and AA rules
over it and returns the violations. A violation of impact ``serious`` or ``critical`` fails
a test (``failing``); ``moderate`` and ``minor`` ones are reported without failing
(``notices``). docs/decisions.md says why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.browser import Browser, Page
from tests.support.values import ROOT

AXE_JS = ROOT / "build" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
FAILING = frozenset({"serious", "critical"})

RUN = """axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]})
  .then(result => result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.flat().join(" | "))})))"""


@dataclass(frozen=True)
class Violation:
    id: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.id} ({self.impact}): {self.help}: {', '.join(self.targets)}"


def under_ci() -> bool:
    """Whether this run is CI's (``CI`` set and not false): what a test needs must be there."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_axe() -> tuple[str | None, str]:
    """(axe-core's script, "") once ``make axe`` has installed the pinned version (it does
    nothing when that is done), else (None, why not)."""
    if shutil.which("make"):
        subprocess.run(
            ["make", "--no-print-directory", "-C", str(ROOT), "axe"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    if AXE_JS.is_file():
        return AXE_JS.read_text(encoding="utf-8"), ""
    if not shutil.which("npm"):
        return None, "axe-core is not installed and npm is missing (apt-get install npm)"
    return None, f"`make axe` did not install axe-core at {AXE_JS}"


def axe_or_skip() -> str:
    """axe-core's script; skips the test without it, or fails it under CI."""
    script, why = find_axe()
    if script is None:
        if under_ci():
            pytest.fail(f"{why}; CI is set, so the accessibility tests must run")
        pytest.skip(why)
    return script


def open_audited(
    browser: Browser, target: Path | str, width: int, script: str, *, dark: bool = False
) -> Page:
    """``target`` (a file or a URL) at ``width`` px, axe-core loaded in each of its frames."""
    return browser.page(target, width, dark=dark, script=script)


def audit(page: Page) -> list[Violation]:
    """The WCAG 2.0/2.1 A and AA violations axe-core finds in the page and its frames."""
    found = page.evaluate(RUN % json.dumps(list(TAGS)), await_promise=True)
    return [
        Violation(v["id"], v["impact"] or "minor", v["help"], tuple(v["targets"])) for v in found
    ]


def failing(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.impact in FAILING]


def notices(violations: list[Violation]) -> list[Violation]:
    return [v for v in violations if v.impact not in FAILING]


def describe(where: str, violations: list[Violation]) -> str:
    """One line per violation, under the name of the page they were found in."""
    return "\n".join([f"{where}:", *(f"  {v}" for v in violations)])
