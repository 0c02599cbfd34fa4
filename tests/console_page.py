"""Driving the Spindle Console (/console) in headless Chromium: the browser and the steps every Console
test takes. The `browser` fixture (tests/e2e/conftest.py) is built here; Debian's chromium and
chromium-driver, which the Makefile installs, are required: a machine without them fails the Console's
tests, saying so, and never skips them. Screenshots go to tests/screenshots/ (ignored by git), or to
$SPINDLE_SCREENSHOTS_DIR: `make screenshots` takes README's into tests/console-screenshots/."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

SCREENSHOTS = Path(os.environ.get("SPINDLE_SCREENSHOTS_DIR") or Path(__file__).resolve().parent / "screenshots")
WAIT_SECONDS = 30  # how long a step waits for the page to show what the API answered (a busy machine is slow)
T = TypeVar("T")


def chromium() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "Headless Chromium is needed for the Console tests: install Debian's chromium and chromium-driver "
        "(`make` does, with apt-get, when it runs as root)"
    )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.implicitly_wait(WAIT_SECONDS)  # a find waits for the view the API's answer draws
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield session
    finally:
        session.quit()


def paste_key(browser: Any, server: Any, key: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.root_url + "/console#/key")
    field = browser.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "use-key").click()


def open_view(browser: Any, server: Any, fragment: str) -> None:
    """Opens the Console at `#fragment` (the key already pasted in this tab), loading the page afresh."""
    browser.get(server.root_url + "/console#" + fragment)
    browser.refresh()


def wait_for(browser: Any, condition: Callable[[Any], T], seconds: float = WAIT_SECONDS) -> T:
    """`condition(browser)` once it is true; asked again while the page is still being replaced."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(browser, seconds, poll_frequency=0.05, ignored_exceptions=ignored).until(condition)


def error_shown(browser: Any) -> str:
    """The error box's text, once the API's answer fills it (the box is always there, hidden)."""
    from selenium.webdriver.common.by import By

    return wait_for(browser, lambda page: page.find_element(By.ID, "error").text)


class StagePrefix:
    """API Gateway's stage in front of a server: a loopback proxy that serves `<server>/x` at `/api/x`
    and nothing else, as `https://<id>.execute-api.<region>.amazonaws.com/api/...` does; whole replies
    (no streaming), which is all the Console's pages and lists need."""

    def __init__(self, upstream: str) -> None:
        import threading
        import urllib.error
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Forward(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                pass

            def _forward(self) -> None:
                if not self.path.startswith("/api/"):
                    self.send_error(403, "Missing stage")  # what API Gateway answers a path outside its stage
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {name: value for name, value in self.headers.items() if name.lower() != "host"}
                request = urllib.request.Request(upstream + self.path[4:], body, headers, method=self.command)
                try:
                    reply = urllib.request.urlopen(request, timeout=30)
                except urllib.error.HTTPError as refused:
                    reply = refused
                content = reply.read()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _forward  # noqa: N815 - the stdlib's names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="stage-prefix", daemon=True)
        self._thread.start()
        self.root_url = f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fresh_key() -> str:
    """A key of a project of its own (the open-auth server makes one of any key)."""
    return f"sk-console-{uuid.uuid4().hex}"


def shown(browser: Any, css: str) -> list[str]:
    """The text of every element `css` selects in the page right now (read in one script, so a view
    that shows itself again meanwhile cannot leave a stale element behind; no implicit wait)."""
    return list(
        browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), (node) => node.textContent)", css
        )
    )


def count(browser: Any, css: str) -> int:
    """How many elements match now (find_elements would wait out the implicit wait for none)."""
    return len(shown(browser, css))
