"""A page's DOM from headless Chromium once a condition holds in it, over the DevTools protocol on a pipe.

`--dump-dom --virtual-time-budget=N` dumps the DOM when N ms of *virtual* time have
passed. Virtual time waits for the page's own tasks and network fetches, not for
work on other threads: an <audio> element's metadata is demuxed on the media thread
after its file is read, so on a loaded machine the budget can run out (in a few real
milliseconds, once the page is idle) before `loadedmetadata` fires, and the dump
lacks what that event writes. Here the test asks the page itself, in real time,
until the condition it needs is true, then takes the DOM: nothing races.

The protocol runs on `--remote-debugging-pipe`: Chromium reads commands on fd 3 and
writes replies and events on fd 4, each a JSON text ended by a NUL byte (no port,
no websocket library).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import time


class _Browser:
    """One headless Chromium with the DevTools protocol on its fds 3 (commands) and 4 (replies)."""

    def __init__(self, argv: list[str]):
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def fds_3_and_4():
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen([*argv, "--remote-debugging-pipe"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, pass_fds=(3, 4),
                                     preexec_fn=fds_3_and_4)
        os.close(to_child)
        os.close(from_child)
        self._buf, self._id = b"", 0

    def call(self, method: str, params: dict | None = None, session: str | None = None, deadline: float = 0.0):
        """Send one command and return its result (the events in between are dropped)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._in], [], [], left)[0]:
                    raise TimeoutError(f"Chromium did not answer {method} in time")
                chunk = os.read(self._in, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium closed its DevTools pipe during {method}: "
                                       f"{self.proc.stderr.read().decode(errors='replace')[-2000:]}")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self):
        try:
            self.call("Browser.close", deadline=time.monotonic() + 10)
        except (OSError, RuntimeError, TimeoutError):
            pass
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc.stderr.close()
            os.close(self._out)
            os.close(self._in)


def dom_when(argv: list[str], url: str, ready: str, timeout_s: float = 120) -> str:
    """`document.documentElement.outerHTML` of `url` once the JavaScript expression `ready` is true in the page.

    `argv`: Chromium and its flags (headless). `timeout_s` bounds a page that never gets there (then the error
    says so); a page that does is read as soon as it does."""
    deadline = time.monotonic() + timeout_s
    browser = _Browser([*argv, url])
    try:
        while True:
            pages = [t for t in browser.call("Target.getTargets", deadline=deadline)["targetInfos"]
                     if t["type"] == "page" and t["url"] == url]
            if pages:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"Chromium opened no page at {url} in {timeout_s:g} s")
            time.sleep(0.05)
        session = browser.call("Target.attachToTarget", {"targetId": pages[0]["targetId"], "flatten": True},
                               deadline=deadline)["sessionId"]

        def evaluate(expression, until=None):
            return browser.call("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                                session=session, deadline=until or deadline)["result"].get("value")

        while not evaluate(f"Boolean({ready})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: `{ready}` still false after {timeout_s:g} s; the body's attributes: "
                                   + str(evaluate("JSON.stringify(Object.fromEntries(Array.from("
                                                  "document.body ? document.body.attributes : [], "
                                                  "a => [a.name, a.value.slice(0, 80)])))",
                                                  until=time.monotonic() + 10)))
            time.sleep(0.1)
        return evaluate("document.documentElement.outerHTML")
    finally:
        browser.close()
