"""The storefront SMS opt-in widget in headless Chromium, against a stand-in app backend.

The page is the real app embed block rendered by the storefront harness; `/apps/sms/*` goes
through the harness's app proxy (which signs the query like Shopify) to a small threaded HTTP
server started here that checks the signature and records what it receives.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.storefront_harness import (
    StorefrontServer,
    proxy_signature,
    render_storefront_page,
    verify_proxy_query,
)

CHROMIUM = "/usr/bin/chromium"
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
SECRET = "test-proxy-secret"
SHOP = "tidings-test.myshopify.com"
CONSENT = (
    "By signing up, you agree to receive recurring automated marketing text messages "
    "(e.g. cart reminders) from Test Store’s SMS program at the number provided. Consent "
    "is not a condition of purchase. Msg frequency varies. Msg & data rates may apply. "
    "Reply HELP for help and STOP to cancel."
)
WIDGET_CONFIG = {
    "enabled": True,
    "headline": "Join our text list",
    "body": "Be first to hear about new arrivals.",
    "consent_text": CONSENT,
    "offer_text": "Get 10% off your first order",
    "button_label": "Text me",
    "country": "US",
}
SUCCESS = {"ok": True, "status": "pending", "message": "Check your phone: reply Y to confirm."}
DIALOG = "[role=dialog]"


# --- stand-in app backend ---------------------------------------------------------------------


class FakeApp:
    """Answers /proxy/widget and /proxy/subscribe the way the app's proxy endpoints should."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.lock = threading.Lock()
        self.reset()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def reset(self) -> None:
        with self.lock:
            self.config: dict[str, Any] = dict(WIDGET_CONFIG)
            self.responses: deque[tuple[int, dict, float]] = deque()
            self.subscribe_delay = 0.0
            self.posts: list[dict[str, Any]] = []
            self.widget_gets: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _json(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> dict[str, Any]:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                return {
                    "path": split.path,
                    "query": parse_qs(split.query, keep_blank_values=True),
                    "signature_ok": verify_proxy_query(split.query, app.secret),
                    "headers": dict(self.headers.items()),
                    "raw": raw,
                    "form": {
                        k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()
                    },
                }

            def do_GET(self) -> None:
                rec = self._record()
                if not rec["signature_ok"]:
                    self._json(401, {"error": {"code": "bad_signature", "message": "Bad sig."}})
                elif rec["path"] == "/proxy/widget":
                    with app.lock:
                        app.widget_gets.append(rec)
                        config = dict(app.config)
                    self._json(200, config)
                else:
                    self._json(404, {"error": {"code": "not_found", "message": "Not found."}})

            def do_POST(self) -> None:
                rec = self._record()
                if rec["path"] != "/proxy/subscribe":
                    self._json(404, {"error": {"code": "not_found", "message": "Not found."}})
                    return
                with app.lock:
                    app.posts.append(rec)
                    status, payload, delay = (
                        app.responses.popleft()
                        if app.responses
                        else (200, SUCCESS, app.subscribe_delay)
                    )
                if not rec["signature_ok"]:
                    status, payload = 401, {"error": {"code": "bad_signature", "message": "x"}}
                time.sleep(delay)
                self._json(status, payload)

        return Handler


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeApp]:
    app = FakeApp(SECRET).start()
    yield app
    app.stop()


@pytest.fixture
def stub(backend: FakeApp) -> FakeApp:
    backend.reset()
    return backend


@pytest.fixture
def storefront(stub: FakeApp) -> Iterator[Any]:
    servers: list[StorefrontServer] = []

    def make(**settings: Any) -> StorefrontServer:
        settings.setdefault("delay_seconds", 0)
        server = StorefrontServer(stub.url, SHOP, SECRET, settings).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    pw.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    yield pg
    context.close()


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def active(page: Any) -> str:
    """Describe the focused element: its id, else its name, else its tag, else its class."""
    return page.evaluate(
        "() => { const a = document.activeElement;"
        " return a.id || a.name || (a === document.body ? 'body' : a.className); }"
    )


def settle(page: Any) -> None:
    """Wait for the entrance animation to finish."""
    page.wait_for_function("() => document.getAnimations().every(a => a.playState === 'finished')")


def open_popup(page: Any, server: StorefrontServer) -> Any:
    page.goto(server.url + "/")
    return page.wait_for_selector(DIALOG, state="visible")


# --- harness (no browser) ---------------------------------------------------------------------


def test_proxy_signature_matches_platform_vector():
    query = (
        "extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id=1"
        "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
    )
    params = parse_qs(query, keep_blank_values=True)
    expected = "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
    assert proxy_signature(params, "hush") == expected
    assert verify_proxy_query(query + "&signature=" + expected, "hush")
    assert not verify_proxy_query(query + "&signature=" + "0" * 64, "hush")


def test_harness_proxy_signs_and_forwards(stub, storefront):
    server = storefront()
    req = urllib.request.Request(
        server.url + "/apps/sms/subscribe?extra=1&extra=2&signature=forged",
        data=b"phone=%2B15551234567&company=",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=b"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert json.loads(resp.read()) == SUCCESS
    (post,) = stub.posts
    assert post["signature_ok"]
    query = post["query"]
    assert query["shop"] == [SHOP]
    assert query["logged_in_customer_id"] == [""]
    assert query["path_prefix"] == ["/apps/sms"]
    assert query["extra"] == ["1", "2"]
    assert abs(int(query["timestamp"][0]) - time.time()) < 60
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert post["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert "Cookie" not in post["headers"]
    assert post["form"] == {"phone": "+15551234567", "company": ""}


def test_rendered_page_has_no_schema_and_a_deferred_script():
    html = render_storefront_page({"headline": "Hello <there>"})
    assert "{% schema %}" not in html and '"target"' not in html
    assert '<script src="/assets/tidings-optin.js" defer></script>' in html
    assert 'href="/assets/tidings-optin.css"' in html
    assert 'data-headline="Hello &lt;there&gt;"' in html


# --- browser ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_script_is_deferred(page, storefront):
    server = storefront()
    page.goto(server.url + "/")
    script = page.evaluate(
        "() => { const s = document.querySelector('script[src$=\"tidings-optin.js\"]');"
        " return s && {defer: s.defer, async: s.async, inHead: !!s.closest('head')}; }"
    )
    assert script == {"defer": True, "async": False, "inHead": False}


@pytest.mark.e2e
def test_popup_is_an_accessible_modal_dialog(page, stub, storefront):
    server = storefront(delay_seconds=1)
    page.goto(server.url + "/")
    page.focus("#search")
    assert page.query_selector(DIALOG) is None  # not before the delay
    dialog = page.wait_for_selector(DIALOG, state="visible")

    assert dialog.get_attribute("aria-modal") == "true"
    title_id = dialog.get_attribute("aria-labelledby")
    assert page.text_content(f"#{title_id}") == WIDGET_CONFIG["headline"]
    assert page.evaluate(f"() => document.getElementById('{title_id}').tagName") == "H2"
    assert active(page) == "tidings-optin-phone"  # focus moved into the dialog

    phone = page.locator("#tidings-optin-phone")
    assert phone.get_attribute("type") == "tel"
    assert phone.get_attribute("autocomplete") == "tel"
    assert phone.get_attribute("inputmode") == "tel"
    assert page.locator("label[for=tidings-optin-phone]").inner_text() == "Mobile phone number"
    assert page.text_content(".tidings-optin__offer") == WIDGET_CONFIG["offer_text"]
    honeypot = page.locator("input[name=company]")
    assert honeypot.count() == 1
    assert honeypot.get_attribute("tabindex") == "-1"
    trap = honeypot.bounding_box()  # off-screen: people never see it, bots still fill it
    assert trap is None or trap["x"] + trap["width"] <= 0
    assert page.get_by_role("button", name="Close").is_visible()

    # Tab cycles inside the dialog and never reaches the page or the honeypot.
    seen = []
    for _ in range(7):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('[role=dialog]')")
        seen.append(active(page))
    assert set(seen) == {"tidings-optin-phone", "tidings-optin__close", "tidings-optin__submit"}
    assert seen[:4] == [
        "tidings-optin__submit",
        "tidings-optin__close",
        "tidings-optin-phone",
        "tidings-optin__submit",
    ]
    page.keyboard.press("Shift+Tab")
    assert active(page) == "tidings-optin-phone"
    page.focus(".tidings-optin__close")
    page.keyboard.press("Shift+Tab")
    assert active(page) == "tidings-optin__submit"

    # Escape closes and gives focus back; the dismissal is remembered.
    page.keyboard.press("Escape")
    page.wait_for_selector(DIALOG, state="detached")
    assert active(page) == "search"
    assert page.evaluate("() => localStorage.getItem('tidings-optin')") == "dismissed"
    assert page.is_hidden("#tidings-optin")

    gets = len(stub.widget_gets)
    page.reload()
    page.wait_for_load_state("load")
    time.sleep(1.5)
    assert page.query_selector(DIALOG) is None
    assert len(stub.widget_gets) == gets  # not even asked for again


@pytest.mark.e2e
def test_close_button_dismisses(page, storefront):
    server = storefront()
    open_popup(page, server)
    page.get_by_role("button", name="Close").click()
    page.wait_for_selector(DIALOG, state="detached")
    assert page.evaluate("() => localStorage.getItem('tidings-optin')") == "dismissed"


@pytest.mark.e2e
def test_subscribe_posts_the_shown_consent_and_remembers_success(page, stub, storefront):
    server = storefront()
    open_popup(page, server)

    shown = page.text_content(".tidings-optin__consent")
    assert shown == CONSENT  # verbatim, straight from the server
    # The disclosure sits directly next to the submit button.
    assert page.evaluate(
        "() => document.querySelector('.tidings-optin__consent').nextElementSibling"
        " === document.querySelector('button[type=submit]')"
    )
    assert page.inner_text("button[type=submit]") == WIDGET_CONFIG["button_label"]

    page.fill("#tidings-optin-phone", "(555) 123-4567")
    page.click("button[type=submit]")
    status = page.locator("[aria-live=polite]")
    status.get_by_text(SUCCESS["message"]).wait_for()
    assert status.inner_text() == SUCCESS["message"]

    (post,) = stub.posts
    assert post["signature_ok"]
    assert post["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert post["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert post["query"]["shop"] == [SHOP]
    assert post["form"] == {
        "phone": "(555) 123-4567",
        "consent_text": shown,
        "page_url": server.url + "/",
        "company": "",
    }
    assert page.evaluate("() => localStorage.getItem('tidings-optin')") == "subscribed"

    gets = len(stub.widget_gets)
    page.reload()
    page.wait_for_load_state("load")
    time.sleep(1.0)
    assert page.query_selector(DIALOG) is None
    assert len(stub.widget_gets) == gets


@pytest.mark.e2e
def test_double_click_posts_once(page, stub, storefront):
    stub.subscribe_delay = 0.8
    server = storefront()
    open_popup(page, server)
    page.fill("#tidings-optin-phone", "5551234567")
    page.dblclick("button[type=submit]")
    assert page.is_disabled("button[type=submit]")  # disabled while in flight
    page.get_by_text(SUCCESS["message"]).wait_for()
    time.sleep(0.5)
    assert len(stub.posts) == 1


@pytest.mark.e2e
def test_error_response_is_shown_next_to_the_field(page, stub, storefront):
    message = "Enter a valid US mobile number."
    stub.responses.append((422, {"error": {"code": "invalid_phone", "message": message}}, 0.0))
    server = storefront()
    open_popup(page, server)
    page.fill("#tidings-optin-phone", "12")
    page.click("button[type=submit]")

    error = page.locator("#tidings-optin-error")
    error.get_by_text(message).wait_for()
    assert error.get_attribute("aria-live") == "assertive"
    assert page.get_attribute("#tidings-optin-phone", "aria-invalid") == "true"
    assert page.get_attribute("#tidings-optin-phone", "aria-describedby") == "tidings-optin-error"
    assert page.is_visible(DIALOG)
    assert page.is_enabled("button[type=submit]")
    assert page.evaluate("() => localStorage.getItem('tidings-optin')") is None

    # Correcting the number clears the error; the retry succeeds.
    page.fill("#tidings-optin-phone", "5551234567")
    assert page.get_attribute("#tidings-optin-phone", "aria-invalid") is None
    page.click("button[type=submit]")
    page.get_by_text(SUCCESS["message"]).wait_for()
    assert [p["form"]["phone"] for p in stub.posts] == ["12", "5551234567"]


@pytest.mark.e2e
def test_empty_number_is_not_posted(page, stub, storefront):
    server = storefront()
    open_popup(page, server)
    page.click("button[type=submit]")
    page.locator("#tidings-optin-error").get_by_text("Enter your mobile phone number.").wait_for()
    assert stub.posts == []


@pytest.mark.e2e
def test_network_failure_gives_a_readable_message(page, stub, storefront):
    server = storefront()
    page.route("**/apps/sms/subscribe", lambda route: route.abort())
    open_popup(page, server)
    page.fill("#tidings-optin-phone", "5551234567")
    page.click("button[type=submit]")
    page.locator("#tidings-optin-error").get_by_text(
        "Something went wrong, please try again."
    ).wait_for()
    assert page.is_visible(DIALOG)
    assert page.is_enabled("button[type=submit]")


@pytest.mark.e2e
def test_disabled_widget_shows_nothing(page, stub, storefront):
    stub.config["enabled"] = False
    server = storefront()
    page.goto(server.url + "/")
    wait_until(lambda: len(stub.widget_gets) == 1)
    time.sleep(0.5)
    assert page.query_selector(DIALOG) is None
    assert page.is_hidden("#tidings-optin")


@pytest.mark.e2e
def test_block_settings_override_and_bottom_bar(page, stub, storefront):
    server = storefront(
        display_mode="bar",
        headline="Texts from the shop",
        offer_text="Free shipping on your next order",
        button_label="Subscribe",
    )
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(server.url + "/")
    bar = page.wait_for_selector("[role=region][aria-labelledby=tidings-optin-title]")
    assert bar.get_attribute("aria-modal") is None
    assert page.text_content("#tidings-optin-title") == "Texts from the shop"
    assert page.text_content(".tidings-optin__offer") == "Free shipping on your next order"
    assert page.inner_text("button[type=submit]") == "Subscribe"
    assert page.text_content(".tidings-optin__consent") == CONSENT
    assert active(page) == "body"  # a bar does not steal focus
    settle(page)
    box = bar.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert abs(box["y"] + box["height"] - 640) < 1  # pinned to the bottom
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    page.focus("#tidings-optin-phone")
    page.keyboard.press("Escape")
    page.wait_for_selector("[role=region]", state="detached")


@pytest.mark.e2e
def test_popup_fits_320px_without_layout_shift(page, storefront):
    page.add_init_script(
        "window.__cls = 0; new PerformanceObserver(list => { for (const e of list.getEntries())"
        " if (!e.hadRecentInput) window.__cls += e.value; })"
        ".observe({type: 'layout-shift', buffered: true});"
    )
    page.set_viewport_size({"width": 320, "height": 568})
    server = storefront(delay_seconds=1)
    page.goto(server.url + "/")
    page.wait_for_load_state("load")
    before = page.locator("#product-copy").bounding_box()
    dialog = page.wait_for_selector(DIALOG, state="visible")
    settle(page)
    box = dialog.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 320
    assert box["y"] >= 0 and box["y"] + box["height"] <= 568
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
    assert page.locator("#product-copy").bounding_box() == before
    assert page.evaluate("() => window.__cls") == 0
    position = page.evaluate(
        "() => getComputedStyle(document.querySelector('.tidings-optin__overlay')).position"
    )
    assert position == "fixed"


@pytest.mark.e2e
def test_hidden_on_mobile_when_the_merchant_says_so(page, stub, storefront):
    server = storefront(show_on_mobile=False)
    page.set_viewport_size({"width": 375, "height": 667})
    page.goto(server.url + "/")
    page.wait_for_load_state("load")
    time.sleep(0.5)
    assert page.query_selector(DIALOG) is None
    assert stub.widget_gets == []


@pytest.mark.e2e
def test_reduced_motion_disables_animation(browser, storefront):
    context = browser.new_context(reduced_motion="reduce")
    try:
        pg = context.new_page()
        server = storefront()
        open_popup(pg, server)
        name = pg.evaluate(
            "() => getComputedStyle(document.querySelector('.tidings-optin__panel')).animationName"
        )
        assert name == "none"
    finally:
        context.close()
