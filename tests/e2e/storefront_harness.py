"""A stand-in Shopify storefront for browser tests of the SMS opt-in theme app extension.

- `render_storefront_page(settings)` renders `extensions/sms-optin/blocks/optin-embed.liquid`
  with python-liquid 2 the way the theme would (block settings, the `asset_url`,
  `stylesheet_tag` and `t` filters, the `{% schema %}` block dropped) inside a small page.
- `StorefrontServer(app_url, shop, secret, settings)` serves that page at `/`, the extension's
  assets at `/assets/<name>`, and behaves like Shopify's app proxy: `/apps/sms/<rest>` is
  forwarded to `{app_url}/proxy/<rest>` with `shop`, `logged_in_customer_id` (empty),
  `path_prefix`, `timestamp` and `signature` added to the query, the body and content type
  kept, cookies dropped and the client address sent as `X-Forwarded-For`.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from liquid import Environment
from liquid import ast as liquid_ast
from liquid.tag import Tag
from liquid.token import TOKEN_EOF, TOKEN_TAG

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION_DIR = REPO_ROOT / "extensions" / "sms-optin"
BLOCK_PATH = EXTENSION_DIR / "blocks" / "optin-embed.liquid"
ASSETS_DIR = EXTENSION_DIR / "assets"
LOCALE_PATH = EXTENSION_DIR / "locales" / "en.default.json"

PROXY_PREFIX = "/apps/sms"
SHOPIFY_PROXY_PARAMS = ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")

_SCHEMA_RE = re.compile(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", re.S)
_CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


# --- Liquid ---------------------------------------------------------------------------------


class _SchemaNode(liquid_ast.Node):
    """`{% schema %}…{% endschema %}`: theme editor metadata, renders nothing."""

    __slots__ = ()

    def render_to_output(self, context: Any, buffer: Any) -> int:  # noqa: ARG002
        return 0


class SchemaTag(Tag):
    """Shopify's `schema` tag: everything up to `endschema` is skipped, like a comment."""

    name = "schema"
    end = "endschema"

    def parse(self, stream: Any) -> liquid_ast.Node:
        token = stream.eat(TOKEN_TAG)
        while not (stream.current.kind == TOKEN_TAG and stream.current.value == self.end):
            if stream.current.kind == TOKEN_EOF:
                raise ValueError("schema tag was never closed")
            next(stream)
        return _SchemaNode(token)


def block_schema(source: str | None = None) -> dict[str, Any]:
    """The JSON inside the block's `{% schema %}` tag."""
    text = BLOCK_PATH.read_text(encoding="utf-8") if source is None else source
    match = _SCHEMA_RE.search(text)
    if match is None:
        raise ValueError("no {% schema %} block")
    return json.loads(match.group(1))


def default_settings() -> dict[str, Any]:
    """Block settings as Shopify would pass them before the merchant changes anything."""
    settings: dict[str, Any] = {}
    for setting in block_schema().get("settings", []):
        if "id" in setting:
            settings[setting["id"]] = setting.get("default", "")
    return settings


def _translations() -> dict[str, Any]:
    return json.loads(LOCALE_PATH.read_text(encoding="utf-8"))


def _make_environment() -> Environment:
    env = Environment()  # strict enough: unknown tags and filters are errors
    env.add_tag(SchemaTag)
    strings = _translations()

    def asset_url(name: object) -> str:
        return f"/assets/{name}"

    def stylesheet_tag(url: object) -> str:
        return f'<link href="{url}" rel="stylesheet" type="text/css" media="all" />'

    def translate(key: object) -> str:
        node: Any = strings
        for part in str(key).split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"translation missing: en.{key}")
            node = node[part]
        return str(node)

    env.add_filter("asset_url", asset_url)
    env.add_filter("stylesheet_tag", stylesheet_tag)
    env.add_filter("t", translate)
    return env


def render_block(settings: Mapping[str, Any] | None = None, *, design_mode: bool = False) -> str:
    """Render the app embed block alone, with `settings` over the schema's defaults."""
    merged = default_settings()
    merged.update(settings or {})
    template = _make_environment().from_string(BLOCK_PATH.read_text(encoding="utf-8"))
    return template.render(
        block={"id": "tidings-optin-embed", "settings": merged, "shopify_attributes": ""},
        request={"design_mode": design_mode},
    )


def render_storefront_page(settings: dict | None = None) -> str:
    """A minimal storefront page with the app embed rendered before `</body>`."""
    block = render_block(settings)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test store</title>
<style>
  body {{ margin: 0; font-family: Georgia, serif; }}
  header, main, footer {{ padding: 1rem; }}
  .hero {{ height: 40vh; background: #eee; }}
</style>
</head>
<body>
<header><a href="/" id="home-link">Test store</a>
  <form role="search" action="/search"><label>Search <input id="search" name="q"></label></form>
</header>
<main>
  <div class="hero" id="hero"><h1>Summer collection</h1></div>
  <p id="product-copy">Linen shirts, canvas bags and other goods.</p>
  <button type="button" id="add-to-cart">Add to cart</button>
</main>
<footer><p>&copy; Test store</p></footer>
{block}
</body>
</html>
"""


# --- App proxy signature ----------------------------------------------------------------------


def proxy_signature(params: Mapping[str, list[str] | str], secret: str) -> str:
    """Shopify app proxy signature: sorted `key=v1,v2` pairs, no separator, hex HMAC-SHA256."""
    parts = []
    for key, value in params.items():
        if key == "signature":
            continue
        values = [value] if isinstance(value, str) else list(value)
        parts.append(f"{key}={','.join(values)}")
    message = "".join(sorted(parts))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_proxy_query(query_string: str, secret: str) -> bool:
    """True when a proxied request's query string carries a valid `signature`."""
    params = parse_qs(query_string, keep_blank_values=True)
    given = params.get("signature", [""])[-1]
    return bool(given) and hmac.compare_digest(proxy_signature(params, secret), given)


# --- The server -------------------------------------------------------------------------------


class StorefrontServer:
    """A threaded HTTP storefront on 127.0.0.1 with an app proxy in front of `app_url`.

    `requests` records each proxied request as a dict (method, path, url, headers, body,
    status). Use as a context manager, or call `start()` and `stop()`.
    """

    def __init__(self, app_url: str, shop: str, secret: str, settings: dict | None = None) -> None:
        self.app_url = app_url.rstrip("/")
        self.shop = shop
        self.secret = secret
        self.settings: dict = dict(settings or {})
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StorefrontServer:
        if self._httpd is not None:
            return self
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="storefront-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> StorefrontServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # proxy
    def proxied_query(self, query_string: str) -> str:
        """The query string Shopify would send to the app for a storefront query string."""
        pairs = [(k, v) for k, v in _parse_pairs(query_string) if k not in SHOPIFY_PROXY_PARAMS]
        pairs += [
            ("shop", self.shop),
            ("logged_in_customer_id", ""),
            ("path_prefix", PROXY_PREFIX),
            ("timestamp", str(int(time.time()))),
        ]
        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped.setdefault(key, []).append(value)
        pairs.append(("signature", proxy_signature(grouped, self.secret)))
        return urlencode(pairs)

    def _forward(
        self,
        method: str,
        rest: str,
        query: str,
        body: bytes | None,
        headers: Mapping[str, str],
        client_ip: str,
    ) -> tuple[int, dict[str, str], bytes]:
        target = urlsplit(self.app_url)
        path = f"{target.path}/proxy/{rest}?{self.proxied_query(query)}"
        out_headers = {
            "X-Forwarded-For": client_ip,
            "Accept": headers.get("Accept", "*/*"),
            "User-Agent": headers.get("User-Agent", ""),
        }
        if headers.get("Content-Type"):
            out_headers["Content-Type"] = headers["Content-Type"]
        conn_cls = (
            http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=out_headers)
            resp = conn.getresponse()
            data = resp.read()
            keep = {
                k: v
                for k, v in resp.getheaders()
                if k.lower() in ("content-type", "cache-control", "location", "retry-after")
            }
            status = resp.status
        except OSError as err:
            status, keep, data = 502, {"Content-Type": "text/plain"}, f"proxy error: {err}".encode()
        finally:
            conn.close()
        with self._lock:
            self.requests.append(
                {
                    "method": method,
                    "path": f"/proxy/{rest}",
                    "url": path,
                    "headers": out_headers,
                    "body": body or b"",
                    "status": status,
                }
            )
        return status, keep, data

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _dispatch(self) -> None:
                split = urlsplit(self.path)
                path = split.path
                if path.startswith(PROXY_PREFIX + "/"):
                    rest = path[len(PROXY_PREFIX) + 1 :]
                    status, headers, data = server._forward(
                        self.command,
                        rest,
                        split.query,
                        self._body(),
                        {k: v for k, v in self.headers.items()},
                        self.client_address[0],
                    )
                    self._send(status, headers, data)
                elif self.command not in ("GET", "HEAD"):
                    self._send(405, {"Content-Type": "text/plain"}, b"method not allowed")
                elif path in ("/", "/index.html"):
                    page = render_storefront_page(server.settings).encode()
                    self._send(
                        200,
                        {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
                        page,
                    )
                elif path.startswith("/assets/"):
                    name = path[len("/assets/") :]
                    asset = ASSETS_DIR / name
                    if "/" in name or not name or not asset.is_file():
                        self._send(404, {"Content-Type": "text/plain"}, b"not found")
                        return
                    ctype = _CONTENT_TYPES.get(asset.suffix, "application/octet-stream")
                    self._send(
                        200,
                        {"Content-Type": ctype, "Cache-Control": "no-store"},
                        asset.read_bytes(),
                    )
                elif path == "/favicon.ico":
                    self._send(204, {}, b"")
                else:
                    self._send(404, {"Content-Type": "text/plain"}, b"not found")

            do_GET = _dispatch
            do_HEAD = _dispatch
            do_POST = _dispatch
            do_PUT = _dispatch
            do_DELETE = _dispatch

        return Handler


def _parse_pairs(query_string: str) -> list[tuple[str, str]]:
    return parse_qsl(query_string, keep_blank_values=True)
