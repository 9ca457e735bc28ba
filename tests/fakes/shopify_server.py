"""Loopback stand-in for the parts of Shopify the app talks to: the OAuth token endpoint
(authorization code, token exchange, refresh with rotation) and the GraphQL Admin API (with a
per-shop cost bucket and THROTTLED answers).

The app reaches it with ``SHOPIFY_ADMIN_BASE_URL = fake.base_url_template``
(``http://127.0.0.1:<port>/{shop}``); the shop is the first path segment.

Separate process: ``python -m tests.fakes.shopify_server --port 0 --client-id ID
--client-secret S`` prints ``READY http://127.0.0.1:<port>``; see ``/_fake/...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import jwt
from aiohttp import web

from tests.fakes._server import FakeService, json_response

DEFAULT_CLIENT_ID = "fake-client-id"
DEFAULT_CLIENT_SECRET = "fake-client-secret"
DEFAULT_SHOP = "tidings-test.myshopify.com"
DEFAULT_SCOPE = "read_customers,write_customers,read_orders,write_discounts,write_app_proxy"
SHOP_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$")

GRANT_TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
SUBJECT_ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN = "urn:shopify:params:oauth:token-type:online-access-token"

INVALID_TOKEN_ERROR = "[API] Invalid API key or access token (unrecognized login or wrong password)"
RATE_LIMIT_DOC = "https://shopify.dev/api/usage/rate-limits"
MAX_INPUT_ARRAY = 250
SESSION_TOKEN_LEEWAY = 10
TAKEN_MESSAGE = "Code must be unique. Please try a different code."


class GraphQLError(Exception):
    """Raise from a handler to answer with a top-level GraphQL error."""

    def __init__(self, message: str, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = dict(extensions)
        if code:
            self.extensions["code"] = code

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.extensions:
            error["extensions"] = self.extensions
        return error


# --------------------------------------------------------------------------- GraphQL parsing
_TOKEN_RE = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:\\\"\"\"|[^"]|"(?!""))*\"\"\")
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<punct>\.\.\.|[!$&()\[\]{}:=@|])
    """,
    re.VERBOSE,
)


class RootField:
    """A top-level field of the operation: ``alias: name(args)``."""

    __slots__ = ("name", "alias", "args", "raw_args")

    def __init__(self, name: str, alias: str | None, args: dict[str, Any], raw_args: str):
        self.name = name
        self.alias = alias
        self.args = args
        self.raw_args = raw_args

    @property
    def key(self) -> str:
        return self.alias or self.name

    def __repr__(self) -> str:
        return f"RootField({self.key}: {self.name} {self.args})"


class ParsedOperation:
    __slots__ = ("type", "name", "fields")

    def __init__(self, type_: str, name: str | None, fields: list[RootField]):
        self.type = type_
        self.name = name
        self.fields = fields


class _Parser:
    def __init__(self, query: str, variables: dict[str, Any]):
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(query):
            m = _TOKEN_RE.match(query, pos)
            if m is None:
                raise GraphQLError(
                    f'Parse error on "{query[pos : pos + 10]}" at offset {pos}', "parseError"
                )
            kind = m.lastgroup or ""
            if kind != "skip":
                self.tokens.append((kind, m.group(), pos))
            pos = m.end()
        self.i = 0
        self.query = query
        self.variables = variables

    def peek(self, offset: int = 0) -> tuple[str, str, int]:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else ("eof", "", len(self.query))

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok[0] == "eof" or (value is not None and tok[1] != value):
            want = repr(value) if value else "more input"
            raise GraphQLError(
                f"Parse error on {tok[1] or 'end of query'!r}: expected {want}", "parseError"
            )
        self.i += 1
        return tok

    def skip_balanced(self, open_: str, close: str) -> None:
        self.take(open_)
        depth = 1
        while depth:
            value = self.take()[1]
            if value == open_:
                depth += 1
            elif value == close:
                depth -= 1

    def skip_directives(self) -> None:
        while self.peek()[1] == "@":
            self.take("@")
            self.take()
            if self.peek()[1] == "(":
                self.skip_balanced("(", ")")

    def operations(self) -> list[ParsedOperation]:
        ops = []
        while self.peek()[0] != "eof":
            kind, value, _ = self.peek()
            if value == "fragment":
                self.take()
                self.take()  # name
                self.take("on")
                self.take()  # type
                self.skip_directives()
                self.skip_balanced("{", "}")
            elif value == "{":
                ops.append(ParsedOperation("query", None, self.selection_set()))
            elif value in ("query", "mutation", "subscription"):
                self.take()
                name = None
                if self.peek()[0] == "name":
                    name = self.take()[1]
                if self.peek()[1] == "(":
                    self.skip_balanced("(", ")")
                self.skip_directives()
                ops.append(ParsedOperation(value, name, self.selection_set()))
            else:
                raise GraphQLError(f"Parse error on {value!r}", "parseError")
        if not ops:
            raise GraphQLError("No operations in query document", "parseError")
        return ops

    def selection_set(self) -> list[RootField]:
        self.take("{")
        fields = []
        while self.peek()[1] != "}":
            if self.peek()[1] == "...":
                self.take()
                if self.peek()[1] == "on":
                    self.take()
                    self.take()
                self.skip_directives()
                if self.peek()[1] == "{":
                    self.skip_balanced("{", "}")
                continue
            name = self.take()[1]
            alias = None
            if self.peek()[1] == ":":
                self.take(":")
                alias, name = name, self.take()[1]
            args: dict[str, Any] = {}
            raw_args = ""
            if self.peek()[1] == "(":
                start = self.peek()[2]
                args = self.arguments()
                raw_args = self.query[start : self.tokens[self.i - 1][2] + 1]
            self.skip_directives()
            if self.peek()[1] == "{":
                self.skip_balanced("{", "}")
            fields.append(RootField(name, alias, args, raw_args))
        self.take("}")
        return fields

    def arguments(self) -> dict[str, Any]:
        self.take("(")
        args = {}
        while self.peek()[1] != ")":
            name = self.take()[1]
            self.take(":")
            args[name] = self.value()
        self.take(")")
        return args

    def value(self) -> Any:
        kind, value, _ = self.take()
        if value == "$":
            return self.variables.get(self.take()[1])
        if kind == "str":
            return json.loads(value)
        if kind == "block":
            return value[3:-3]
        if kind == "num":
            return float(value) if any(c in value for c in ".eE") else int(value)
        if value == "[":
            items = []
            while self.peek()[1] != "]":
                items.append(self.value())
            self.take("]")
            return items
        if value == "{":
            obj = {}
            while self.peek()[1] != "}":
                key = self.take()[1]
                self.take(":")
                obj[key] = self.value()
            self.take("}")
            return obj
        if kind == "name":
            return {"true": True, "false": False, "null": None}.get(value, value)
        raise GraphQLError(f"Parse error on {value!r}", "parseError")


def parse_operation(
    query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> ParsedOperation:
    """Find the operation (by name if given) and its root fields with resolved arguments."""
    ops = _Parser(query, variables or {}).operations()
    if operation_name:
        for op in ops:
            if op.name == operation_name:
                return op
        raise GraphQLError(f'No operation named "{operation_name}"')
    return ops[0]


def root_field_name(query: str) -> str:
    """The first root field of the first operation (``"shop"`` for ``query { shop { id } }``)."""
    return parse_operation(query).fields[0].name


_FIRST_LAST_RE = re.compile(r"\b(?:first|last)\s*:\s*(\d+|\$[_A-Za-z][_0-9A-Za-z]*)")


def query_cost(op: ParsedOperation, query: str, variables: dict[str, Any]) -> int:
    """A simple stand-in for Shopify's calculated cost: 10 per mutation root field; a query
    costs 1 plus the page sizes (``first:``/``last:``) it asks for."""
    if op.type == "mutation":
        return 10 * max(1, len(op.fields))
    cost = 1
    for value in _FIRST_LAST_RE.findall(query):
        if value.startswith("$"):
            with contextlib.suppress(TypeError, ValueError):
                cost += int(variables.get(value[1:]) or 0)
        else:
            cost += int(value)
    return cost


# --------------------------------------------------------------------------- records
class GraphQLCall(tuple):
    """``(shop, field, variables, query)`` plus attributes: ``version``, ``operation``
    ("query"/"mutation"), ``fields`` (all root field names), ``args`` (first field's resolved
    arguments), ``throttled``, ``http_status``, ``cost``, ``time``."""

    def __new__(cls, shop, field, variables, query, **meta):
        obj = super().__new__(cls, (shop, field, variables, query))
        obj.__dict__.update(meta)
        return obj

    shop = property(lambda self: self[0])
    field = property(lambda self: self[1])
    variables = property(lambda self: self[2])
    query = property(lambda self: self[3])

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self[0],
            "field": self[1],
            "variables": self[2],
            "query": self[3],
            **self.__dict__,
        }


class GraphQLContext:
    """What a handler registered with ``fake.on(field, handler)`` receives."""

    def __init__(self, fake, shop, field, op, variables, query, token):
        self.fake = fake
        self.shop = shop
        self.field: RootField = field
        self.name = field.name
        self.args = field.args
        self.operation = op.type
        self.variables = variables
        self.query = query
        self.token = token


class _Bucket:
    __slots__ = ("maximum", "restore_rate", "available", "updated")

    def __init__(self, maximum: float, restore_rate: float, now: float):
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.available = maximum
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.available = min(
                self.maximum, self.available + (now - self.updated) * self.restore_rate
            )
        self.updated = now

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": float(self.maximum),
            "currentlyAvailable": float(int(self.available)),
            "restoreRate": float(self.restore_rate),
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user_error(field: list[str] | None, code: str, message: str) -> dict[str, Any]:
    return {"field": field, "code": code, "message": message, "extraInfo": None}


def _too_large_arrays(value: Any, path: list[str]) -> tuple[list[str], int] | None:
    if isinstance(value, list):
        if len(value) > MAX_INPUT_ARRAY:
            return path, len(value)
        for item in value:
            found = _too_large_arrays(item, path)
            if found:
                return found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _too_large_arrays(item, [*path, key])
            if found:
                return found
    return None


class FakeShopify(FakeService):
    """Shopify OAuth + GraphQL Admin API stand-in. See the module docstring and README.md."""

    def __init__(
        self,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        api_version: str = "2026-10",
        shops: dict[str, dict[str, Any]] | None = None,
        *,
        scope: str = DEFAULT_SCOPE,
        auto_create_shops: bool = True,
        access_token_ttl: int = 3600,
        refresh_token_ttl: int = 7_776_000,
        refresh_reuse: str = "strict",
        bucket_max: float = 2000.0,
        restore_rate: float = 100.0,
        bulk_polls_until_done: int = 1,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.api_version = api_version
        self.scope = scope
        self.auto_create_shops = auto_create_shops
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        if refresh_reuse not in ("strict", "until_replacement_used"):
            raise ValueError("refresh_reuse is 'strict' or 'until_replacement_used'")
        self.refresh_reuse = refresh_reuse
        self.bucket_max = bucket_max
        self.restore_rate = restore_rate
        self.bulk_polls_until_done = bulk_polls_until_done
        #: seconds added to the real clock (token expiry, session tokens, bucket refill)
        self.clock = 0.0
        self._lock = threading.RLock()
        self.shops: dict[str, dict[str, Any]] = {}
        for shop, data in (shops if shops is not None else {DEFAULT_SHOP: {}}).items():
            self.add_shop(shop, **data)
        self._handlers: dict[str, Any] = {}
        self._builtins: dict[str, Callable[[GraphQLContext], Any]] = {
            "shop": self._q_shop,
            "currentAppInstallation": self._q_app_installation,
            "discountCodeBasicCreate": self._m_discount_create,
            "discountRedeemCodeBulkAdd": self._m_bulk_add,
            "discountRedeemCodeBulkCreation": self._q_bulk_creation,
            "discountCodeDelete": self._m_discount_delete,
            "discountCodeDeactivate": self._m_discount_deactivate,
            "discountCodeActivate": self._m_discount_activate,
            "codeDiscountNodeByCode": self._q_discount_by_code,
            "codeDiscountNode": self._q_discount_node,
            "customerSmsMarketingConsentUpdate": self._m_sms_consent,
            "customer": self._q_customer,
            "customers": self._q_customers,
        }
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self.codes: dict[tuple[str, str], str] = {}  # (shop, code) → access token
            self.tokens: dict[str, dict[str, Any]] = {}  # access token → info
            self.refresh_tokens: dict[str, dict[str, Any]] = {}  # refresh token → info
            self._refresh_current: dict[str, str] = {}
            self._refresh_previous: dict[str, str] = {}
            self.refresh_count: dict[str, int] = {}
            self.token_requests: list[dict[str, Any]] = []
            self.graphql_calls: list[GraphQLCall] = []
            self.throttled_calls: list[GraphQLCall] = []
            self._throttle_next: list[int] = []
            self._buckets: dict[str, _Bucket] = {}
            self.discounts: dict[str, dict[str, dict[str, Any]]] = {}
            self.discount_codes: dict[str, dict[str, str]] = {}
            self.bulk_creations: dict[str, dict[str, Any]] = {}
            self.customers: dict[str, dict[str, dict[str, Any]]] = {}
            self.consent: dict[str, dict[str, Any]] = {}
            self.consent_updates: list[tuple[str, str, dict[str, Any]]] = []
            self._ids = 1000

    # -- configuration and state ---------------------------------------------------------------
    @property
    def base_url_template(self) -> str:
        """Value for SHOPIFY_ADMIN_BASE_URL: ``http://127.0.0.1:<port>/{shop}``."""
        return f"{self.url}/{{shop}}"

    def graphql_url(self, shop: str, version: str | None = None) -> str:
        return f"{self.url}/{shop}/admin/api/{version or self.api_version}/graphql.json"

    def token_url(self, shop: str) -> str:
        return f"{self.url}/{shop}/admin/oauth/access_token"

    def now(self) -> float:
        return time.time() + self.clock

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (expires tokens, refills cost buckets)."""
        self.clock += seconds

    def add_shop(
        self,
        shop: str,
        name: str | None = None,
        iana_timezone: str = "America/New_York",
        currency_code: str = "USD",
        country_code: str = "US",
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        handle = shop.split(".")[0]
        data = {
            "name": name or handle.replace("-", " ").title(),
            "iana_timezone": iana_timezone,
            "currency_code": currency_code,
            "country_code": country_code,
            "email": email or f"owner@{handle}.example",
            "id": len(self.shops) + 1,
            **extra,
        }
        self.shops[shop] = data
        return data

    def _shop_known(self, shop: str) -> bool:
        if shop in self.shops:
            return True
        if self.auto_create_shops and SHOP_RE.match(shop):
            self.add_shop(shop)
            return True
        return False

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def register_code(self, shop: str, code: str) -> None:
        """Make ``code`` redeemable once (authorization code grant) for ``shop``."""
        self.codes[(shop, code)] = ""

    def add_token(
        self, shop: str, token: str | None = None, expires_in: float | None = None
    ) -> str:
        """Accept ``token`` (generated if None) for ``shop``'s GraphQL calls."""
        token = token or "shpat_" + secrets.token_hex(16)
        expires_at = None if expires_in is None else self.now() + expires_in
        self.tokens[token] = {
            "shop": shop,
            "expires_at": expires_at,
            "scope": self.scope,
            "kind": "added",
        }
        return token

    def revoke_tokens(self, shop: str) -> None:
        """Invalidate every access and refresh token of ``shop`` (as after an uninstall)."""
        with self._lock:
            for table in (self.tokens, self.refresh_tokens):
                for key in [k for k, v in table.items() if v["shop"] == shop]:
                    del table[key]
            self._refresh_current.pop(shop, None)
            self._refresh_previous.pop(shop, None)

    def token_for(self, shop: str) -> str | None:
        """The newest access token issued to or added for ``shop``."""
        found = [t for t, info in self.tokens.items() if info["shop"] == shop]
        return found[-1] if found else None

    def on(self, field: str, handler: Any) -> None:
        """Override the answer for root field ``field``: ``handler(ctx) -> value`` (the field's
        value), a full body dict with "data"/"errors", or an aiohttp Response; a non-callable is
        used as the value itself. ``None`` removes the override. Raise GraphQLError for a
        top-level error. Runs on the server thread."""
        if handler is None:
            self._handlers.pop(field, None)
        else:
            self._handlers[field] = handler

    def throttle_next(self, n: int = 1, http_status: int = 200) -> None:
        """Answer the next ``n`` GraphQL calls THROTTLED whatever the bucket holds."""
        with self._lock:
            self._throttle_next.extend([http_status] * n)

    def set_bucket(
        self,
        shop: str,
        available: float | None = None,
        maximum: float | None = None,
        restore_rate: float | None = None,
    ) -> None:
        bucket = self._bucket(shop)
        with self._lock:
            bucket.refill(self.now())
            if maximum is not None:
                bucket.maximum = maximum
            if restore_rate is not None:
                bucket.restore_rate = restore_rate
            if available is not None:
                bucket.available = available

    def add_customer(
        self,
        shop: str,
        customer_id: int | str | None = None,
        *,
        phone: str | None = None,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        sms_state: str = "NOT_SUBSCRIBED",
        opt_in_level: str = "SINGLE_OPT_IN",
    ) -> str:
        """Add a customer; returns its gid."""
        if customer_id is None:
            customer_id = self._next_id()
        gid = str(customer_id)
        if not gid.startswith("gid://"):
            gid = f"gid://shopify/Customer/{customer_id}"
        now = _iso(self.now())
        self.customers.setdefault(shop, {})[gid] = {
            "id": gid,
            "firstName": first_name,
            "lastName": last_name,
            "email": email,
            "phone": phone,
            "createdAt": now,
            "updatedAt": now,
            "sms": {
                "marketingState": sms_state,
                "marketingOptInLevel": opt_in_level,
                "consentUpdatedAt": None,
                "consentCollectedFrom": "OTHER",
            },
        }
        return gid

    def reset(self) -> None:
        """Forget tokens, codes, calls, discounts, customers and consent (shops and overrides
        stay; the clock returns to real time)."""
        self.clock = 0.0
        self._reset_state()

    def calls_for(self, field: str) -> list[GraphQLCall]:
        return [c for c in self.graphql_calls if c.field == field]

    # -- server --------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        add = app.router.add_route
        add("GET", "/_fake/calls", self._c_calls)
        add("GET", "/_fake/state", self._c_state)
        add("POST", "/_fake/reset", self._c_reset)
        add("POST", "/_fake/throttle_next", self._c_throttle_next)
        add("POST", "/_fake/register_code", self._c_register_code)
        add("POST", "/_fake/add_token", self._c_add_token)
        add("POST", "/_fake/advance", self._c_advance)
        add("POST", "/_fake/bucket", self._c_bucket)
        add("POST", "/_fake/customers", self._c_customers)
        add("POST", "/{shop}/admin/oauth/access_token", self._h_token)
        add("POST", "/{shop}/admin/api/{version}/graphql.json", self._h_graphql)
        return app

    # -- OAuth token endpoint ------------------------------------------------------------------
    async def _h_token(self, request: web.Request) -> web.Response:
        shop = request.match_info["shop"]
        if not self._shop_known(shop):
            return json_response({"errors": "Not Found"}, 404)
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if (request.content_type or "").endswith("json"):
                try:
                    body = await request.json()
                except ValueError:
                    return self._oauth_error(400, "invalid_request", "Malformed JSON body")
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update(await request.post())
        params = {k: str(v) if not isinstance(v, str) else v for k, v in params.items()}
        status, body = self._token_grant(shop, params)
        self.token_requests.append(
            {
                "time": time.time(),
                "shop": shop,
                "params": params,
                "status": status,
                "error": body.get("error"),
            }
        )
        return json_response(body, status)

    @staticmethod
    def _oauth_error(status: int, error: str, description: str) -> web.Response:
        return json_response({"error": error, "error_description": description}, status)

    def _token_grant(self, shop: str, p: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def error(status: int, code: str, description: str):
            return status, {"error": code, "error_description": description}

        if p.get("client_id") != self.client_id or p.get("client_secret") != self.client_secret:
            return error(401, "invalid_client", "Client authentication failed.")
        grant = p.get("grant_type", "authorization_code" if "code" in p else "")
        expiring = p.get("expiring", "0") in ("1", "true", "True")
        with self._lock:
            if grant == "authorization_code":
                key = (shop, p.get("code", ""))
                if key not in self.codes or self.codes[key]:
                    return error(
                        400,
                        "invalid_request",
                        "The authorization code was not found or was already used",
                    )
                body = self._issue(shop, expiring, "offline")
                self.codes[key] = body["access_token"]
                return 200, body
            if grant == GRANT_TOKEN_EXCHANGE:
                if p.get("subject_token_type") != SUBJECT_ID_TOKEN:
                    return error(400, "invalid_request", "subject_token_type must be an id_token")
                requested = p.get("requested_token_type", OFFLINE_TOKEN)
                if requested not in (OFFLINE_TOKEN, ONLINE_TOKEN):
                    return error(400, "invalid_request", "Unsupported requested_token_type")
                claims, problem = self._verify_session_token(shop, p.get("subject_token", ""))
                if problem:
                    return error(400, "invalid_subject_token", problem)
                if requested == ONLINE_TOKEN:
                    return 200, self._issue_online(shop, claims)
                return 200, self._issue(shop, expiring, "offline")
            if grant == "refresh_token":
                return self._refresh(shop, p.get("refresh_token", ""))
        return error(400, "unsupported_grant_type", f"Unsupported grant_type {grant!r}")

    def _verify_session_token(self, shop: str, token: str) -> tuple[dict, str | None]:
        try:
            claims = jwt.decode(
                token,
                self.client_secret,
                algorithms=["HS256"],
                audience=self.client_id,
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "nbf", "aud", "dest", "iss"],
                },
            )
        except jwt.PyJWTError as exc:
            return {}, f"Invalid subject token: {exc}"
        now = self.now()
        if claims["exp"] + SESSION_TOKEN_LEEWAY < now:
            return claims, "Subject token has expired"
        if claims["nbf"] - SESSION_TOKEN_LEEWAY > now:
            return claims, "Subject token is not yet valid"
        if claims["dest"] != f"https://{shop}":
            return claims, "Subject token dest does not match the shop"
        if claims["iss"] != f"https://{shop}/admin":
            return claims, "Subject token iss does not match the shop"
        return claims, None

    def _issue(self, shop: str, expiring: bool, kind: str) -> dict[str, Any]:
        now = self.now()
        token = "shpat_" + secrets.token_hex(16)
        body: dict[str, Any] = {"access_token": token, "scope": self.scope}
        info = {"shop": shop, "expires_at": None, "scope": self.scope, "kind": kind}
        if expiring:
            refresh = "shprt_" + secrets.token_hex(24)
            info["expires_at"] = now + self.access_token_ttl
            body.update(
                expires_in=self.access_token_ttl,
                refresh_token=refresh,
                refresh_token_expires_in=self.refresh_token_ttl,
            )
            self.refresh_tokens[refresh] = {
                "shop": shop,
                "expires_at": now + self.refresh_token_ttl,
            }
            # one refreshable token per app and shop: a new grant retires the older chain
            for old in (
                self._refresh_current.pop(shop, None),
                self._refresh_previous.pop(shop, None),
            ):
                if old:
                    self.refresh_tokens.pop(old, None)
            self._refresh_current[shop] = refresh
        self.tokens[token] = info
        return body

    def _issue_online(self, shop: str, claims: dict[str, Any]) -> dict[str, Any]:
        token = "shpua_" + secrets.token_hex(16)
        ttl = 86399
        self.tokens[token] = {
            "shop": shop,
            "expires_at": self.now() + ttl,
            "scope": self.scope,
            "kind": "online",
        }
        user_id = int(claims["sub"]) if str(claims.get("sub", "")).isdigit() else 1
        return {
            "access_token": token,
            "scope": self.scope,
            "expires_in": ttl,
            "associated_user_scope": self.scope,
            "associated_user": {
                "id": user_id,
                "first_name": "Test",
                "last_name": "User",
                "email": f"user{user_id}@example.com",
                "account_owner": True,
                "locale": "en",
                "collaborator": False,
                "email_verified": True,
            },
        }

    def _refresh(self, shop: str, refresh: str) -> tuple[int, dict[str, Any]]:
        info = self.refresh_tokens.get(refresh)
        current = self._refresh_current.get(shop)
        previous = self._refresh_previous.get(shop)
        grace = self.refresh_reuse == "until_replacement_used"
        if (
            info is None
            or info["shop"] != shop
            or info["expires_at"] < self.now()
            or info.get("used")
            and not (grace and refresh == previous)
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        info["used"] = True
        if refresh == current:
            # the replacement is being used: the token before it is retired
            if previous and previous != refresh:
                self.refresh_tokens.pop(previous, None)
            self._refresh_previous[shop] = refresh
        elif current:
            # retrying the previous token (grace mode): the unused replacement is dropped
            self.refresh_tokens.pop(current, None)
        if not grace:
            self._refresh_previous.pop(shop, None)
        self._refresh_current.pop(shop, None)
        now = self.now()
        token = "shpat_" + secrets.token_hex(16)
        new_refresh = "shprt_" + secrets.token_hex(24)
        self.tokens[token] = {
            "shop": shop,
            "expires_at": now + self.access_token_ttl,
            "scope": self.scope,
            "kind": "offline",
        }
        self.refresh_tokens[new_refresh] = {
            "shop": shop,
            "expires_at": now + self.refresh_token_ttl,
        }
        self._refresh_current[shop] = new_refresh
        self.refresh_count[shop] = self.refresh_count.get(shop, 0) + 1
        return 200, {
            "access_token": token,
            "expires_in": self.access_token_ttl,
            "refresh_token": new_refresh,
            "refresh_token_expires_in": self.refresh_token_ttl,
            "scope": self.scope,
        }

    # -- GraphQL endpoint ----------------------------------------------------------------------
    def _bucket(self, shop: str) -> _Bucket:
        bucket = self._buckets.get(shop)
        if bucket is None:
            bucket = self._buckets[shop] = _Bucket(self.bucket_max, self.restore_rate, self.now())
        return bucket

    async def _h_graphql(self, request: web.Request) -> web.StreamResponse:
        shop = request.match_info["shop"]
        version = request.match_info["version"]
        if not self._shop_known(shop):
            return json_response({"errors": "Not Found"}, 404)
        token = request.headers.get("X-Shopify-Access-Token", "")
        info = self.tokens.get(token)
        if (
            info is None
            or info["shop"] != shop
            or (info["expires_at"] is not None and info["expires_at"] <= self.now())
        ):
            return json_response({"errors": INVALID_TOKEN_ERROR}, 401)
        try:
            payload = await request.json()
            query = payload["query"]
            variables = payload.get("variables") or {}
            operation_name = payload.get("operationName")
        except (ValueError, KeyError, TypeError):
            return json_response({"errors": [{"message": "No query string was present"}]}, 400)
        headers = {"X-Shopify-API-Version": version}
        call_meta: dict[str, Any] = {"version": version, "time": time.time(), "token": token}
        try:
            op = parse_operation(query, variables, operation_name)
        except GraphQLError as exc:
            self.graphql_calls.append(
                GraphQLCall(
                    shop,
                    None,
                    variables,
                    query,
                    operation=None,
                    fields=[],
                    args={},
                    throttled=False,
                    http_status=200,
                    cost=0,
                    **call_meta,
                )
            )
            return json_response({"errors": [exc.as_dict()]}, 200, headers)

        cost = query_cost(op, query, variables)
        with self._lock:
            bucket = self._bucket(shop)
            bucket.refill(self.now())
            forced = self._throttle_next.pop(0) if self._throttle_next else None
            throttled = forced is not None or bucket.available < cost
            if not throttled:
                bucket.available -= cost
            throttle_status = bucket.status()
        first = op.fields[0]
        call = GraphQLCall(
            shop,
            first.name,
            variables,
            query,
            operation=op.type,
            fields=[f.name for f in op.fields],
            args=first.args,
            throttled=throttled,
            http_status=(forced or 200) if throttled else 200,
            cost=cost,
            **call_meta,
        )
        self.graphql_calls.append(call)
        cost_ext = {
            "requestedQueryCost": cost,
            "actualQueryCost": None if throttled else cost,
            "throttleStatus": throttle_status,
        }
        if throttled:
            self.throttled_calls.append(call)
            body = {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOC},
                    }
                ],
                "extensions": {"cost": cost_ext},
            }
            if forced == 429:
                headers["Retry-After"] = "1"
            return json_response(body, forced or 200, headers)

        data: dict[str, Any] = {}
        try:
            for field in op.fields:
                too_large = _too_large_arrays(field.args, [field.name])
                if too_large:
                    path, size = too_large
                    raise GraphQLError(
                        f"The input array size of {size} is greater than the maximum allowed "
                        f"of {MAX_INPUT_ARRAY}.",
                        "MAX_INPUT_SIZE_EXCEEDED",
                    )
                ctx = GraphQLContext(self, shop, field, op, variables, query, token)
                result = self._resolve(ctx)
                if hasattr(result, "__await__"):
                    result = await result
                if isinstance(result, web.StreamResponse):
                    return result
                if isinstance(result, dict) and ("data" in result or "errors" in result):
                    body = dict(result)
                    body.setdefault("extensions", {"cost": cost_ext})
                    return json_response(body, 200, headers)
                data[field.key] = result
        except GraphQLError as exc:
            error = exc.as_dict()
            return json_response(
                {"errors": [error], "extensions": {"cost": cost_ext}}, 200, headers
            )
        return json_response({"data": data, "extensions": {"cost": cost_ext}}, 200, headers)

    def _resolve(self, ctx: GraphQLContext) -> Any:
        handler = self._handlers.get(ctx.name)
        if handler is not None:
            return handler(ctx) if callable(handler) else handler
        builtin = self._builtins.get(ctx.name)
        if builtin is None:
            type_name = "Mutation" if ctx.operation == "mutation" else "QueryRoot"
            raise GraphQLError(
                f"Field '{ctx.name}' doesn't exist on type '{type_name}'",
                "undefinedField",
                typeName=type_name,
                fieldName=ctx.name,
            )
        with self._lock:
            return builtin(ctx)

    # -- built-in answers ----------------------------------------------------------------------
    def _q_shop(self, ctx: GraphQLContext) -> dict[str, Any]:
        data = self.shops[ctx.shop]
        return {
            "id": f"gid://shopify/Shop/{data['id']}",
            "name": data["name"],
            "email": data["email"],
            "contactEmail": data["email"],
            "ianaTimezone": data["iana_timezone"],
            "timezoneAbbreviation": None,
            "currencyCode": data["currency_code"],
            "billingAddress": {"countryCodeV2": data["country_code"]},
            "myshopifyDomain": ctx.shop,
            "primaryDomain": {"host": ctx.shop, "url": f"https://{ctx.shop}"},
            "plan": {"displayName": "Basic", "partnerDevelopment": False, "shopifyPlus": False},
        }

    def _q_app_installation(self, ctx: GraphQLContext) -> dict[str, Any]:
        scopes = self.tokens.get(ctx.token, {}).get("scope", self.scope)
        return {
            "id": "gid://shopify/AppInstallation/1",
            "accessScopes": [{"handle": s} for s in scopes.split(",") if s],
        }

    def _discount_status(self, record: dict[str, Any]) -> str:
        if record.get("deactivated"):
            return "EXPIRED"
        now = _iso(self.now())
        if record.get("startsAt") and record["startsAt"] > now:
            return "SCHEDULED"
        if record.get("endsAt") and record["endsAt"] < now:
            return "EXPIRED"
        return "ACTIVE"

    def _discount_node(self, record: dict[str, Any]) -> dict[str, Any]:
        codes = record["codes"]
        return {
            "id": record["id"],
            "codeDiscount": {
                "__typename": "DiscountCodeBasic",
                "title": record["title"],
                "status": self._discount_status(record),
                "startsAt": record.get("startsAt"),
                "endsAt": record.get("endsAt"),
                "usageLimit": record.get("usageLimit"),
                "appliesOncePerCustomer": record.get("appliesOncePerCustomer", False),
                "asyncUsageCount": 0,
                "codes": {"nodes": [{"code": c} for c in codes[:MAX_INPUT_ARRAY]]},
                "codesCount": {"count": len(codes), "precision": "EXACT"},
                "customerGets": record.get("customerGets"),
                "combinesWith": record.get("combinesWith"),
            },
        }

    def _shop_codes(self, shop: str) -> dict[str, str]:
        return self.discount_codes.setdefault(shop, {})

    def _m_discount_create(self, ctx: GraphQLContext) -> dict[str, Any]:
        data = ctx.args.get("basicCodeDiscount")
        if not isinstance(data, dict):
            raise GraphQLError(
                "Field 'discountCodeBasicCreate' is missing required arguments: basicCodeDiscount",
                "missingRequiredArguments",
            )
        errors = []
        code = str(data.get("code") or "").strip()
        base = ["basicCodeDiscount"]
        if not code:
            errors.append(_user_error([*base, "code"], "BLANK", "Code can't be blank"))
        elif len(code) > 255:
            errors.append(_user_error([*base, "code"], "TOO_LONG", "Code is too long"))
        elif code.upper() in self._shop_codes(ctx.shop):
            errors.append(_user_error([*base, "code"], "TAKEN", TAKEN_MESSAGE))
        if not data.get("title"):
            errors.append(_user_error([*base, "title"], "BLANK", "Title can't be blank"))
        value = (data.get("customerGets") or {}).get("value") or {}
        pct = value.get("percentage")
        if pct is not None and not 0 <= float(pct) <= 1:
            errors.append(
                _user_error(
                    [*base, "customerGets", "value", "percentage"],
                    "VALUE_OUTSIDE_RANGE",
                    "Value must be between 0.0 and 1.0",
                )
            )
        if errors:
            return {"codeDiscountNode": None, "userErrors": errors}
        gid = f"gid://shopify/DiscountCodeNode/{self._next_id()}"
        record = {
            "id": gid,
            "shop": ctx.shop,
            "title": data["title"],
            "codes": [code],
            "input": data,
            "createdAt": _iso(self.now()),
            **{
                k: data.get(k)
                for k in (
                    "startsAt",
                    "endsAt",
                    "usageLimit",
                    "appliesOncePerCustomer",
                    "customerGets",
                    "combinesWith",
                )
            },
        }
        self.discounts.setdefault(ctx.shop, {})[gid] = record
        self._shop_codes(ctx.shop)[code.upper()] = gid
        return {"codeDiscountNode": self._discount_node(record), "userErrors": []}

    def _find_discount(self, ctx: GraphQLContext, gid: Any) -> dict[str, Any] | None:
        return self.discounts.get(ctx.shop, {}).get(str(gid))

    def _m_bulk_add(self, ctx: GraphQLContext) -> dict[str, Any]:
        codes = ctx.args.get("codes") or []
        record = self._find_discount(ctx, ctx.args.get("discountId"))
        if record is None:
            return {
                "bulkCreation": None,
                "userErrors": [
                    _user_error(["discountId"], "INVALID", "Code discount does not exist.")
                ],
            }
        if not codes:
            return {
                "bulkCreation": None,
                "userErrors": [_user_error(["codes"], "BLANK", "Codes can't be blank")],
            }
        shop_codes = self._shop_codes(ctx.shop)
        results = []
        for item in codes:
            code = str((item or {}).get("code") or "").strip() if isinstance(item, dict) else ""
            errors = []
            if not code:
                errors.append(_user_error(["code"], "BLANK", "Code can't be blank"))
            elif len(code) > 255:
                errors.append(_user_error(["code"], "TOO_LONG", "Code is too long"))
            elif code.upper() in shop_codes:
                errors.append(_user_error(["code"], "TAKEN", TAKEN_MESSAGE))
            else:
                shop_codes[code.upper()] = record["id"]
                record["codes"].append(code)
            results.append({"code": code, "errors": errors})
        gid = f"gid://shopify/DiscountRedeemCodeBulkCreation/{self._next_id()}"
        self.bulk_creations[gid] = {
            "id": gid,
            "shop": ctx.shop,
            "discountId": record["id"],
            "codes": results,
            "polls": 0,
        }
        return {
            "bulkCreation": {
                "id": gid,
                "done": False,
                "codesCount": len(results),
                "importedCount": 0,
                "failedCount": 0,
            },
            "userErrors": [],
        }

    def _q_bulk_creation(self, ctx: GraphQLContext) -> dict[str, Any] | None:
        bulk = self.bulk_creations.get(str(ctx.args.get("id")))
        if bulk is None or bulk["shop"] != ctx.shop:
            return None
        bulk["polls"] += 1
        done = bulk["polls"] >= self.bulk_polls_until_done
        failed = sum(1 for c in bulk["codes"] if c["errors"])
        return {
            "id": bulk["id"],
            "done": done,
            "codesCount": len(bulk["codes"]),
            "importedCount": len(bulk["codes"]) - failed if done else 0,
            "failedCount": failed if done else 0,
            "discountCode": self._discount_node(self.discounts[ctx.shop][bulk["discountId"]])
            if bulk["discountId"] in self.discounts.get(ctx.shop, {})
            else None,
            "codes": {
                "nodes": [
                    {
                        "code": c["code"],
                        "errors": c["errors"] if done else [],
                        "discountRedeemCode": {"code": c["code"]}
                        if done and not c["errors"]
                        else None,
                    }
                    for c in bulk["codes"]
                ]
            },
        }

    def _m_discount_delete(self, ctx: GraphQLContext) -> dict[str, Any]:
        gid = str(ctx.args.get("id"))
        record = self.discounts.get(ctx.shop, {}).pop(gid, None)
        if record is None:
            return {
                "deletedCodeDiscountId": None,
                "userErrors": [_user_error(["id"], "INVALID", "Discount does not exist")],
            }
        codes = self._shop_codes(ctx.shop)
        for code in record["codes"]:
            codes.pop(code.upper(), None)
        return {"deletedCodeDiscountId": gid, "userErrors": []}

    def _set_active(self, ctx: GraphQLContext, active: bool) -> dict[str, Any]:
        record = self._find_discount(ctx, ctx.args.get("id"))
        if record is None:
            return {
                "codeDiscountNode": None,
                "userErrors": [_user_error(["id"], "INVALID", "Discount does not exist")],
            }
        record["deactivated"] = not active
        if not active:
            record["endsAt"] = _iso(self.now())
        elif record.get("endsAt") and record["endsAt"] <= _iso(self.now()):
            record["endsAt"] = None
        return {"codeDiscountNode": self._discount_node(record), "userErrors": []}

    def _m_discount_deactivate(self, ctx: GraphQLContext) -> dict[str, Any]:
        return self._set_active(ctx, False)

    def _m_discount_activate(self, ctx: GraphQLContext) -> dict[str, Any]:
        return self._set_active(ctx, True)

    def _q_discount_by_code(self, ctx: GraphQLContext) -> dict[str, Any] | None:
        gid = self._shop_codes(ctx.shop).get(str(ctx.args.get("code", "")).upper())
        record = self._find_discount(ctx, gid) if gid else None
        return self._discount_node(record) if record else None

    def _q_discount_node(self, ctx: GraphQLContext) -> dict[str, Any] | None:
        record = self._find_discount(ctx, ctx.args.get("id"))
        return self._discount_node(record) if record else None

    def _customer_json(self, c: dict[str, Any]) -> dict[str, Any]:
        sms = c["sms"]
        phone = {
            "phoneNumber": c["phone"],
            "marketingState": sms["marketingState"],
            "marketingOptInLevel": sms["marketingOptInLevel"],
            "marketingUpdatedAt": sms["consentUpdatedAt"],
            "marketingCollectedFrom": sms["consentCollectedFrom"],
            "smsMarketingConsent": dict(sms),
        }
        return {
            "id": c["id"],
            "firstName": c["firstName"],
            "lastName": c["lastName"],
            "displayName": " ".join(x for x in (c["firstName"], c["lastName"]) if x) or None,
            "email": c["email"],
            "phone": c["phone"],
            "defaultEmailAddress": {"emailAddress": c["email"]} if c["email"] else None,
            "defaultPhoneNumber": phone if c["phone"] else None,
            "smsMarketingConsent": dict(sms) if c["phone"] else None,
            "createdAt": c["createdAt"],
            "updatedAt": c["updatedAt"],
        }

    def _m_sms_consent(self, ctx: GraphQLContext) -> dict[str, Any]:
        data = ctx.args.get("input") or {}
        gid = str(data.get("customerId") or "")
        consent = data.get("smsMarketingConsent") or {}
        base = ["input", "smsMarketingConsent"]
        errors = []
        if not gid:
            errors.append(_user_error(["input", "customerId"], "BLANK", "Customer can't be blank"))
        state = consent.get("marketingState")
        if state not in ("SUBSCRIBED", "UNSUBSCRIBED", "PENDING", "NOT_SUBSCRIBED"):
            errors.append(
                _user_error(
                    [*base, "marketingState"], "INVALID", f"Marketing state {state!r} is not valid"
                )
            )
        level = consent.get("marketingOptInLevel")
        if level is not None and level not in ("SINGLE_OPT_IN", "CONFIRMED_OPT_IN", "UNKNOWN"):
            errors.append(
                _user_error(
                    [*base, "marketingOptInLevel"],
                    "INVALID",
                    f"Opt-in level {level!r} is not valid",
                )
            )
        if errors:
            return {"customer": None, "userErrors": errors}
        customers = self.customers.setdefault(ctx.shop, {})
        if gid not in customers:  # unknown customers are created on the fly
            self.add_customer(ctx.shop, gid)
        customer = customers[gid]
        updated_at = consent.get("consentUpdatedAt") or _iso(self.now())
        customer["sms"].update(
            marketingState=state,
            marketingOptInLevel=level or customer["sms"]["marketingOptInLevel"],
            consentUpdatedAt=updated_at,
        )
        customer["updatedAt"] = _iso(self.now())
        if customer["phone"] is None:
            customer["phone"] = consent.get("phone")
        self.consent[gid] = {"shop": ctx.shop, **customer["sms"]}
        self.consent_updates.append((ctx.shop, gid, dict(consent)))
        return {"customer": self._customer_json(customer), "userErrors": []}

    def _q_customer(self, ctx: GraphQLContext) -> dict[str, Any] | None:
        customer = self.customers.get(ctx.shop, {}).get(str(ctx.args.get("id")))
        return self._customer_json(customer) if customer else None

    def _q_customers(self, ctx: GraphQLContext) -> dict[str, Any]:
        first = int(ctx.args.get("first") or ctx.args.get("last") or 50)
        search = str(ctx.args.get("query") or "")
        found = []
        for customer in self.customers.get(ctx.shop, {}).values():
            if search:
                key, _, wanted = search.partition(":")
                value = {
                    "phone": customer["phone"],
                    "email": customer["email"],
                    "id": customer["id"].rsplit("/", 1)[-1],
                }.get(key.strip())
                if not wanted or value is None or wanted.strip().strip("'\"") != value:
                    continue
            found.append(self._customer_json(customer))
        page = found[:first]
        return {
            "nodes": page,
            "edges": [{"cursor": c["id"], "node": c} for c in page],
            "pageInfo": {
                "hasNextPage": len(found) > first,
                "hasPreviousPage": False,
                "startCursor": page[0]["id"] if page else None,
                "endCursor": page[-1]["id"] if page else None,
            },
        }

    # -- control API ---------------------------------------------------------------------------
    async def _c_calls(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", 0))
        return json_response([c.as_dict() for c in self.graphql_calls[offset:]])

    async def _c_state(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "refresh_count": self.refresh_count,
                "throttled": len(self.throttled_calls),
                "calls": len(self.graphql_calls),
                "token_requests": self.token_requests,
                "discounts": {shop: list(d.values()) for shop, d in self.discounts.items()},
                "bulk_creations": list(self.bulk_creations.values()),
                "consent": self.consent,
                "clock": self.clock,
            },
        )

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"ok": True})

    async def _read_json(self, request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        data = await request.json()
        return data if isinstance(data, dict) else {}

    async def _c_throttle_next(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        self.throttle_next(int(data.get("n", 1)), int(data.get("http_status", 200)))
        return json_response({"ok": True})

    async def _c_register_code(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        self.register_code(data["shop"], data["code"])
        return json_response({"ok": True})

    async def _c_add_token(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        token = self.add_token(data["shop"], data.get("token"), data.get("expires_in"))
        return json_response({"token": token})

    async def _c_advance(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        self.advance(float(data.get("seconds", 0)))
        return json_response({"clock": self.clock})

    async def _c_bucket(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        self.set_bucket(
            data["shop"], data.get("available"), data.get("maximum"), data.get("restore_rate")
        )
        return json_response({"ok": True})

    async def _c_customers(self, request: web.Request) -> web.Response:
        data = await self._read_json(request)
        shop = data.pop("shop")
        return json_response({"id": self.add_customer(shop, data.pop("id", None), **data)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback stand-in for Shopify's Admin API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--api-version", default="2026-10")
    parser.add_argument("--shop", action="append", default=[], help="shop domain (repeatable)")
    parser.add_argument("--bucket-max", type=float, default=2000.0)
    parser.add_argument("--restore-rate", type=float, default=100.0)
    parser.add_argument(
        "--refresh-reuse", default="strict", choices=("strict", "until_replacement_used")
    )
    args = parser.parse_args(argv)
    fake = FakeShopify(
        args.client_id,
        args.client_secret,
        args.api_version,
        {shop: {} for shop in args.shop} or None,
        bucket_max=args.bucket_max,
        restore_rate=args.restore_rate,
        refresh_reuse=args.refresh_reuse,
    )
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever(args.port, args.host)


if __name__ == "__main__":
    main()
