"""Headless Debian chromium driven over the DevTools protocol on a pipe (no websockets).

``Browser`` starts ``/usr/bin/chromium --headless --remote-debugging-pipe`` with a fresh
profile; the protocol runs over file descriptors 3 (to chromium) and 4 (from it), each
message one JSON text ended by a NUL byte. ``Browser.page(html, width)`` loads a document at
a viewport width (or a URL, e.g. a local server's page), optionally in dark mode and with a
script run in every frame before the page's own (axe-core, see ``tests.support.axe``), and
evaluates expressions (awaiting a promise when asked) or takes a screenshot.

``find_chromium()`` returns the binary, installing Debian's ``chromium`` package with apt-get
when it is missing and the process may do so (root, apt-get present); otherwise the caller
skips with the reason. A browser is never downloaded from anywhere else.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.values import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    # No network: remote images fail at once instead of waiting on DNS.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
# Where the rendering tests save their screenshots for review. Read at import: the autouse
# fixture clears DIGEST_* variables before each test runs.
SCREENSHOTS = Path(os.environ.get("DIGEST_SCREENSHOTS") or ROOT / "build" / "screenshots")


def find_chromium() -> tuple[str | None, str]:
    """(path, "") when chromium can run, else (None, why not)."""
    path = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path:
        return path, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed (apt-get install chromium) and cannot be here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            return None, f"installing Debian's chromium failed: {done.stderr.strip()[-200:]}"
    path = shutil.which("chromium")
    return (path, "") if path else (None, "apt-get installed no chromium binary")


class Browser:
    def __init__(self, binary: str, timeout: float = 30):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="digest-chromium-")
        to_child, self._send = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:  # in the child: the protocol's fds must be exactly 3 and 4
            high_in, high_out = os.dup(to_child), os.dup(from_child)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self._process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={self._profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire,
            close_fds=False,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id, self._events = b"", 0, []

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str, session: str) -> dict:
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(index)
            self._events.append(self._receive())

    def _receive(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium exited")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def page(
        self,
        path: Path | str,
        width: int,
        *,
        dark: bool = False,
        height: int = 900,
        script: str | None = None,
    ) -> Page:
        """``path``: a file, or (a string) a URL. ``script`` runs in every frame of the page
        (its iframes too) before the page's own scripts, whatever its Content-Security-Policy
        allows: the DevTools protocol adds it, not the page."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session)
        if script is not None:
            self.call("Page.addScriptToEvaluateOnNewDocument", session, source=script)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.call(
            "Emulation.setEmulatedMedia",
            session,
            features=[{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}],
        )
        url = path if isinstance(path, str) else path.resolve().as_uri()
        self.call("Page.navigate", session, url=url)
        self.wait_event("Page.loadEventFired", session)
        return Page(self, session, target)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):
            self.call("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._send)
        os.close(self._read)
        shutil.rmtree(self._profile, ignore_errors=True)


class Page:
    def __init__(self, browser: Browser, session: str, target: str):
        self.browser, self.session, self.target = browser, session, target

    def evaluate(self, expression: str, *, await_promise: bool = False):
        """The expression's value; with ``await_promise``, the value its promise settles to."""
        result = self.browser.call(
            "Runtime.evaluate",
            self.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit(self, expression: str) -> None:
        """Runs ``expression``, which submits a form or clicks its button, and waits for the
        page it loads (after any redirect)."""
        self.evaluate(expression)
        self.browser.wait_event("Page.loadEventFired", self.session)

    def screenshot(self, path: Path) -> None:
        data = self.browser.call(
            "Page.captureScreenshot", self.session, format="png", captureBeyondViewport=True
        )["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.browser.call("Target.closeTarget", targetId=self.target)
