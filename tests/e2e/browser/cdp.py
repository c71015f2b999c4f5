"""Pages as headless Chromium renders them, over the Chrome DevTools Protocol (run by tests/e2e/browser.rs).

usage: cdp.py < SPEC.json        (the tests)
       cdp.py URL [URL ...]      (by hand: default options, screenshots in the current folder)

SPEC: {"timeout": 60, "width": 1280, "height": 800, "pages": [PAGE, ...]}, every key but "pages"
and each PAGE's "url" optional:
  {"url": "http://127.0.0.1:PORT/…" or "file:///…",
   "selector": "svg, img, [data-chart]",   the elements to measure
   "eval": {"NAME": "JS expression", …},    e.g. "[...document.querySelectorAll('.tile .value')]
                                            .map(e => e.textContent)"; promises are awaited
   "wait_for": "JS expression",             polled after the load event until truthy
   "wait_ms": 0,                            then slept, for late scripts
   "screenshot": "/abs/page.png",           full page, `width` wide
   "pdf": "/abs/page.pdf"}                  printed: A4, backgrounds

Prints one JSON object: {"browser": "Chrome/…", "pages": [REPORT, …]}, a REPORT per PAGE in order:
  {"url": …, "status": 200 (the main document's HTTP status; null if none came),
   "error": null or the navigation's net error (e.g. "net::ERR_CONNECTION_REFUSED"),
   "console_errors": [{"source": "console"|"exception"|"log", "text": …, "url": …}],
   "elements": [{"tag": "svg", "id": …, "class": …, "width": 300.0, "height": 200.0}],
   "eval": {"NAME": value}, "eval_errors": {"NAME": "the exception's text"},
   "screenshot": path or null, "pdf": path or null}
console_errors gathers console.error/console.assert, uncaught exceptions (and rejected promises)
and the browser's own error log (a subresource that failed to load, a 404 image, a CSP refusal),
except a failed /favicon.ico at the page's origin, which Chromium asks for on its own (late, so
reporting it would make the errors depend on timing).
Errors are gathered until the page's report is done (after its evals, screenshot and PDF): one
that comes later is not seen, hence `wait_for`/`wait_ms` for pages that draw after loading.
What a page says is data: the exit status is 0 whatever the pages did. A harness failure (no
Chromium, the browser died, `wait_for` never true, `timeout` seconds passed for the whole run)
exits 1 with a message on stderr. Chromium runs in a temporary profile, killed (its whole process
group) and the profile removed on every way out; if this script is itself SIGKILLed, Chromium
still dies (PR_SET_PDEATHSIG) but the profile stays in $TMPDIR (doracost-cdp-*).

Runs `chromium` from PATH (Debian's; $CHROMIUM names another binary). Standard library only: the
websocket is the few lines of RFC 6455 a DevTools client needs.
"""
import base64
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

DEFAULT_SELECTOR = "svg, img, [data-chart]"


class Failure(Exception):
    """The harness could not do its job (not: the page has errors)."""


def on_alarm(_signum, _frame):
    raise Failure("overall timeout: the browser did not finish in time (a page never loaded?)")


def on_term(signum, _frame):
    raise Failure(f"stopped by signal {signum}")


# ---- a websocket client (RFC 6455), client side only: masked text frames out, frames in.

class WebSocket:
    def __init__(self, host, port, path, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        status = self.file.readline()
        if b" 101 " not in status:
            raise Failure(f"DevTools websocket handshake refused: {status!r}")
        while self.file.readline() not in (b"\r\n", b""):
            pass

    def send(self, text):
        payload = text.encode()
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        mask = os.urandom(4)
        # XOR with the repeated mask as one big-integer operation (fast for any size).
        full = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(full, "big")).to_bytes(n, "big")
        self.sock.sendall(head + mask + masked)

    def _exact(self, n):
        data = self.file.read(n)
        if data is None or len(data) < n:
            raise Failure("the DevTools websocket closed (did the browser crash?)")
        return data

    def recv(self):
        """The next whole text message (continuation frames joined, pings answered)."""
        parts = []
        while True:
            b0, b1 = self._exact(2)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._exact(8))
            mask = self._exact(4) if b1 & 0x80 else None
            data = self._exact(n)
            if mask:
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
            if opcode == 0x8:
                raise Failure("the browser closed the DevTools websocket")
            if opcode == 0x9:  # ping: answer with a masked pong of the same payload
                self.sock.sendall(struct.pack("!BB", 0x8A, 0x80 | len(data)) + b"\0\0\0\0" + data)
                continue
            if opcode == 0xA:
                continue
            parts.append(data)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---- the protocol: one browser connection, pages as flattened sessions.

class Browser:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []  # (sessionId, method, params), in arrival order

    def call(self, method, params=None, session=None):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failure(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})

    def _read(self):
        message = json.loads(self.ws.recv())
        if "method" in message:
            self.events.append((message.get("sessionId"), message["method"], message.get("params", {})))
        return message

    def wait_event(self, session, method, start, match=lambda params: True):
        """Waits for `method` on `session` (with params that `match`) among the events from index
        `start` on."""
        seen = start
        while True:
            for sid, name, params in self.events[seen:]:
                if sid == session and name == method and match(params):
                    return params
            seen = len(self.events)
            self._read()

    def evaluate(self, session, expression):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            return None, exception_text(result["exceptionDetails"])
        return result.get("result", {}).get("value"), None


def exception_text(details):
    exception = details.get("exception") or {}
    return exception.get("description") or str(exception.get("value", "")) or details.get("text", "")


def console_text(args):
    out = []
    for arg in args:
        if "value" in arg:
            out.append(arg["value"] if isinstance(arg["value"], str) else json.dumps(arg["value"]))
        else:
            out.append(arg.get("description") or arg.get("type", ""))
    return " ".join(out)


MEASURE = """(selector => [...document.querySelectorAll(selector)].map(e => {
  const r = e.getBoundingClientRect();
  return {tag: e.tagName.toLowerCase(), id: e.id || null,
          class: e.getAttribute('class'), width: r.width, height: r.height};
}))(%s)"""


def visit(browser, page, spec, deadline):
    url = page["url"]
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable", {}, session)
    browser.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": spec["width"], "height": spec["height"], "deviceScaleFactor": 1, "mobile": False},
        session,
    )
    start = len(browser.events)
    nav = browser.call("Page.navigate", {"url": url}, session)
    report = {"url": url, "status": None, "error": nav.get("errorText") or None}
    if not report["error"]:
        # The load event of this navigation's document (not of the tab's first about:blank).
        browser.wait_event(
            session, "Page.lifecycleEvent", start,
            lambda e: e.get("name") == "load" and e.get("frameId") == nav.get("frameId")
            and e.get("loaderId") == nav.get("loaderId"),
        )
        if page.get("wait_for"):
            while True:
                value, error = browser.evaluate(session, page["wait_for"])
                if value and not error:
                    break
                if time.monotonic() > deadline:
                    raise Failure(f"{url}: wait_for never true: {page['wait_for']} ({error or value!r})")
                time.sleep(0.1)
        if page.get("wait_ms"):
            time.sleep(page["wait_ms"] / 1000)

    elements, error = browser.evaluate(session, MEASURE % json.dumps(page.get("selector", DEFAULT_SELECTOR)))
    if error:
        raise Failure(f"{url}: measuring elements: {error}")
    report["elements"] = elements or []
    report["eval"], report["eval_errors"] = {}, {}
    for name, expression in page.get("eval", {}).items():
        value, error = browser.evaluate(session, expression)
        if error:
            report["eval_errors"][name] = error
        else:
            report["eval"][name] = value

    report["screenshot"] = None
    if page.get("screenshot"):
        size = browser.call("Page.getLayoutMetrics", {}, session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(size["width"], spec["width"]), "height": size["height"], "scale": 1}
        shot = browser.call(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            session,
        )
        write(page["screenshot"], shot["data"])
        report["screenshot"] = page["screenshot"]
    report["pdf"] = None
    if page.get("pdf"):
        pdf = browser.call(
            "Page.printToPDF",
            {"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": True},
            session,
        )
        write(page["pdf"], pdf["data"])
        report["pdf"] = page["pdf"]

    # Everything the page said from the navigation on (the calls above read it off the socket).
    errors, main_frame = [], nav.get("frameId")
    for sid, method, params in browser.events[start:]:
        if sid != session:
            continue
        if method == "Network.responseReceived" and params.get("type") == "Document" \
                and params.get("frameId") == main_frame:
            report["status"] = params["response"].get("status")
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            frame = (params.get("stackTrace") or {}).get("callFrames") or [{}]
            errors.append({"source": "console", "text": console_text(params.get("args", [])),
                           "url": frame[0].get("url")})
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            errors.append({"source": "exception", "text": exception_text(details), "url": details.get("url")})
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            if is_implicit_favicon(entry.get("url"), url):
                continue
            errors.append({"source": "log", "text": entry.get("text", ""), "url": entry.get("url")})
    report["console_errors"] = errors
    browser.call("Target.closeTarget", {"targetId": target})
    browser.events = []
    return report


def is_implicit_favicon(resource, page):
    """The browser's own request for /favicon.ico at the page's origin, made whatever the page
    says (a page's declared icon elsewhere is the page's, and reported)."""
    if not resource or not page.startswith(("http://", "https://")):
        return False
    scheme, _, rest = page.partition("://")
    return resource == f"{scheme}://{rest.split('/')[0]}/favicon.ico"


def write(path, b64):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as out:
        out.write(base64.b64decode(b64))


def die_with_parent():
    """In the child: Chromium is killed if this script dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run(spec):
    deadline = time.monotonic() + spec["timeout"]
    profile = tempfile.mkdtemp(prefix="doracost-cdp-")
    log_path = os.path.join(profile, "chromium.log")
    chromium, ws = None, None
    try:
        with open(log_path, "wb") as log:
            try:
                chromium = subprocess.Popen(
                    [
                        os.environ.get("CHROMIUM", "chromium"),
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--remote-debugging-port=0", f"--user-data-dir={profile}",
                        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                        "--hide-scrollbars", "--mute-audio", "about:blank",
                    ],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, preexec_fn=die_with_parent,
                )
            except FileNotFoundError:
                raise Failure("chromium is not on PATH (CI installs Debian's chromium)") from None
        # Chromium writes "PORT\n/devtools/browser/ID" once it listens.
        port_file = os.path.join(profile, "DevToolsActivePort")
        while True:
            try:
                with open(port_file) as f:
                    lines = f.read().split("\n")
                if len(lines) >= 2 and lines[0].isdigit() and lines[1].startswith("/"):
                    break
            except FileNotFoundError:
                pass
            if chromium.poll() is not None:
                raise Failure(f"chromium exited with {chromium.returncode}:\n{tail(log_path)}")
            if time.monotonic() > deadline:
                raise Failure(f"chromium did not open its DevTools port:\n{tail(log_path)}")
            time.sleep(0.05)
        # The socket's own timeout is a backstop: the overall alarm fires first.
        ws = WebSocket("127.0.0.1", int(lines[0]), lines[1], timeout=spec["timeout"] + 5)
        browser = Browser(ws)
        version = browser.call("Browser.getVersion")
        pages = [visit(browser, page, spec, deadline) for page in spec["pages"]]
        return {"browser": version.get("product"), "pages": pages}
    except Failure as e:
        if chromium is not None and chromium.poll() is not None:
            raise Failure(f"{e}\nchromium exited with {chromium.returncode}:\n{tail(log_path)}") from None
        raise
    finally:
        signal.alarm(0)  # the clean-up below is bounded on its own; let nothing interrupt it
        if ws is not None:
            ws.close()
        if chromium is not None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(chromium.pid, sig)  # the browser and its renderer, GPU and zygote processes
                except ProcessLookupError:
                    break
                try:
                    chromium.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            # The group may outlive its leader for a moment; make sure nothing stays.
            try:
                os.killpg(chromium.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(profile, ignore_errors=True)


def tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


def read_spec(argv):
    if argv:
        spec = {"pages": [{"url": url, "screenshot": os.path.abspath(f"page-{i}.png")}
                          for i, url in enumerate(argv)]}
    else:
        try:
            spec = json.load(sys.stdin)
        except json.JSONDecodeError as e:
            raise Failure(f"the spec on stdin is not JSON: {e}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("pages"), list) \
            or not all(isinstance(p, dict) and isinstance(p.get("url"), str) for p in spec["pages"]):
        raise Failure('the spec must be {"pages": [{"url": …}, …], …}')
    for key, default in (("timeout", 60), ("width", 1280), ("height", 800)):
        spec.setdefault(key, default)
        if not isinstance(spec[key], int) or spec[key] <= 0:
            raise Failure(f"the spec's {key!r} must be a positive integer")
    return spec


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        spec = read_spec(sys.argv[1:])
        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(int(spec["timeout"]) + 1)
        out = run(spec)
        signal.alarm(0)
    except TimeoutError:
        print("cdp.py: error: timed out waiting for the browser", file=sys.stderr)
        sys.exit(1)
    except (Failure, OSError) as e:
        print(f"cdp.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
