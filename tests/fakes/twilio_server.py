"""Loopback stand-in for Twilio's Programmable Messaging REST API (2010-04-01).

In-process::

    with FakeTwilio(auth_token="tok") as fake:
        client = twilio.rest.Client(fake.account_sid, fake.auth_token)
        client.api.base_url = fake.url
        client.messages.create(to="+15005550006", from_="+15005550001", body="hi")

Separate process: ``python -m tests.fakes.twilio_server --port 0 --auth-token T`` prints
``READY http://127.0.0.1:<port>``; configure and read it through ``/_fake/...``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import contextlib
import email.utils
import json
import random
import re
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime
from json.encoder import encode_basestring_ascii as _jstr
from typing import Any
from urllib.parse import unquote_plus, urlencode

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes._server import FakeService, json_response

DEFAULT_ACCOUNT_SID = "AC" + "0" * 31 + "1"
DEFAULT_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
API_VERSION = "2010-04-01"
_ACCOUNTS = f"/{API_VERSION}/Accounts/"

ERROR_MESSAGES = {
    20001: "Invalid parameter",
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20503: "Service Unavailable",
    21211: "Invalid 'To' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number",
    21602: "Message body is required.",
    21603: "The 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21624: "Invalid Validity Period Value",
}
FAULT_CODES = {429: 20429, 500: 20500, 502: 20500, 503: 20503}
TERMINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})
SENT_STATUSES = frozenset({"sent", "delivered", "undelivered", "read"})
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

# GSM 03.38 basic character set (escape 0x1B excluded) and its extension table.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


def count_segments(body: str) -> int:
    """Segments Twilio would bill for ``body`` (GSM-7 160/153, else UCS-2 70/67; a split never
    breaks an escape pair or a surrogate pair)."""
    if not body:
        return 1
    chars = set(body)
    if chars <= GSM7_BASIC:  # fast path: one unit per character
        return 1 if len(body) <= 160 else -(-len(body) // 153)
    if chars <= GSM7_ALL:
        units = [2 if c in GSM7_EXTENSION else 1 for c in body]
        single, multi = 160, 153
    else:
        units = [2 if ord(c) > 0xFFFF else 1 for c in body]
        single, multi = 70, 67
    if sum(units) <= single:
        return 1
    segments, used = 1, 0
    for unit in units:
        if used + unit > multi:
            segments += 1
            used = 0
        used += unit
    return segments


try:  # yarl (an aiohttp dependency) has a C unquoter, ~6x faster than urllib's
    from yarl._quoting import _Unquoter

    _unquote = _Unquoter()

    def _unquote_plus(text: str) -> str:
        return _unquote(text.replace("+", " "))

except ImportError:  # pragma: no cover
    _unquote_plus = unquote_plus


def parse_form(text: str) -> tuple[dict[str, Any], list[str]]:
    """Parse a form body (Twilio's create params); repeated MediaUrl values are collected."""
    params: dict[str, Any] = {}
    media: list[str] = []
    if not text:
        return params, media
    for part in text.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in key or "+" in key:
            key = _unquote_plus(key)
        if "%" in value or "+" in value:
            value = _unquote_plus(value)
        if key == "MediaUrl":
            media.append(value)
        else:
            params[key] = value
    if media:
        params["MediaUrl"] = media
    return params, media


def twilio_error(code: int, status: int, message: str | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class _Rfc2822Clock:
    """Caches the RFC 2822 rendering of the current second (Twilio's date format)."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def render(self, ts: float) -> str:
        second = int(ts)
        if second != self._second:
            self._second = second
            self._text = email.utils.formatdate(second, usegmt=False)
        return self._text


def rfc2822(ts: float | None) -> str | None:
    return None if ts is None else email.utils.formatdate(int(ts), usegmt=False)


_CREATE_TEMPLATE = (
    '{{"account_sid": "{acct}", "api_version": "2010-04-01", "body": {body}, '
    '"date_created": "{date}", "date_sent": null, "date_updated": "{date}", '
    '"direction": "outbound-api", "error_code": null, "error_message": null, '
    '"from": {from_}, "messaging_service_sid": {ms}, "num_media": "{nm}", '
    '"num_segments": "{ns}", "price": null, "price_unit": "USD", "sid": "{sid}", '
    '"status": "{status}", "subresource_uris": {{'
    '"media": "/2010-04-01/Accounts/{acct}/Messages/{sid}/Media.json", '
    '"feedback": "/2010-04-01/Accounts/{acct}/Messages/{sid}/Feedback.json"}}, '
    '"to": {to}, "uri": "/2010-04-01/Accounts/{acct}/Messages/{sid}.json"}}'
)


class FakeMessage:
    """An accepted outbound message."""

    __slots__ = (
        "sid", "account_sid", "to", "from_", "body", "messaging_service_sid", "status_callback",
        "validity_period", "media_urls", "params", "status", "num_segments", "created_at",
        "date_created", "sent_at", "updated_at", "error_code", "seq",
    )  # fmt: skip

    def __init__(
        self, sid, account_sid, to, from_, body, messaging_service_sid, status_callback,
        validity_period, media_urls, params, status, num_segments, created_at, date_created, seq,
    ) -> None:  # fmt: skip
        self.sid = sid
        self.account_sid = account_sid
        self.to = to
        self.from_ = from_
        self.body = body
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback
        self.validity_period = validity_period
        self.media_urls = media_urls
        self.params = params
        self.status = status
        self.num_segments = num_segments
        self.created_at = created_at
        self.date_created = date_created
        self.seq = seq
        self.sent_at = None
        self.updated_at = created_at
        self.error_code = None

    def create_json(self) -> bytes:
        """The create answer, rendered from a template (same content as as_twilio_json())."""
        return _CREATE_TEMPLATE.format(
            acct=self.account_sid,
            body=_jstr(self.body),
            date=self.date_created,
            from_=_jstr(self.from_) if self.from_ is not None else "null",
            ms=_jstr(self.messaging_service_sid) if self.messaging_service_sid else "null",
            nm=len(self.media_urls),
            ns=self.num_segments,
            sid=self.sid,
            status=self.status,
            to=_jstr(self.to),
        ).encode()

    def __repr__(self) -> str:
        return f"FakeMessage({self.sid} to={self.to} status={self.status})"

    def as_dict(self) -> dict[str, Any]:
        """Compact form used by the control API (and handy in assertions)."""
        return {
            "sid": self.sid,
            "to": self.to,
            "from": self.from_,
            "body": self.body,
            "messaging_service_sid": self.messaging_service_sid,
            "status": self.status,
            "status_callback": self.status_callback,
            "validity_period": self.validity_period,
            "media_urls": self.media_urls,
            "num_segments": self.num_segments,
            "error_code": self.error_code,
            "created_at": self.created_at,
        }

    def as_twilio_json(self) -> dict[str, Any]:
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": self.date_created,
            "date_sent": rfc2822(self.sent_at),
            "date_updated": rfc2822(self.updated_at),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media_urls)),
            "num_segments": str(self.num_segments),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": uri[:-5] + "/Media.json",
                "feedback": uri[:-5] + "/Feedback.json",
            },
            "to": self.to,
            "uri": uri,
        }


class CreateRequest:
    """One POST to Messages.json, whatever its outcome.

    ``outcome``: "accepted", "dropped" (created, answer lost), "rejected" (validation or
    permanent error), "injected" (fail_next / error_rate), "unauthorized".
    """

    __slots__ = ("time", "params", "outcome", "status", "code", "sid")

    def __init__(self, time_, params, outcome, status, code=None, sid=None) -> None:
        self.time = time_
        self.params = params
        self.outcome = outcome
        self.status = status
        self.code = code
        self.sid = sid

    def __repr__(self) -> str:
        return f"CreateRequest({self.outcome} {self.status} {self.code} to={self.params.get('To')})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "params": self.params,
            "outcome": self.outcome,
            "status": self.status,
            "code": self.code,
            "sid": self.sid,
        }


class CallbackRecord:
    __slots__ = ("time", "sid", "status", "url", "http_status", "error")

    def __init__(self, time_, sid, status, url, http_status, error=None) -> None:
        self.time = time_
        self.sid = sid
        self.status = status
        self.url = url
        self.http_status = http_status
        self.error = error

    def __repr__(self) -> str:
        return f"CallbackRecord({self.sid} {self.status} -> {self.http_status or self.error})"

    def as_dict(self) -> dict[str, Any]:
        return {s: getattr(self, s) for s in self.__slots__}


def _parse_date_filter(value: str) -> tuple[float, float, bool]:
    """→ (start, end, is_date). A date covers [00:00, next 00:00) UTC; a datetime is an instant."""
    value = value.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        return start, start + 86400, True
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = moment.timestamp()
    return ts, ts, False


class FakeTwilio(FakeService):
    """Twilio Messages API stand-in. See the module docstring and README.md."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        latency_ms: float = 0,
        latency_jitter_ms: float = 0,
        error_rate: float = 0.0,
        error_mix: dict[int, float] | None = None,
        fail_numbers: dict[str, Any] | None = None,
        drop_rate: float = 0.0,
        drop_after_accept_numbers: Iterable[str] = (),
        drop_mode: str = "hang",
        drop_hang_s: float = 30.0,
        auto_callbacks: Iterable[str] = (),
        callback_delay_ms: float = 0,
        delivery_failures: dict[str, Any] | None = None,
        callback_concurrency: int = 64,
        callback_timeout_s: float = 15.0,
        validate_numbers: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self._auth_header = "Basic " + base64.b64encode(
            f"{account_sid}:{auth_token}".encode()
        ).decode("ascii")
        self.seed = seed
        self._rng = random.Random(seed)
        self._sid_prefix = self._rng.getrandbits(64)
        self._sid_counter = 0
        self._clock = _Rfc2822Clock()
        self.callback_concurrency = callback_concurrency
        self.callback_timeout_s = callback_timeout_s
        self.validate_numbers = validate_numbers
        # behaviour (see configure())
        self.latency_ms = 0.0
        self.latency_jitter_ms = 0.0
        self.error_rate = 0.0
        self.error_mix: dict[int, float] = {429: 0.5, 500: 0.5}
        self.fail_numbers: dict[str, tuple[int, int]] = {}
        self.drop_rate = 0.0
        self.drop_after_accept_numbers: set[str] = set()
        self.drop_mode = "hang"
        self.drop_hang_s = 30.0
        self.auto_callbacks: tuple[str, ...] = ()
        self.callback_delay_ms = 0.0
        self.delivery_failures: dict[str, tuple[str, int]] = {}
        self.configure(
            latency_ms=latency_ms,
            latency_jitter_ms=latency_jitter_ms,
            error_rate=error_rate,
            error_mix=error_mix or self.error_mix,
            fail_numbers=fail_numbers or {},
            drop_rate=drop_rate,
            drop_after_accept_numbers=drop_after_accept_numbers,
            drop_mode=drop_mode,
            drop_hang_s=drop_hang_s,
            auto_callbacks=auto_callbacks,
            callback_delay_ms=callback_delay_ms,
            delivery_failures=delivery_failures or {},
        )
        # records
        self.messages: list[FakeMessage] = []
        self.requests: list[CreateRequest] = []
        self.callbacks: list[CallbackRecord] = []
        self.inbound: list[dict[str, Any]] = []
        self._by_sid: dict[str, FakeMessage] = {}
        self._to_counter: collections.Counter[str] = collections.Counter()
        self._fail_next: collections.deque[tuple[int, int, float | None]] = collections.deque()
        self._drop_next = 0
        self._session: aiohttp.ClientSession | None = None
        self._cb_tasks: set[asyncio.Task] = set()

    # -- configuration -------------------------------------------------------------------------
    def configure(self, **options: Any) -> dict[str, Any]:
        """Change behaviour at run time (same names as the constructor's keyword arguments)."""
        for key, value in options.items():
            if key in ("latency_ms", "latency_jitter_ms", "callback_delay_ms", "drop_hang_s"):
                setattr(self, key, float(value))
            elif key in ("error_rate", "drop_rate"):
                value = float(value)
                if not 0.0 <= value <= 1.0:
                    raise ValueError(f"{key} must be within [0, 1]")
                setattr(self, key, value)
            elif key == "error_mix":
                mix = {int(k): float(v) for k, v in dict(value).items()}
                if not mix or sum(mix.values()) <= 0:
                    raise ValueError("error_mix needs a positive weight")
                self.error_mix = mix
            elif key == "fail_numbers":
                self.fail_numbers = {to: self._fail_spec(spec) for to, spec in value.items()}
            elif key == "drop_after_accept_numbers":
                self.drop_after_accept_numbers = set(value)
            elif key == "drop_mode":
                if value not in ("hang", "close"):
                    raise ValueError("drop_mode is 'hang' or 'close'")
                self.drop_mode = value
            elif key == "auto_callbacks":
                if isinstance(value, str):
                    value = [v for v in value.split(",") if v]
                self.auto_callbacks = tuple(value)
            elif key == "delivery_failures":
                self.delivery_failures = {
                    to: (str(spec[0]), int(spec[1])) for to, spec in value.items()
                }
            else:
                raise ValueError(f"unknown FakeTwilio option {key!r}")
        return self.config()

    @staticmethod
    def _fail_spec(spec: Any) -> tuple[int, int]:
        if isinstance(spec, int):
            return (400, spec)
        status, code = spec
        return (int(status), int(code))

    def config(self) -> dict[str, Any]:
        return {
            "account_sid": self.account_sid,
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "error_rate": self.error_rate,
            "error_mix": {str(k): v for k, v in self.error_mix.items()},
            "fail_numbers": {k: list(v) for k, v in self.fail_numbers.items()},
            "drop_rate": self.drop_rate,
            "drop_after_accept_numbers": sorted(self.drop_after_accept_numbers),
            "drop_mode": self.drop_mode,
            "drop_hang_s": self.drop_hang_s,
            "auto_callbacks": list(self.auto_callbacks),
            "callback_delay_ms": self.callback_delay_ms,
            "delivery_failures": {k: list(v) for k, v in self.delivery_failures.items()},
        }

    def fail_next(
        self, n: int = 1, status: int = 500, code: int = 20500, retry_after: float | None = None
    ) -> None:
        """The next ``n`` create requests fail with ``status``/``code`` (nothing is created)."""
        for _ in range(n):
            self._fail_next.append((status, code, retry_after))

    def drop_next(self, n: int = 1) -> None:
        """The next ``n`` accepted creates lose their answer (see ``drop_mode``)."""
        self._drop_next += n

    # -- reading the records -------------------------------------------------------------------
    def received_to(self, number: str) -> list[FakeMessage]:
        return [m for m in self.messages if m.to == number]

    def count_by_to(self) -> dict[str, int]:
        return dict(self._to_counter)

    def get(self, sid: str) -> FakeMessage:
        return self._by_sid[sid]

    def stats(self) -> dict[str, Any]:
        outcomes = collections.Counter(r.outcome for r in self.requests)
        return {
            "requests": len(self.requests),
            "accepted": outcomes["accepted"] + outcomes["dropped"],
            "dropped": outcomes["dropped"],
            "rejected": outcomes["rejected"],
            "injected": outcomes["injected"],
            "unauthorized": outcomes["unauthorized"],
            "messages": len(self.messages),
            "unique_to": len(self._to_counter),
            "duplicates": {to: n for to, n in self._to_counter.items() if n > 1},
            "callbacks": {
                "posted": sum(1 for c in self.callbacks if c.error is None),
                "failed": sum(
                    1 for c in self.callbacks if c.error is not None or c.http_status >= 400
                ),
                "pending": len(self._cb_tasks),
            },
            "inbound": len(self.inbound),
        }

    def reset(self) -> None:
        """Forget messages, requests, callbacks and one-shot faults (configuration stays)."""
        if self._loop is not None and not self._in_loop_thread():
            self.run_sync(self._areset())
        else:
            self._reset_records()

    async def _areset(self) -> None:
        for task in list(self._cb_tasks):
            task.cancel()
        self._reset_records()

    def _reset_records(self) -> None:
        self.messages = []
        self.requests = []
        self.callbacks = []
        self.inbound = []
        self._by_sid = {}
        self._to_counter = collections.Counter()
        self._fail_next.clear()
        self._drop_next = 0

    # -- server plumbing -----------------------------------------------------------------------
    def build_app(self):
        """A bare handler for aiohttp's low-level server (routing by hand is cheaper)."""
        self._control = {
            ("GET", "messages"): self._c_messages,
            ("GET", "requests"): self._c_requests,
            ("GET", "stats"): self._c_stats,
            ("GET", "callbacks"): self._c_callbacks,
            ("GET", "config"): self._c_config,
            ("POST", "config"): self._c_config,
            ("POST", "reset"): self._c_reset,
            ("POST", "fail_next"): self._c_fail_next,
            ("POST", "drop_next"): self._c_drop_next,
            ("POST", "status"): self._c_status,
            ("POST", "inbound"): self._c_inbound,
        }
        return self._dispatch

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        method = request.method
        if path.startswith(_ACCOUNTS):
            account, _, tail = path[len(_ACCOUNTS) :].partition("/")
            if tail == "Messages.json":
                if method == "POST":
                    return await self._h_create(request, account)
                if method == "GET":
                    return await self._h_list(request, account)
            elif tail.startswith("Messages/") and tail.endswith(".json") and method == "GET":
                sid = tail[9:-5]
                if "/" not in sid:
                    return await self._h_fetch(request, account, sid)
        elif path.startswith("/_fake/"):
            handler = self._control.get((method, path[7:]))
            if handler is not None:
                return await handler(request)
        return self._not_found(request)

    async def _on_loop_start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.callback_concurrency),
            timeout=aiohttp.ClientTimeout(total=self.callback_timeout_s),
        )

    async def _on_loop_stop(self) -> None:
        tasks = list(self._cb_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _next_sid(self, prefix: str = "SM") -> str:
        self._sid_counter += 1
        return f"{prefix}{self._sid_prefix:016x}{self._sid_counter:016x}"

    def _authorized(self, request: web.BaseRequest) -> bool:
        header = request.headers.get("Authorization", "")
        if header == self._auth_header:
            return True
        if header[:6].lower() != "basic ":
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == self.account_sid and password == self.auth_token

    def _unauthorized(self) -> web.Response:
        body = twilio_error(20003, 401, "Authentication Error - invalid username")
        body["detail"] = "Your AccountSid or AuthToken was incorrect."
        return json_response(body, 401, {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    def _not_found(self, request: web.BaseRequest) -> web.Response:
        message = f"The requested resource {request.path} was not found"
        return json_response(twilio_error(20404, 404, message), 404)

    # -- create --------------------------------------------------------------------------------
    async def _h_create(self, request: web.BaseRequest, account: str) -> web.StreamResponse:
        now = time.time()
        params, media = parse_form((await request.read()).decode("utf-8", "replace"))
        if not self._authorized(request):
            self.requests.append(CreateRequest(now, params, "unauthorized", 401, 20003))
            return self._unauthorized()
        if account != self.account_sid:
            self.requests.append(CreateRequest(now, params, "rejected", 404, 20404))
            return self._not_found(request)

        if self.latency_ms or self.latency_jitter_ms:
            delay = self.latency_ms + self.latency_jitter_ms * self._rng.random()
            await asyncio.sleep(delay / 1000.0)

        fault = None
        if self._fail_next:
            fault = self._fail_next.popleft()
        elif self.error_rate and self._rng.random() < self.error_rate:
            status = self._pick_fault_status()
            fault = (status, FAULT_CODES.get(status, 20500), 1 if status == 429 else None)
        if fault is not None:
            status, code, retry_after = fault
            self.requests.append(CreateRequest(now, params, "injected", status, code))
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
            return json_response(twilio_error(code, status), status, headers)

        error = self._validate(params)
        if error is None:
            to = params["To"]
            if to in self.fail_numbers:
                error = self._fail_spec(self.fail_numbers[to])
        if error is not None:
            status, code = error
            self.requests.append(CreateRequest(now, params, "rejected", status, code))
            message = ERROR_MESSAGES.get(code)
            if code in (21211, 21408) and message:
                message = f"{message}: {params.get('To')}"
            return json_response(twilio_error(code, status, message), status)

        msg = self._accept(params, media, now)
        drop = False
        if self._drop_next > 0:
            self._drop_next -= 1
            drop = True
        elif msg.to in self.drop_after_accept_numbers or (
            self.drop_rate and self._rng.random() < self.drop_rate
        ):
            drop = True
        self.requests.append(
            CreateRequest(now, params, "dropped" if drop else "accepted", 201, None, msg.sid)
        )
        if drop:
            return await self._lose_answer(request)
        return web.Response(body=msg.create_json(), status=201, content_type="application/json")

    def _pick_fault_status(self) -> int:
        total = sum(self.error_mix.values())
        pick = self._rng.random() * total
        for status, weight in self.error_mix.items():
            pick -= weight
            if pick < 0:
                return status
        return next(iter(self.error_mix))

    def _validate(self, params: dict[str, Any]) -> tuple[int, int] | None:
        to = params.get("To", "")
        if not to:
            return (400, 21604)
        if not params.get("From") and not params.get("MessagingServiceSid"):
            return (400, 21603)
        body = params.get("Body", "")
        if not body and not params.get("MediaUrl"):
            return (400, 21602)
        if len(body) > 1600:
            return (400, 21617)
        if self.validate_numbers and not _E164.match(to):
            return (400, 21211)
        validity = params.get("ValidityPeriod")
        if validity is not None:
            try:
                seconds = int(validity)
            except ValueError:
                return (400, 21624)
            if not 1 <= seconds <= 36000:
                return (400, 21624)
        return None

    def _accept(self, params: dict[str, Any], media: list[str], now: float) -> FakeMessage:
        service = params.get("MessagingServiceSid") or None
        validity = params.get("ValidityPeriod")
        msg = FakeMessage(
            sid=self._next_sid(),
            account_sid=self.account_sid,
            to=params["To"],
            from_=params.get("From") or None,
            body=params.get("Body", ""),
            messaging_service_sid=service,
            status_callback=params.get("StatusCallback") or None,
            validity_period=int(validity) if validity is not None else None,
            media_urls=media,
            params=params,
            status="accepted" if service else "queued",
            num_segments=count_segments(params.get("Body", "")),
            created_at=now,
            date_created=self._clock.render(now),
            seq=len(self.messages),
        )
        self.messages.append(msg)
        self._by_sid[msg.sid] = msg
        self._to_counter[msg.to] += 1
        if self.auto_callbacks and msg.status_callback:
            self._spawn_callbacks(msg)
        return msg

    async def _lose_answer(self, request: web.BaseRequest) -> web.StreamResponse:
        """The message exists, but the client never gets an answer."""
        if self.drop_mode == "hang":
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.drop_hang_s
            closing = self._closing
            while loop.time() < deadline and not (closing and closing.is_set()):
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                await asyncio.sleep(0.05)
        transport = request.transport
        if transport is not None:
            transport.abort()
        # aiohttp cannot write to the aborted transport; the client sees a dropped connection.
        return web.Response(status=204)

    # -- list and fetch ------------------------------------------------------------------------
    async def _h_fetch(self, request: web.BaseRequest, account: str, sid: str) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        msg = self._by_sid.get(sid)
        if account != self.account_sid or msg is None:
            return self._not_found(request)
        return json_response(msg.as_twilio_json())

    async def _h_list(self, request: web.BaseRequest, account: str) -> web.Response:
        if not self._authorized(request):
            return self._unauthorized()
        if account != self.account_sid:
            return self._not_found(request)
        query = request.query
        filters = {k: query[k] for k in ("To", "From", "DateSent", "DateSent>", "DateSent<")
                   if k in query}  # fmt: skip
        try:
            page_size = max(1, min(1000, int(query.get("PageSize", 50))))
            page = int(query.get("Page", 0))
            checks = [(k, _parse_date_filter(v)) for k, v in filters.items() if k[:8] == "DateSent"]
        except ValueError as exc:
            return json_response(twilio_error(20001, 400, f"Invalid parameter: {exc}"), 400)
        token = query.get("PageToken", "")
        before_seq = None
        if token.startswith("PA") and token[2:] in self._by_sid:
            before_seq = self._by_sid[token[2:]].seq

        selected: list[FakeMessage] = []
        to, from_ = filters.get("To"), filters.get("From")
        for msg in reversed(self.messages):  # newest first, like Twilio
            if before_seq is not None and msg.seq >= before_seq:
                continue
            if to is not None and msg.to != to:
                continue
            if from_ is not None and msg.from_ != from_:
                continue
            if checks and not self._date_ok(msg, checks):
                continue
            selected.append(msg)
            if len(selected) > page_size:
                break
        has_more = len(selected) > page_size
        selected = selected[:page_size]
        path = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"

        def uri(page_no: int, page_token: str | None) -> str:
            q = dict(filters, PageSize=page_size, Page=page_no)
            if page_token:
                q["PageToken"] = page_token
            return path + "?" + urlencode(q)

        start = page * page_size
        return json_response(
            {
                "messages": [m.as_twilio_json() for m in selected],
                "end": start + max(len(selected) - 1, 0),
                "first_page_uri": uri(0, None),
                "next_page_uri": uri(page + 1, "PA" + selected[-1].sid) if has_more else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": uri(page - 1, None) if page > 0 else None,
                "start": start,
                "uri": uri(page, token or None),
            }
        )

    @staticmethod
    def _date_ok(msg: FakeMessage, checks) -> bool:
        # A message counts as sent when accepted (its date_sent is filled by status updates).
        ts = msg.sent_at if msg.sent_at is not None else msg.created_at
        for key, (start, end, is_date) in checks:
            if key == "DateSent>":
                if ts < start:
                    return False
            elif key == "DateSent<":
                if (ts >= end) if is_date else (ts > end):
                    return False
            elif is_date:
                if not start <= ts < end:
                    return False
            elif int(ts) != int(start):
                return False
        return True

    # -- status callbacks and inbound messages -------------------------------------------------
    def _spawn_callbacks(self, msg: FakeMessage) -> None:
        statuses = list(self.auto_callbacks)
        failure = self.delivery_failures.get(msg.to)
        plan: list[tuple[str, int | None]] = []
        if failure:
            plan = [(s, None) for s in statuses if s not in TERMINAL_STATUSES]
            plan.append(failure)
        else:
            plan = [(s, None) for s in statuses]
        task = asyncio.get_running_loop().create_task(self._run_callbacks(msg, plan))
        self._cb_tasks.add(task)
        task.add_done_callback(self._cb_tasks.discard)

    async def _run_callbacks(self, msg: FakeMessage, plan) -> None:
        if self.callback_delay_ms:
            await asyncio.sleep(self.callback_delay_ms / 1000.0)
        for status, error_code in plan:
            await self.apost_status(msg.sid, status, error_code)

    def _apply_status(self, msg: FakeMessage, status: str, error_code: int | None) -> None:
        now = time.time()
        msg.status = status
        msg.updated_at = now
        if error_code is not None:
            msg.error_code = int(error_code)
        if status in SENT_STATUSES and msg.sent_at is None:
            msg.sent_at = now

    def status_params(
        self, msg: FakeMessage, status: str, error_code: int | None = None
    ) -> dict[str, str]:
        params = {
            "MessageSid": msg.sid,
            "SmsSid": msg.sid,
            "MessageStatus": status,
            "SmsStatus": status,
            "To": msg.to,
            "From": msg.from_ or "",
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
        }
        if msg.messaging_service_sid:
            params["MessagingServiceSid"] = msg.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    async def apost_status(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        *,
        url: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> int | None:
        """Async form of :meth:`post_status` (for use on the server loop)."""
        msg = self._by_sid[sid]
        self._apply_status(msg, status, error_code)
        target = url or msg.status_callback
        if not target:
            raise ValueError(f"message {sid} has no StatusCallback")
        params = self.status_params(msg, status, error_code)
        if extra:
            params.update({k: str(v) for k, v in extra.items()})
        http_status, text = await self._post_signed(target, params)
        if isinstance(http_status, int):
            self.callbacks.append(CallbackRecord(time.time(), sid, status, target, http_status))
            return http_status
        self.callbacks.append(CallbackRecord(time.time(), sid, status, target, None, text))
        return None

    def post_status(
        self,
        sid: str,
        status: str,
        error_code: int | None = None,
        *,
        url: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> int | None:
        """POST a signed status callback for message ``sid`` to its StatusCallback (or ``url``)
        and update the message. Returns the HTTP status the app answered (None on a network
        error, which is recorded in ``callbacks``)."""
        return self.run_sync(self.apost_status(sid, status, error_code, url=url, extra=extra))

    def inbound_params(self, from_: str, to: str, body: str, **extra: Any) -> dict[str, str]:
        sid = self._next_sid()
        params = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to,
            "NumSegments": str(count_segments(body)),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        for key, value in extra.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        return params

    async def asend_inbound(
        self, url: str, from_: str, to: str, body: str, **extra: Any
    ) -> tuple[int | None, str]:
        params = self.inbound_params(from_, to, body, **extra)
        self.inbound.append(params)
        return await self._post_signed(url, params)

    def send_inbound(
        self, url: str, from_: str, to: str, body: str, **extra: Any
    ) -> tuple[int | None, str]:
        """POST a signed inbound-SMS webhook to ``url``; ``extra`` adds or (with None) removes
        form fields, e.g. ``OptOutType="STOP"``. Returns (HTTP status, response text)."""
        return self.run_sync(self.asend_inbound(url, from_, to, body, **extra))

    async def _post_signed(self, url: str, params: dict[str, str]) -> tuple[int | None, str]:
        if self._session is None:
            raise RuntimeError("FakeTwilio is not running")
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": self._next_sid("IT"),
        }
        try:
            async with self._session.post(url, data=params, headers=headers) as resp:
                return resp.status, await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def wait_for_callbacks(self, timeout: float = 30) -> None:
        """Block until every automatic callback scheduled so far has been posted."""

        async def idle() -> None:
            while self._cb_tasks:
                await asyncio.gather(*list(self._cb_tasks), return_exceptions=True)

        self.run_sync(asyncio.wait_for(idle(), timeout), timeout + 5)

    # -- control API ---------------------------------------------------------------------------
    async def _c_messages(self, request: web.BaseRequest) -> web.Response:
        offset = int(request.query.get("offset", 0))
        to = request.query.get("to")
        items = [m.as_dict() for m in self.messages[offset:] if to is None or m.to == to]
        return json_response(items)

    async def _c_requests(self, request: web.BaseRequest) -> web.Response:
        offset = int(request.query.get("offset", 0))
        return json_response([r.as_dict() for r in self.requests[offset:]])

    async def _c_stats(self, request: web.BaseRequest) -> web.Response:
        return json_response(self.stats())

    async def _c_callbacks(self, request: web.BaseRequest) -> web.Response:
        return json_response([c.as_dict() for c in self.callbacks])

    async def _c_config(self, request: web.BaseRequest) -> web.Response:
        if request.method == "POST":
            try:
                return json_response(self.configure(**(await request.json())))
            except (ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(self.config())

    async def _c_reset(self, request: web.BaseRequest) -> web.Response:
        await self._areset()
        return json_response({"ok": True})

    async def _c_fail_next(self, request: web.BaseRequest) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        self.fail_next(
            int(data.get("n", 1)),
            int(data.get("status", 500)),
            int(data.get("code", 20500)),
            data.get("retry_after"),
        )
        return json_response({"ok": True, "pending": len(self._fail_next)})

    async def _c_drop_next(self, request: web.BaseRequest) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        self.drop_next(int(data.get("n", 1)))
        return json_response({"ok": True, "pending": self._drop_next})

    async def _c_status(self, request: web.BaseRequest) -> web.Response:
        data = await request.json()
        try:
            status = await self.apost_status(
                data["sid"], data["status"], data.get("error_code"), url=data.get("url")
            )
        except (KeyError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"status": status})

    async def _c_inbound(self, request: web.BaseRequest) -> web.Response:
        data = await request.json()
        extra = data.get("extra") or {}
        status, text = await self.asend_inbound(
            data["url"], data["from"], data["to"], data["body"], **extra
        )
        return json_response({"status": status, "text": text})


def _parse_mix(text: str) -> dict[int, float]:
    text = text.strip()
    if text.startswith("{"):
        return {int(k): float(v) for k, v in json.loads(text).items()}
    mix = {}
    for part in text.split(","):
        status, _, weight = part.partition(":")
        mix[int(status)] = float(weight or 1)
    return mix


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback stand-in for Twilio's Messages API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--account-sid", default=DEFAULT_ACCOUNT_SID)
    parser.add_argument("--auth-token", default=DEFAULT_AUTH_TOKEN)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--error-mix", type=_parse_mix, default=None, help='"429:0.5,500:0.5"')
    parser.add_argument("--drop-rate", type=float, default=0.0)
    parser.add_argument("--drop-mode", choices=("hang", "close"), default="hang")
    parser.add_argument("--auto-callbacks", default="", help='e.g. "sent,delivered"')
    parser.add_argument("--callback-delay-ms", type=float, default=0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    fake = FakeTwilio(
        args.account_sid,
        args.auth_token,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        error_mix=args.error_mix,
        drop_rate=args.drop_rate,
        drop_mode=args.drop_mode,
        auto_callbacks=[s for s in args.auto_callbacks.split(",") if s],
        callback_delay_ms=args.callback_delay_ms,
        seed=args.seed,
    )
    with contextlib.suppress(KeyboardInterrupt):
        fake.serve_forever(args.port, args.host)


if __name__ == "__main__":
    main()


__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "CallbackRecord",
    "CreateRequest",
    "FakeMessage",
    "FakeTwilio",
    "count_segments",
    "twilio_error",
]
