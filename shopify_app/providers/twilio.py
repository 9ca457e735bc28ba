"""Twilio: sending through a thin pooled HTTP client, reconciliation through the `twilio` package.

Why two clients. The send path makes one create call per message, hundreds per second. Measured
against the local stand-in on this project's 2-core machine, `twilio.rest.Client` spent about
2.3 ms of CPU per create (requests' session machinery, header building, MessageInstance
deserialisation) against about 0.55 ms for the same POST over a pooled `http.client`
connection — the difference between missing and meeting the pipeline's 1 000 messages/s. So
`send` speaks the create call itself (the same form fields twilio-python sends) over a
thread-safe pool of keep-alive connections, and turns error answers into the package's own
exceptions with `twilio.base.version.Version.exception`, so errors are classified exactly as
`TwilioRestException` / `TwilioServiceException` (both `TwilioException`) would be.
Reconciliation is rare and uses `twilio.rest.Client` (one per thread, made in that thread after
any fork) with `client.api.base_url` pointed at TWILIO_API_BASE_URL.

Every call has a timeout. A connection that fails before the request was fully written is safe
to retry; one that fails after (timeout, reset while waiting for the answer) is an UNKNOWN
outcome — Twilio's create call takes no idempotency key, so only reconciliation may decide.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import http.client
import json
import logging
import os
import queue
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from twilio import __version__ as twilio_version
from twilio.base.exceptions import TwilioException
from twilio.base.version import Version
from twilio.http.response import Response as TwilioResponse

from shopify_app.providers.base import (
    ACCEPTED,
    RETRY,
    UNKNOWN,
    ProviderMessage,
    ProviderUnavailable,
    Sender,
    SendResult,
    classify,
)

log = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
# Keep-alive connections idle longer than this are not reused: the server may be closing them,
# and a request written into a closing connection has an unknown outcome.
MAX_IDLE_SECONDS = 15.0
# Reconciliation looks this far before the recorded hand-over for clock skew between hosts.
CLOCK_SKEW = timedelta(minutes=2)


class _Connections:
    """A thread-safe LIFO pool of keep-alive HTTP(S) connections to one host."""

    def __init__(self, base_url: str, timeout: float, size: int) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"TWILIO_API_BASE_URL must be an http(s) URL, got {base_url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.size = size
        self._ssl = ssl.create_default_context() if self.https else None
        self._pool: queue.LifoQueue[tuple[http.client.HTTPConnection, float]] = queue.LifoQueue()
        self._pid = os.getpid()

    def _new(self) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=self.timeout, context=self._ssl
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A connection and whether it was reused."""
        if self._pid != os.getpid():  # never share sockets with a parent process
            self._pool = queue.LifoQueue()
            self._pid = os.getpid()
        now = time.monotonic()
        while True:
            try:
                conn, last_used = self._pool.get_nowait()
            except queue.Empty:
                return self._new(), False
            if now - last_used <= MAX_IDLE_SECONDS and conn.sock is not None:
                return conn, True
            conn.close()

    def give_back(self, conn: http.client.HTTPConnection) -> None:
        if self._pool.qsize() < self.size:
            self._pool.put((conn, time.monotonic()))
        else:
            conn.close()


class _NotSent(Exception):
    """The request never fully left: safe to retry."""


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
        pool_size: int = 64,
        messaging_service_sid: str = "",
        from_number: str = "",
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.default_sender = Sender(messaging_service_sid, from_number)
        self._conns = _Connections(self.base_url, self.timeout, pool_size)
        self._create_path = (
            f"{self._conns.prefix}/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        )
        token = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Accept-Charset": "utf-8",
            "User-Agent": f"tidings (twilio-python/{twilio_version} compatible)",
        }
        self._local = threading.local()

    # -- sending ---------------------------------------------------------------------------

    def send(
        self,
        to: str,
        body: str,
        *,
        sender: Sender,
        status_callback: str | None,
        validity_period: int | None,
    ) -> SendResult:
        form: dict[str, str] = {"To": to, "Body": body}
        service = sender.messaging_service_sid or self.default_sender.messaging_service_sid
        if sender.messaging_service_sid or (not sender.from_number and service):
            form["MessagingServiceSid"] = service
        else:
            form["From"] = sender.from_number or self.default_sender.from_number
        if status_callback:
            form["StatusCallback"] = status_callback
        if validity_period:
            form["ValidityPeriod"] = str(int(validity_period))
        payload = urlencode(form).encode()
        try:
            status, headers, text = self._post(payload)
        except _NotSent as exc:
            return SendResult(RETRY, error_message=f"not sent: {exc}", retry_after=1.0)
        except (OSError, http.client.HTTPException) as exc:
            # The request was written; whether Twilio created the message is unknown.
            return SendResult(UNKNOWN, error_message=f"{type(exc).__name__}: {exc}")
        if status in (200, 201):
            try:
                data = json.loads(text)
                return SendResult(
                    ACCEPTED, sid=data["sid"], status=data.get("status"), http_status=status
                )
            except (ValueError, KeyError, TypeError):
                # Twilio said yes but the answer is unreadable: the message exists somewhere.
                return SendResult(
                    UNKNOWN, error_message="unreadable create answer", http_status=status
                )
        error = Version.exception(
            "POST",
            self._create_path,
            TwilioResponse(status, text, headers),
            "Unable to create record",
        )
        return self._refused(error, status, headers)

    def _refused(self, error: TwilioException, status: int, headers: dict[str, str]) -> SendResult:
        raw = getattr(error, "code", None)
        digits = isinstance(raw, str) and raw.isdigit()
        code = int(raw) if isinstance(raw, int) or digits else None
        message = getattr(error, "msg", None) or getattr(error, "detail", None) or str(error)
        outcome = classify(status, code)
        return SendResult(
            outcome,
            error_code=code,
            error_message=str(message)[:500],
            retry_after=parse_retry_after(headers.get("retry-after")),
            http_status=status,
        )

    def _post(self, payload: bytes) -> tuple[int, dict[str, str], str]:
        for _ in range(2):
            conn, reused = self._conns.take()
            try:
                if conn.sock is None:
                    conn.connect()
            except OSError as exc:
                conn.close()
                raise _NotSent(f"connect failed: {exc}") from exc
            try:
                conn.request("POST", self._create_path, body=payload, headers=self._headers)
            except OSError as exc:
                conn.close()
                if reused:  # a keep-alive connection the server had closed: try a fresh one
                    continue
                raise _NotSent(f"request not written: {exc}") from exc
            try:
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
            except BaseException:
                conn.close()
                raise
            headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                conn.close()
            else:
                self._conns.give_back(conn)
            return response.status, headers, text
        raise _NotSent("no usable connection")

    # -- reconciliation --------------------------------------------------------------------

    def _client(self):  # noqa: ANN202 - twilio.rest.Client, imported lazily
        client = getattr(self._local, "client", None)
        if client is None or getattr(self._local, "pid", None) != os.getpid():
            from twilio.http.http_client import TwilioHttpClient
            from twilio.rest import Client

            client = Client(
                self.account_sid,
                self.auth_token,
                http_client=TwilioHttpClient(timeout=self.timeout),
            )
            # twilio 9.x: each domain's base URL is an attribute (twilio/base/domain.py).
            client.api.base_url = self.base_url
            self._local.client = client
            self._local.pid = os.getpid()
        return client

    def find_sent(self, to: str, since: datetime, body: str) -> list[ProviderMessage]:
        since = since - CLOCK_SKEW
        found: dict[str, ProviderMessage] = {}
        try:
            client = self._client()
            # DateSent>= is day-granular (GMT). A message still queued at Twilio may not have a
            # date_sent yet, so a second pass walks the number's messages newest first.
            day = since.astimezone(UTC).date().isoformat()
            for item in client.messages.stream(to=to, date_sent_after=day, page_size=100):
                self._match(item, since, body, found)
            if not found:
                for item in client.messages.stream(to=to, page_size=100):
                    created = item.date_created
                    if created is not None and created < since:
                        break
                    self._match(item, since, body, found)
        except (TwilioException, OSError) as exc:
            raise ProviderUnavailable(f"twilio list failed: {exc}") from exc
        except Exception as exc:  # requests' errors (ConnectionError, Timeout) and the like
            raise ProviderUnavailable(f"twilio list failed: {type(exc).__name__}") from exc
        return sorted(found.values(), key=lambda m: (m.created_at or since, m.sid))

    @staticmethod
    def _match(item, since: datetime, body: str, found: dict[str, ProviderMessage]) -> None:  # noqa: ANN001
        created = item.date_created
        if item.body != body or (created is not None and created < since):
            return
        found[item.sid] = ProviderMessage(
            sid=item.sid,
            to=item.to,
            body=item.body,
            status=str(item.status),
            created_at=created,
            error_code=item.error_code,
        )


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return None


__all__ = ["TwilioProvider", "parse_retry_after"]
