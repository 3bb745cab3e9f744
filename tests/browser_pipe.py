"""A real headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): keys and
mouse clicks as a person gives them, reloads, localStorage kept in a profile folder, downloads saved to a folder.

No package is needed (no websocket client, no Playwright, whose browser download cannot work here): Chromium
reads commands on file descriptor 3 and writes replies and events on 4, each one JSON message ended by a NUL.

A page's localStorage reaches the profile when Chromium commits it, not when the page writes it: on a timer, and
usually, not always, when Chromium is closed (clean-clone CI runs saw a pick's write neither on disk after 30 s nor
after the close; docs/testing.md). So no test closes Chromium and counts on a new one finding what the page stored:
the director coming back to the page is the same browser opening it again (test_review_picks.reopen_page), which
reads the same localStorage through the same page code. What Chromium keeps across its own restart is Chromium's
business, not the page's.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
_NAMED_KEYS = {"Tab": 9, "Enter": 13, "Escape": 27, "PageUp": 33, "PageDown": 34, "End": 35, "Home": 36}
# A touch laptop: a touchpad (a fine pointer that hovers) first, a touch screen (coarse) beside it, so CSS sees
# (pointer:fine), (hover:hover) and (any-pointer:coarse). Emulation.setTouchEmulationEnabled makes a phone (touch alone:
# pointer:coarse, hover:none), and setEmulatedMedia leaves the pointer features alone; Blink's own settings (pointer
# types 2 coarse, 4 fine; hover types 2 hover) set them.
TOUCH_LAPTOP = ("--blink-settings=primaryPointerType=4,availablePointerTypes=6,primaryHoverType=2,"
                "availableHoverTypes=2",)
_KEY_CODES = {**{str(d): 48 + d for d in range(10)}, **{c: ord(c.upper()) for c in "abcdefghijklmnopqrstuvwxyz"}}


class Browser:
    """One Chromium with one tab; ``profile`` holds its localStorage across instances, ``downloads`` its files."""

    def __init__(self, profile: Path, downloads: Path, timeout: float = 60.0, flags: tuple[str, ...] = ()) -> None:
        """``flags``: more of Chromium's command-line switches (a touch laptop's pointers: ``TOUCH_LAPTOP``)."""
        assert CHROMIUM is not None
        self.timeout = timeout
        self.profile = profile
        to_chromium, from_us = os.pipe()
        to_us, from_chromium = os.pipe()

        def on_3_and_4() -> None:  # in the child: the pipe ends where Chromium looks for them
            reads, writes = os.dup(to_chromium), os.dup(from_chromium)  # copies neither dup2 below overwrites
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1280,900", "--force-prefers-reduced-motion",
             # a key's scroll lands at once, not over frames a loaded machine draws late (test_review_picks pages)
             "--disable-smooth-scrolling",
             *flags, "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=on_3_and_4, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)  # its own process group: a kill reaches its children
        os.close(to_chromium)
        os.close(from_chromium)
        self._out = os.fdopen(from_us, "wb", buffering=0)
        self._in = os.fdopen(to_us, "rb", buffering=0)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self._loaders: set[str] = set()  # every document's loader seen: a reload's new one is the one not in it
        try:
            self.session = ""
            self.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads), eventsEnabled=True)
            self.new_tab()
        except BaseException:  # no `with` has taken it yet: nothing else would stop this Chromium
            self._kill()
            self._stop()
            raise

    # -- the protocol ------------------------------------------------------------------------------

    def _message(self, deadline: float) -> dict[str, Any]:
        """The next message; TimeoutError at ``deadline`` (time.monotonic()): a Chromium that hangs without
        closing the pipe fails the test instead of hanging the suite."""
        while b"\0" not in self._buffer:
            if not select.select([self._in], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"Chromium sent nothing for {self.timeout:g} s")
            chunk = self._in.read(1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, page: bool = False, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if page:
            message["sessionId"] = self.session
        self._out.write(json.dumps(message).encode("utf-8") + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str, test: Any = None) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for i in range(seen, len(self.events)):
                if self.events[i].get("method") == event and (test is None or test(self.events[i]["params"])):
                    return self.events.pop(i)["params"]
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            try:
                self.events.append(self._message(deadline))
            except TimeoutError:
                raise TimeoutError(event) from None

    def new_tab(self) -> str:
        """Open a new tab (about:blank, in front of the others) and make it the one commands go to; its session."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", page=True)
        # each document's load comes with the loader that fetched it (Browser.open: which load is this page's)
        self.send("Page.setLifecycleEventsEnabled", page=True, enabled=True)
        return self.session

    # -- what a person does ----------------------------------------------------------------------------

    def open(self, url: str) -> None:
        """Open ``url`` and wait for ITS load: the load event of the document this navigation's loader fetched.
        Page.loadEventFired names no document, and the one waited for was at times the page before's, arriving
        late (about:blank's, on a machine loaded by the parallel suite): the test then read a page whose script
        had not run (3534da5, and every reopen through about:blank). A navigation within the document (only the
        #fragment changes) loads nothing and is done when Page.navigate answers."""
        sent = self.send("Page.navigate", page=True, url=url)
        if "errorText" in sent:
            raise RuntimeError(f"open {url}: {sent['errorText']}")
        if "loaderId" in sent:
            self._loaded(lambda loader: loader == sent["loaderId"], url)

    def reload(self) -> None:
        """Reload the page and wait for the new document's load (Page.reload names no loader: the new one is the
        first not seen before)."""
        self._loaders.update(e["params"]["loaderId"] for e in self.events if e.get("method") == "Page.lifecycleEvent")
        seen = set(self._loaders)
        self.send("Page.reload", page=True)
        self._loaded(lambda loader: loader not in seen, "the reload")

    def _loaded(self, ours: Any, what: str) -> None:
        try:
            done = self.wait_for("Page.lifecycleEvent", lambda p: p["name"] == "load" and ours(p["loaderId"]))
        except TimeoutError:
            raise TimeoutError(f"{what}: its document did not load in {self.timeout:g} s") from None
        self._loaders.add(done["loaderId"])
        # what was seen of earlier documents' loads is theirs: no later wait takes it for a page's
        self._loaders.update(e["params"]["loaderId"] for e in self.events if e.get("method") == "Page.lifecycleEvent")
        self.events = [e for e in self.events if e.get("method") not in ("Page.lifecycleEvent", "Page.loadEventFired")]

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", page=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def poll(self, read: Any, expected: Any, what: str) -> Any:
        """Call ``read()`` until it returns ``expected``, for up to ``timeout`` seconds; fail naming ``what`` and the
        value last read. For what the page's script does not hold but Chromium builds after it (the accessibility
        tree a screen reader is given, updated a frame or more after the DOM): a single read after the load or the
        click came early on a loaded machine."""
        deadline = time.monotonic() + self.timeout
        while True:
            value = read()
            if value == expected:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not in {self.timeout:g} s (last read {value!r}, not {expected!r})")
            time.sleep(0.05)

    def wait_until(self, expression: str, expected: Any, what: str) -> Any:
        """Poll ``expression`` in the page until it equals ``expected``, for up to ``timeout`` seconds: what the
        page does on a timer (the place recorded 400 ms after a scroll stops) comes before or after a single read,
        as the machine is loaded. Fails naming ``what`` never happened, and the value last seen."""
        deadline = time.monotonic() + self.timeout
        while True:
            value = self.js(expression)
            if value == expected:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not in {self.timeout:g} s ({expression} is {value!r}, not {expected!r})")
            time.sleep(0.05)

    def press(self, key: str) -> None:
        code = _KEY_CODES[key]
        common = {"key": key, "code": f"Digit{key}" if key.isdigit() else f"Key{key.upper()}",
                  "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        self.send("Input.dispatchKeyEvent", page=True, type="keyDown", text=key, **common)
        self.send("Input.dispatchKeyEvent", page=True, type="keyUp", **common)

    def key(self, name: str) -> None:
        """A key that types nothing, by its DOM name: ``PageDown``, ``PageUp``, ``Home``, ``End``, ``Tab``; and
        ``Enter``, whose text (a carriage return) is what presses a focused button or follows a link; ``Escape``."""
        code = _NAMED_KEYS[name]
        common = {"key": name, "code": name, "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        if name == "Enter":
            self.send("Input.dispatchKeyEvent", page=True, type="keyDown", text="\r", **common)
        else:
            self.send("Input.dispatchKeyEvent", page=True, type="rawKeyDown", **common)
        self.send("Input.dispatchKeyEvent", page=True, type="keyUp", **common)

    def click(self, selector: str) -> None:
        """A left click in the middle of the first element ``selector`` matches, as a person gives one: its tab brought
        to the front, the element scrolled into view, and the point checked to hit it (or a child) before the mouse
        goes down; then its click event is waited for. Sent blind, a click on a point a banner or another element
        covered, or in a tab behind another, was taken elsewhere or dropped, and the test went on as if it had been
        made (a picks test flaked once in three runs); now it fails there, saying what lies at the point, or that no
        click event reached the element."""
        self.send("Page.bringToFront", page=True)
        where = self.js(f"(function(){{var e=document.querySelector({json.dumps(selector)});if(!e){{return null;}}"
                        "e.scrollIntoView({block:'center',behavior:'instant'});var r=e.getBoundingClientRect(),"
                        "x=r.left+r.width/2,y=r.top+r.height/2,h=document.elementFromPoint(x,y);"
                        "function name(n){return n?n.tagName.toLowerCase()+(n.id?'#'+n.id:'')+"
                        "(n.classList.length?'.'+Array.prototype.join.call(n.classList,'.'):''):'nothing';}"
                        "window.__clickReached=0;e.addEventListener('click',function(){window.__clickReached=1;},"
                        "{once:true,capture:true});"
                        "return {x:x,y:y,hit:!!h&&(h===e||e.contains(h)),there:name(h),"
                        "shown:document.visibilityState};})()")
        if where is None:
            raise AssertionError(f"click {selector}: no element matches")
        if not where["hit"]:
            raise AssertionError(f"click {selector}: what lies at its centre ({where['x']:.0f}, {where['y']:.0f}) is "
                                 f"{where['there']}, not the element")
        if where["shown"] != "visible":
            raise AssertionError(f"click {selector}: its page is {where['shown']} (its tab not in front)")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", page=True, type=kind, x=where["x"], y=where["y"], button="left",
                      clickCount=1)
        # and it arrived: the element's click event ran (the mark is gone with the page when the click opened another)
        deadline = time.monotonic() + min(self.timeout, 5.0)
        while self.js("window.__clickReached") == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"click {selector}: the mouse went down and up at its centre, and no click event "
                                     "reached it")
            time.sleep(0.05)

    def download(self, selector: str) -> Path:
        """Click ``selector`` and wait for the download it starts to complete; the file saved."""
        self.click(selector)
        return self.downloaded()

    def downloaded(self) -> Path:
        """Wait for the download something started (a click, a key) to complete; the file saved."""
        begun = self.wait_for("Browser.downloadWillBegin")
        done = self.wait_for("Browser.downloadProgress",
                             lambda p: p["guid"] == begun["guid"] and p["state"] != "inProgress")
        assert done["state"] == "completed", done
        return Path(done["filePath"])

    def problems(self) -> list[str]:
        """Script errors and console errors so far (a CSP refusal is a console error too)."""
        found = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                found.append(str(event["params"]["exceptionDetails"].get("exception", {}).get("description")))
            elif event.get("method") == "Runtime.consoleAPICalled" and event["params"]["type"] == "error":
                found.append(str(event["params"]["args"]))
            elif event.get("method") == "Log.entryAdded" and event["params"]["entry"]["level"] == "error":
                found.append(event["params"]["entry"]["text"])
        return found

    def close(self, check: bool = True) -> None:
        """Close Chromium as a person closes a browser (``Browser.close``); with ``check`` (the default), fail when
        it did not exit within ``timeout`` of being asked and had to be killed.

        It does not wait for the page's localStorage to reach the profile, nor check it (it did, from 2026-12-01, and
        failed four clean-clone CI runs on Chromium's account; the module's docstring)."""
        if self._out.closed:  # closed already
            return
        if not self._stop() and check:
            raise RuntimeError(f"Chromium did not exit in {self.timeout:g} s after Browser.close and was killed")

    def _stop(self) -> bool:
        """Ask Chromium to close and wait for it; kill it (all its processes) at ``timeout``. True if it exited."""
        with contextlib.suppress(RuntimeError, OSError, TimeoutError):  # a hung Chromium is killed below
            self.send("Browser.close")
        try:
            self.process.wait(timeout=self.timeout)
            exited = True
        except subprocess.TimeoutExpired:
            self._kill()
            exited = False
        self._in.close()
        self._out.close()
        return exited

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(check=kind is None)  # a test failing inside the `with` fails for its own reason
