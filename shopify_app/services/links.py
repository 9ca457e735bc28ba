"""Short links: make them, check where they may point, follow them, count the taps.

A token is 10 base62 characters from `secrets` (62^10 ≈ 8·10^17: unguessable, and exactly as
long as compose.placeholder_shortener assumes, so estimates and sends agree). Links may only
point at the shop's own domains (its myshopify domain, its primary domain and their
subdomains) and the domains the merchant allowed in `allowed_link_domains`.

Counting: only a person's tap is a click. Link-preview bots, scripts, prefetches and HEAD
requests are redirected like anyone else but do not count: GET requests from bots and prefetches
are stored with `is_bot=True` (so a merchant can see that previews happened), HEAD requests are
not stored at all. Unique clicks per message are computed by the stats from the rows.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import current_app
from sqlalchemy import Boolean, Connection, bindparam, insert, select, update

from shopify_app.extensions import db
from shopify_app.models import Click, Flow, Link, Shop, Subscriber, utcnow
from shopify_app.models.base import UTCDateTime
from shopify_app.services.bulk import bulk_insert
from shopify_app.sms.compose import SHORT_LINK_PLACEHOLDER_LEN

log = logging.getLogger(__name__)

TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_LENGTH = SHORT_LINK_PLACEHOLDER_LEN
REF_PARAM = "tidings_ref"
_TOKEN_RE = re.compile(r"^[A-Za-z0-9]{8,32}$")

# Link-preview fetchers and HTTP libraries (matched case-insensitively in the User-Agent).
# Deliberately no bare "bot": real phones have brand names like "CUBOT" in theirs.
BOT_AGENTS = (
    "facebookexternalhit",
    "facebot",
    "twitterbot",
    "slackbot",
    "slack-imgproxy",
    "whatsapp",
    "telegrambot",
    "discordbot",
    "skypeuripreview",
    "linkedinbot",
    "googlebot",
    "bingbot",
    "applebot",
    "imessage",
    "linkpreview",
    "pinterestbot",
    "redditbot",
    "embedly",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "headlesschrome",
    "bytespider",
    "yandexbot",
    "duckduckbot",
    "baiduspider",
)
_BOT_RE = re.compile("|".join(re.escape(a) for a in BOT_AGENTS), re.IGNORECASE)


class LinkNotAllowed(ValueError):
    """The URL points outside the shop's own and allowed domains."""


_TOKEN_SPACE = len(TOKEN_ALPHABET) ** TOKEN_LENGTH


def new_token() -> str:
    """10 base62 characters from 128 random bits (the modulo bias is below 2^-68)."""
    value = int.from_bytes(secrets.token_bytes(16), "big") % _TOKEN_SPACE
    chars = []
    for _ in range(TOKEN_LENGTH):
        value, digit = divmod(value, 62)
        chars.append(TOKEN_ALPHABET[digit])
    return "".join(chars)


def short_url(token: str, app_url: str | None = None) -> str:
    base = (app_url if app_url is not None else current_app.config["APP_URL"]).rstrip("/")
    return f"{base}/r/{token}"


def valid_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token or ""))


# --- where links may point ----------------------------------------------------------------


def shop_domains(shop: Shop) -> tuple[str, ...]:
    domains = [shop.domain, shop.primary_domain or ""]
    domains += [str(d) for d in (shop.setting("allowed_link_domains") or [])]
    cleaned = []
    for domain in domains:
        domain = domain.strip().lower().rstrip(".")
        if "://" in domain:  # a merchant may paste a URL instead of a domain
            domain = (urlsplit(domain).hostname or "").rstrip(".")
        if domain.startswith("www."):
            domain = domain[4:]
        if domain:
            cleaned.append(domain)
    return tuple(dict.fromkeys(cleaned))


def allowed_link(shop: Shop, url: str, domains: tuple[str, ...] | None = None) -> bool:
    """True when `url` is http(s) on the shop's myshopify or primary domain, one the merchant
    allowed, or a subdomain of one of those. Userinfo tricks (`https://shop.com@evil.com`) and
    other schemes are refused."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower().rstrip(".")
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    if parts.scheme.lower() not in ("http", "https") or not host or parts.username is not None:
        return False
    for domain in domains if domains is not None else shop_domains(shop):
        if host == domain or host.endswith("." + domain):
            return True
    return False


# --- making links -------------------------------------------------------------------------


def utm_campaign_for(
    campaign_id: int | None, flow_id: int | None, flow_kind: str | None = None
) -> str | None:
    if campaign_id is not None:
        return str(campaign_id)
    if flow_kind:
        return flow_kind
    if flow_id is not None:
        kind = db.session.scalar(select(Flow.kind).where(Flow.id == flow_id))
        return kind or f"flow-{flow_id}"
    return None


def link_row(
    shop: Shop,
    url: str,
    *,
    message_id: int | None = None,
    subscriber_id: int | None = None,
    campaign_id: int | None = None,
    flow_id: int | None = None,
    utm_campaign: str | None = None,
    domains: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The values of a new Link (for set-based inserts). Raises LinkNotAllowed."""
    if not allowed_link(shop, url, domains):
        raise LinkNotAllowed(url)
    now = utcnow()
    return {
        "shop_id": shop.id,
        "token": new_token(),
        "message_id": message_id,
        "subscriber_id": subscriber_id,
        "campaign_id": campaign_id,
        "flow_id": flow_id,
        "url": url.strip(),
        "utm_campaign": utm_campaign,
        "created_at": now,
        "updated_at": now,
    }


def insert_links(rows: list[dict[str, Any]]) -> None:
    """Insert prepared link rows in one statement (the caller commits)."""
    bulk_insert(db.session, Link.__table__, rows)


def shorten(
    shop: Shop,
    url: str,
    *,
    message_id: int | None = None,
    subscriber_id: int | None = None,
    campaign_id: int | None = None,
    flow_id: int | None = None,
) -> str:
    """A new tracked short link to `url` (the caller commits). Raises LinkNotAllowed."""
    row = link_row(
        shop,
        url,
        message_id=message_id,
        subscriber_id=subscriber_id,
        campaign_id=campaign_id,
        flow_id=flow_id,
        utm_campaign=utm_campaign_for(campaign_id, flow_id),
    )
    db.session.add(Link(**row))
    return short_url(row["token"])


# --- following links ----------------------------------------------------------------------
#
# The tap path is the hottest request the app serves (a campaign's clicks bunch into minutes),
# so it avoids the ORM: statements are built once here with bind parameters (SQLAlchemy then
# reuses their compiled form), the link is read as one Core row, and on PostgreSQL the click
# insert and the subscriber update go in ONE statement on an autocommit connection (no BEGIN,
# no COMMIT round trips). SQLite keeps two plain statements in the session's transaction.

_link = Link.__table__
_click = Click.__table__
_subscriber = Subscriber.__table__


class LinkRef(NamedTuple):
    """What following a link needs, read without building an ORM object."""

    id: int
    shop_id: int
    token: str
    message_id: int | None
    subscriber_id: int | None
    url: str
    utm_campaign: str | None


# What the redirect and the click recorder accept: the ORM row, or the columns read by token.
_Followable = Link | LinkRef


_LINK_BY_TOKEN = select(*(_link.c[name] for name in LinkRef._fields)).where(
    _link.c.token == bindparam("token")
)

# Bind names differ from column names: SQLAlchemy reserves those in VALUES and SET.
_at = bindparam("b_at", type_=UTCDateTime())
_INSERT_CLICK = insert(_click).values(
    shop_id=bindparam("b_shop_id"),
    link_id=bindparam("b_link_id"),
    message_id=bindparam("b_message_id"),
    subscriber_id=bindparam("b_subscriber_id"),
    clicked_at=_at,
    ip=bindparam("b_ip"),
    user_agent=bindparam("b_user_agent"),
    is_bot=bindparam("b_is_bot"),
    created_at=_at,
    updated_at=_at,
)
_MARK_ENGAGED = (
    update(_subscriber)
    .where(
        _subscriber.c.id == bindparam("b_subscriber_id"),
        _subscriber.c.shop_id == bindparam("b_shop_id"),
        bindparam("b_engaged", type_=Boolean()),
    )
    .values(last_click_at=_at, updated_at=_at)
)
# PostgreSQL runs a data-modifying CTE exactly once whether or not the outer statement reads
# it, so the click row is stored even when the update matches nothing (bots, no subscriber).
_RECORD_CLICK_PG = _MARK_ENGAGED.add_cte(_INSERT_CLICK.cte("new_click"))


def _on_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


@contextmanager
def tap_connection() -> Iterator[Connection]:
    """The connection one tap is looked up and recorded on. PostgreSQL: a pooled connection in
    autocommit (each statement is its own transaction, so a failed recording leaves nothing to
    roll back). SQLite: the session's connection, committed at the end."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    try:
        yield db.session.connection()
    except BaseException:
        db.session.rollback()
        raise
    try:
        db.session.commit()
    except Exception:  # the redirect is answered even when the click cannot be kept
        log.exception("could not commit a click; redirecting anyway")
        db.session.rollback()


def resolve(token: str, conn: Connection | None = None) -> LinkRef | None:
    """The link behind `token` (None when unknown or malformed), read on `conn` or the
    session's connection."""
    if not valid_token(token):
        return None
    conn = conn if conn is not None else db.session.connection()
    row = conn.execute(_LINK_BY_TOKEN, {"token": token}).first()
    return LinkRef(*row) if row is not None else None


def redirect_target(link: _Followable) -> str:
    """The shop URL with UTM parameters (kept when the merchant set their own) and the
    attribution ref `tidings_ref=<token>` (always ours)."""
    parts = urlsplit(link.url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != REF_PARAM]
    present = {k for k, _ in query}
    ours = [
        ("utm_source", "tidings"),
        ("utm_medium", "sms"),
        ("utm_campaign", link.utm_campaign or "sms"),
    ]
    query += [(k, v) for k, v in ours if k not in present]
    query.append((REF_PARAM, link.token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def is_bot_request(user_agent: str | None, headers: Mapping[str, str] | None = None) -> bool:
    """A link-preview fetcher, an HTTP library or a prefetch — not a person tapping."""
    if not user_agent or _BOT_RE.search(user_agent):
        return True
    headers = headers or {}
    purpose = " ".join(
        (headers.get(name) or "") for name in ("Purpose", "Sec-Purpose", "X-Purpose", "X-Moz")
    ).lower()
    return "prefetch" in purpose or "preview" in purpose or "prerender" in purpose


def record_click(
    link: _Followable,
    *,
    ip: str | None,
    user_agent: str | None,
    is_bot: bool,
    at: datetime | None = None,
    conn: Connection | None = None,
) -> None:
    """Store the click; a person's tap also marks the subscriber as engaged. Runs on `conn`
    (see tap_connection) or the session's connection, whose caller commits."""
    conn = conn if conn is not None else db.session.connection()
    params = {
        "b_shop_id": link.shop_id,
        "b_link_id": link.id,
        "b_message_id": link.message_id,
        "b_subscriber_id": link.subscriber_id,
        "b_at": at or utcnow(),
        "b_ip": (ip or None) and ip[:64],
        "b_user_agent": (user_agent or None) and user_agent[:1000],
        "b_is_bot": is_bot,
        "b_engaged": not is_bot and link.subscriber_id is not None,
    }
    if _on_postgresql(conn):
        conn.execute(_RECORD_CLICK_PG, params)
        return
    conn.execute(_INSERT_CLICK, params)
    if params["b_engaged"]:
        conn.execute(_MARK_ENGAGED, params)


def ref_from_landing_site(landing_site: str | None) -> str | None:
    """The short-link token the click redirect put in the landing URL (`tidings_ref`), if any.
    Accepts a path with a query (Shopify's `landing_site`) or a whole URL."""
    if not landing_site:
        return None
    try:
        query = urlsplit(landing_site.strip()).query
    except ValueError:
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == REF_PARAM and valid_token(value):
            return value
    return None
