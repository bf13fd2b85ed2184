"""Headless Chromium driven over the Chrome DevTools Protocol, with Python's standard library
only: find the binary, start it, send commands, read events, wait until a page has settled.

Chromium runs with ``--remote-debugging-pipe``: it reads commands from its file descriptor 3
and writes replies and events to its fd 4, each message JSON ended by a NUL byte, so no
websocket package is needed.  It starts headless with a throw-away profile and no background
networking (this machine refuses its outgoing connections).  Every failure of the browser
(not found, exited, a command refused, a page that cannot be evaluated) is a
``ChromiumError`` with one line; a reply that does not come in time is a ``TimeoutError``
naming what was awaited.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--remote-debugging-pipe",
)


class ChromiumError(Exception):
    """Chromium not found, exited, or refused a command: one line."""


def find_chromium(given: str | None) -> str:
    """The Chromium binary: ``given``, ``$CHROMIUM`` or the first of the usual names on PATH."""
    for candidate in (given, os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    raise ChromiumError("Chromium not found: install it (Debian: apt-get install -y chromium) "
                        "or pass --chromium PATH")


class DevTools:
    """A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``.

    Starts ``chromium`` with ``profile`` as its user data folder and a ``width`` x ``height``
    window.  ``call`` sends one command and waits for its reply; events that arrive meanwhile
    are kept for ``events``.  ``close`` ends the browser.
    """

    def __init__(self, chromium: str, profile: Path, width: int, height: int) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds() -> None:  # runs in the child: the pipes become its fds 3 and 4
            # first above 10, so that neither clobbers the other when one of them is 3 or 4
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)  # inheritable, unlike the pipes

        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=child_fds,  # fds 3 and 4 stay open (dup2 made them
        )  # inheritable); every other fd of ours is close-on-exec, Python's default
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            raise ChromiumError(f"Chromium exited before {method}: {self._last_words()}") from None
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, method)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ChromiumError(f"Chromium refused {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def events(self, session: str) -> list[dict[str, Any]]:
        """The events of ``session`` that arrived so far (taken off the queue); never waits."""
        while select.select([self._from_chrome], [], [], 0)[0] or b"\0" in self._buffer:
            message = self._read(time.monotonic() + 5, "events")
            if "method" in message:
                self._events.append(message)
        mine = [e for e in self._events if e.get("sessionId") == session]
        self._events = [e for e in self._events if e.get("sessionId") != session]
        return mine

    def _read(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(waiting_for)
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_chrome, 1 << 20)
            if not chunk:
                raise ChromiumError(f"Chromium exited while waiting for {waiting_for}: "
                                    f"{self._last_words()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _last_words(self) -> str:
        """The last line Chromium wrote to stderr (it has exited)."""
        err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
        return (err.strip().splitlines() or ["no output"])[-1]

    def close(self) -> None:
        with contextlib.suppress(ChromiumError, TimeoutError, OSError):
            self.call("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()  # our own child, by its handle
            self.process.wait()
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)


def evaluate(tools: DevTools, session: str, expression: str) -> dict[str, Any]:
    """Run ``expression`` (JavaScript returning a JSON string) in the page; its value, parsed."""
    reply = tools.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                       session=session)
    if "exceptionDetails" in reply:
        details = reply["exceptionDetails"]
        what = details.get("exception", {}).get("description") or details.get("text")
        raise ChromiumError(f"measuring script failed: {what}")
    return json.loads(reply["result"]["value"])


def settle(tools: DevTools, session: str, measure_js: str, timeout: float, quiet: float = 1.5,
           ) -> tuple[dict[str, Any], bool]:
    """Wait until the page has loaded, no request has been in flight (bar those open for 10 s:
    long polls), the DOM has not changed for ``quiet`` seconds and no image is pending (the MLflow UI
    renders after its API calls); return the last measurement and whether the page settled
    within ``timeout`` seconds.

    The session needs the ``Page`` and ``Network`` domains enabled.  ``measure_js`` is
    evaluated every 0.25 s and must report ``domSize`` (a number that changes with the DOM),
    ``pending`` (images not yet complete) and ``readyState`` (``document.readyState``)."""
    deadline = time.monotonic() + timeout
    loaded, quiet_since, last_size = False, time.monotonic(), -1
    inflight: dict[str, float] = {}  # request id -> when it was sent
    measured: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for event in tools.events(session):
            method, params = event["method"], event.get("params", {})
            if method == "Page.loadEventFired":
                loaded = True
            elif method == "Network.requestWillBeSent":
                inflight[params.get("requestId")] = time.monotonic()
            elif method in ("Network.loadingFinished", "Network.loadingFailed"):
                inflight.pop(params.get("requestId"), None)
            else:
                continue
            quiet_since = time.monotonic()
        try:
            measured = evaluate(tools, session, measure_js)
        except ChromiumError:  # the page is between documents (navigating): measure again
            measured = {}
            time.sleep(0.25)
            continue
        if measured["domSize"] != last_size:
            last_size, quiet_since = measured["domSize"], time.monotonic()
        # a request open for 10 s is a long poll or a stream, not a page still loading
        waiting = [t for t in inflight.values() if time.monotonic() - t < 10]
        if (loaded and not waiting and not measured["pending"]
                and measured["readyState"] == "complete" and time.monotonic() - quiet_since >= quiet):
            return measured, True
        time.sleep(0.25)
    if not measured:
        raise ChromiumError(f"the page could not be measured within {timeout:g} s")
    return measured, False
