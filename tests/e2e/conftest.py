"""Fixtures for every browser test: the app on a real port, headless Chromium, a checked page.

- `live_server`: the session app served by werkzeug's threaded server on 127.0.0.1 (`.url`).
  Requests run in their own threads and app contexts: rows a test writes must be committed.
- `browser`: Debian's Chromium driven by Playwright, one per test module (skips only when
  /usr/bin/chromium is missing; `make browser` installs it).
- `page`: a fresh context and page; the test fails on any console error or uncaught page error
  (allow expected ones with `console_errors.allow(regex)`), and a screenshot is saved to
  test-output/screenshots/<test name>.png at the end.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


@dataclass
class LiveServer:
    url: str
    host: str
    port: int


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", "127.0.0.1", server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# Module scope, not session: Playwright's sync API allows one running instance per thread, and
# a test module may start its own.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class ConsoleErrors:
    """What the page logged as an error; `allow()` excuses messages a test provokes."""

    messages: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(p.search(m) for p in self.allowed)]


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture
def page(
    browser: Any, console_errors: ConsoleErrors, request: pytest.FixtureRequest
) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on(
        "console",
        lambda msg: msg.type == "error" and console_errors.messages.append(f"console: {msg.text}"),
    )
    page.on("pageerror", lambda exc: console_errors.messages.append(f"pageerror: {exc}"))
    try:
        yield page
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        finally:
            context.close()
    errors = console_errors.unexpected()
    if errors:
        pytest.fail("errors in the browser console:\n" + "\n".join(errors))
