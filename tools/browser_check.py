"""Open rendered book pages in headless Chromium with the network off and report what is broken.

A reader at a workshop without wifi opens ``_build/html/index.html`` from disk. This script does
the same in a real browser and reports, per page:

- **raw TeX** left in the text (``\\(\\delta\\)``, ``\\[...\\]``, ``$$``, ``\\begin{``, ``\\min``):
  MathJax did not load or did not run; and MathJax's own error boxes (``mjx-merror``);
- **images** that did not load (``complete`` but ``naturalWidth == 0``);
- **console errors**: ``console.error``, uncaught exceptions, and the browser's own error log
  (``Failed to load resource: ...``);
- **network requests** for anything but ``file:``/``data:``/``blob:`` URLs, and failed loads;
- **ipywidgets** whose embedded view was not rendered by the bundled widget manager.

    python tools/browser_check.py _build/html            # every page of the built book
    python tools/browser_check.py _build/html/index.html # one page

The network is off in two ways: every request goes to a proxy on a closed local port and every
host name resolves to nothing (``--proxy-server``, ``--host-resolver-rules``). The browser is
driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages
ending in NUL on file descriptors 3 and 4), with the standard library only: no driver binary
whose version must match the browser's, no browser download, no Python dependency.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Flags that cut the browser off from the network (pages load from file://, which needs none).
OFFLINE_FLAGS = (
    "--proxy-server=127.0.0.1:9",           # discard port: nothing listens, every request fails
    "--proxy-bypass-list=<-loopback>",      # ... even requests for localhost
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
BROWSER_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--mute-audio", "--hide-scrollbars",
    "--window-size=1280,900", "--remote-debugging-pipe",
)
#: DevTools' answers when the page navigated while it was being evaluated (a redirect).
NAVIGATED_AWAY = ("context was destroyed", "navigated or closed", "Cannot find context")
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome-error:")

#: Runs in the page once it has loaded: waits for MathJax's first typeset and for the widget
#: manager, then returns what a reader would see broken. ``%BUDGET%`` is replaced (milliseconds).
REPORT_JS = r"""
(async () => {
  // A redirect page (Jupyter Book's index.html): check the page it leads to instead.
  if (!document.body || document.querySelector('meta[http-equiv="refresh" i]')) return null;
  const budget = %BUDGET%, t0 = Date.now();
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const left = () => Math.max(0, budget - (Date.now() - t0));
  const notes = [];
  // MathJax 3 replaces window.MathJax (the config object Sphinx writes) by itself once loaded.
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    const done = await Promise.race([mj.startup.promise.then(() => true), sleep(left()).then(() => false)]);
    if (!done) notes.push("MathJax did not finish typesetting in time");
  }
  // ipywidgets: embed.js renders every widget-view script on the load event, asynchronously.
  const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
  const rendered = v => {
    const p = v.previousElementSibling;
    return !!(p && p.classList.contains("widget-subarea")
              && p.querySelector(".jupyter-widgets, .widget-inline-hbox, .lm-Widget"));
  };
  while (views.length && !views.every(rendered) && left() > 0) await sleep(50);
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.race([Promise.all(imgs.map(i => i.decode().catch(() => null))), sleep(left())]);
  // Text a reader can see: every text node outside code, scripts and styles.
  const skip = "script, style, noscript, template, textarea, pre, code, kbd, samp, mjx-container";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const tex = /\\[()[\]]|\$\$|\\(?:begin|end)\{|\\[A-Za-z]{2,}/;
  const rawTex = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    const m = n.textContent.match(tex);
    if (m) {
      const s = n.textContent, i = m.index;
      rawTex.push(s.slice(Math.max(0, i - 30), i + 50).replace(/\s+/g, " ").trim());
    }
  }
  return {
    title: document.title,
    mathjax: !!(window.MathJax && window.MathJax.startup),
    mathCount: document.querySelectorAll("mjx-container").length,
    mathErrors: Array.from(document.querySelectorAll("mjx-merror"))
      .map(e => e.getAttribute("data-mjx-error") || e.textContent).slice(0, 5),
    rawTex: rawTex.slice(0, 5), rawTexCount: rawTex.length,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src")),
    imageCount: imgs.length,
    widgetViews: views.length,
    widgetsUnrendered: views.filter(v => !rendered(v)).length,
    notes,
  };
})()
"""


class BrowserError(RuntimeError):
    """Chromium could not be started, or stopped answering."""


@dataclass
class PageReport:
    """What one page showed: its problems (empty: none) and what it rendered, for tests to insist on."""

    url: str
    problems: list[str] = field(default_factory=list)
    math: int = 0            # typeset formulas (MathJax's mjx-container elements)
    images: int = 0          # <img> elements (the broken ones are problems)
    widgets: int = 0         # embedded ipywidgets views (the unrendered ones are problems)


def find_chromium() -> str | None:
    """The Chromium to use: ``$CHROMIUM``, else ``chromium``/``chromium-browser``/``google-chrome`` on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if (Path(env).is_file() or shutil.which(env)) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _high_fd(fd: int) -> int:
    """Move ``fd`` above 10, so that placing the pipes on 3 and 4 in the child cannot clobber them."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Browser:
    """A headless Chromium with the network off, driven over the DevTools protocol on a pipe."""

    def __init__(self, executable: str | None = None, *, offline: bool = True) -> None:
        exe = executable or find_chromium()
        if not exe:
            raise BrowserError("no Chromium found: install Debian's `chromium` (apt-get install chromium) "
                               "or set $CHROMIUM to a Chromium/Chrome binary")
        self._profile = tempfile.TemporaryDirectory(prefix="browser-check-")
        self._log = open(Path(self._profile.name) / "chromium.log", "w+b")
        cmd_r, cmd_w = (_high_fd(fd) for fd in os.pipe())    # we write commands, Chromium reads fd 3
        res_r, res_w = (_high_fd(fd) for fd in os.pipe())    # Chromium writes fd 4, we read

        def _child_fds() -> None:
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        args = [exe, *BROWSER_FLAGS, *(OFFLINE_FLAGS if offline else ()),
                f"--user-data-dir={self._profile.name}", "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     pass_fds=(3, 4), preexec_fn=_child_fds)
        os.close(cmd_r)
        os.close(res_w)
        self._w, self._r = cmd_w, res_r
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.call("Browser.getVersion", timeout=30)

    # -- protocol ---------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None, session: str | None) -> int:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self._w, data):]
        return self._next_id

    def _recv(self, deadline: float) -> dict | None:
        while b"\0" not in self._buf:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], wait)
            if not ready:
                return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the DevTools pipe (exit code {self.proc.poll()}); "
                                   f"its log:\n{self.log_tail()}")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30) -> dict:
        """Send one command and wait for its answer; events that arrive meanwhile are kept."""
        want = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            msg = self._recv(deadline)
            if msg is None:
                raise BrowserError(f"Chromium did not answer {method} within {timeout} s")
            if msg.get("id") == want:
                if "error" in msg:
                    raise BrowserError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, session: str, timeout: float) -> dict | None:
        """Wait for the event ``method`` of ``session`` (already received ones count)."""
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return ev
            msg = self._recv(deadline)
            if msg is None:
                return None
            if "method" in msg:
                self.events.append(msg)

    def log_tail(self, n: int = 2000) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-n:]

    # -- pages ------------------------------------------------------------------------------
    def check_page(self, url: str, *, budget_s: float = 20) -> PageReport:
        """Load ``url`` in a fresh tab and report the problems a reader would see."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.events = [ev for ev in self.events if ev.get("sessionId") != session]
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable", session=session)
            self.call("Page.navigate", {"url": url}, session=session)
            js = REPORT_JS.replace("%BUDGET%", str(int(budget_s * 1000)))
            report = None
            for _ in range(3):  # the page, or the page that a redirect (index.html) leads to
                if self.wait_event("Page.loadEventFired", session, budget_s) is None:
                    return PageReport(url, [f"the page did not finish loading within {budget_s} s"])
                self.events = [ev for ev in self.events if not (
                    ev.get("sessionId") == session and ev.get("method") == "Page.loadEventFired")]
                try:
                    res = self.call("Runtime.evaluate",
                                    {"expression": js, "awaitPromise": True, "returnByValue": True},
                                    session=session, timeout=budget_s + 10)
                except BrowserError as exc:
                    if not any(m in str(exc) for m in NAVIGATED_AWAY):
                        raise
                    continue  # navigated away while being checked: check where it went
                if "exceptionDetails" in res:
                    return PageReport(url, [f"the page check itself failed: {res['exceptionDetails'].get('text')}"])
                report = res["result"].get("value")
                if report is not None:
                    break
            if report is None:
                return PageReport(url, ["the page kept redirecting"])
            events = [ev for ev in self.events if ev.get("sessionId") == session]
            return PageReport(url, _problems(report, events), math=report["mathCount"],
                              images=report["imageCount"], widgets=report["widgetViews"])
        finally:
            self.call("Target.closeTarget", {"targetId": target})
            self.events = [ev for ev in self.events if ev.get("sessionId") != session]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._w, self._r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _short(url: str, n: int = 120) -> str:
    return url if len(url) <= n else url[: n - 3] + "..."


def _problems(report: dict, events: list[dict]) -> list[str]:
    """Turn the page's report and the DevTools events into readable problems."""
    out: list[str] = []
    if report["rawTexCount"]:
        out.append(f"raw TeX in the text ({report['rawTexCount']} places; MathJax loaded: "
                   f"{report['mathjax']}), e.g. " + " | ".join(repr(s) for s in report["rawTex"][:3]))
    for err in report["mathErrors"]:
        out.append(f"MathJax could not typeset: {err!r}")
    for src in report["brokenImages"]:
        out.append(f"image did not load: {src}")
    if report["widgetsUnrendered"]:
        out.append(f"{report['widgetsUnrendered']} of {report['widgetViews']} ipywidgets were not rendered")
    out += report["notes"]
    requested: dict[str, str] = {}
    for ev in events:
        method, p = ev.get("method"), ev.get("params", {})
        if method == "Network.requestWillBeSent":
            url = p["request"]["url"]
            requested[p["requestId"]] = url
            if not url.startswith(LOCAL_SCHEMES):
                out.append(f"network request (the page needs the network): {_short(url)}")
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            url = requested.get(p["requestId"], "?")
            if url.startswith(LOCAL_SCHEMES):  # remote ones are reported above already
                out.append(f"failed to load {_short(url)}: {p.get('errorText')}")
        elif method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = (d.get("exception") or {}).get("description") or d.get("text", "")
            out.append(f"uncaught exception: {text.splitlines()[0] if text else d}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append(f"console.{p['type']}: {_short(args, 200)}")
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            e = p["entry"]
            out.append(f"console error ({e.get('source')}): {_short(e.get('text', ''), 200)}"
                       + (f" [{_short(e['url'])}]" if e.get("url") else ""))
    return list(dict.fromkeys(out))  # each problem once, in order


def pages(root: Path) -> list[Path]:
    """The HTML pages under ``root`` (a built book), or ``root`` itself if it is a file."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is neither an HTML file nor a folder of built pages")
    return sorted(p for p in root.rglob("*.html")
                  if not any(part in ("_static", "_sources", "_images") for part in p.relative_to(root).parts))


def check(paths: list[Path], *, chromium: str | None = None, budget_s: float = 20) -> dict[Path, PageReport]:
    """Check every page in ``paths`` in one offline browser."""
    with Browser(chromium) as browser:
        return {p: browser.check_page(p.resolve().as_uri(), budget_s=budget_s) for p in paths}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="a built book (e.g. _build/html) or one HTML page")
    ap.add_argument("--chromium", default=None, help="the browser binary (default: $CHROMIUM or chromium on PATH)")
    ap.add_argument("--budget", type=float, default=20, help="seconds per page to load and typeset (default 20)")
    args = ap.parse_args(argv)
    results = check(pages(args.path), chromium=args.chromium, budget_s=args.budget)
    bad = [p for p, r in results.items() if r.problems]
    for p, r in results.items():
        print(f"{'FAIL' if r.problems else 'ok  '} {p} ({r.math} formulas, {r.images} images, {r.widgets} widgets)")
        for prob in r.problems:
            print(f"       - {prob}")
    print(f"{len(results) - len(bad)} of {len(results)} pages render offline without problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
