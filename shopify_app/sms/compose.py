"""Message templates: merge tags, links, brand prefix and opt-out footer.

Merge tag syntax
----------------
* ``{first_name}``, ``{last_name}``, ``{shop_name}``, ``{discount_code}``, ``{brand}`` insert the
  subscriber's or shop's value. Tag names are case-insensitive and may have spaces inside the
  braces (``{ First_Name }``).
* ``{first_name|there}`` gives a default used when the value is missing or blank.
* A missing value without a default becomes empty, and the space left doubled around it is
  collapsed ("Hi {first_name}, ..." renders "Hi, ..." when there is no first name).
* ``{{`` and ``}}`` are a literal ``{`` and ``}``. A single ``}`` outside a tag is also taken
  literally; a ``{`` that is never closed is reported by :func:`find_unknown_tags`.
* Values are inserted once and never re-parsed, so a customer whose name contains braces cannot
  inject a tag.

http(s) URLs in the rendered text are passed through a shortener (tracked links) so the estimate
and the real send use the same length; see :func:`placeholder_shortener`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

from .encoding import SegmentInfo, analyse

MERGE_TAGS: tuple[str, ...] = ("first_name", "last_name", "shop_name", "discount_code", "brand")

DEFAULT_FOOTER = "Reply STOP to opt out"

# Length of the token in a short link "{APP_URL}/r/{token}"; the link service must use the same.
SHORT_LINK_PLACEHOLDER_LEN = 10

# Trailing punctuation is sentence punctuation, not part of the link ("Shop now: https://x.co.").
URL_RE = re.compile(r"""https?://[^\s<>"'{}|\\^`]+""", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\"*"

# Marks where a tag rendered empty so the spaces around it can be tidied afterwards. Values are
# cleaned of control characters, so it cannot come from data.
_EMPTY = "\x00"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WHITESPACE_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderContext:
    first_name: str | None = None
    last_name: str | None = None
    shop_name: str = ""
    brand: str = ""
    discount_code: str | None = None


@dataclass(frozen=True)
class Rendered:
    body: str
    info: SegmentInfo
    urls: tuple[str, ...]  # original URLs in order


@dataclass(frozen=True)
class TooLong:
    segments: int
    limit: int

    @property
    def message(self) -> str:
        return f"This message is {self.segments} segments; the limit is {self.limit}"


@dataclass(frozen=True)
class _Tag:
    name: str
    default: str | None


def _tokens(template: str) -> Iterator[str | _Tag]:
    """Literal text and tags, in order. An unclosed ``{`` comes back as a ``_Tag`` named by
    its raw text so that it is reported, and renders literally."""
    i, n = 0, len(template)
    literal: list[str] = []
    while i < n:
        char = template[i]
        if char in "{}" and template.startswith(char * 2, i):
            literal.append(char)
            i += 2
            continue
        if char != "{":
            literal.append(char)
            i += 1
            continue
        close = template.find("}", i + 1)
        reopen = template.find("{", i + 1)
        if close == -1 or (reopen != -1 and reopen < close):
            end = reopen if reopen != -1 else n
            if literal:
                yield "".join(literal)
                literal = []
            yield _Tag(template[i:end], None)
            i = end
            continue
        if literal:
            yield "".join(literal)
            literal = []
        yield _parse_tag(template[i + 1 : close])
        i = close + 1
    if literal:
        yield "".join(literal)


def _parse_tag(inner: str) -> _Tag:
    name, sep, default = inner.partition("|")
    name = name.strip().lower()
    if not name:  # "{}" or "{|x}": report and render it as written
        return _Tag("{" + inner + "}", None)
    return _Tag(name, default.strip() if sep else None)


def _is_literal(tag: _Tag) -> bool:
    """Malformed tags (unclosed or nameless) are named by their raw text, braces included."""
    return tag.name.startswith("{")


def find_unknown_tags(template: str) -> list[str]:
    """Distinct unknown tag names (and unclosed ``{...`` fragments), in order of appearance."""
    found: dict[str, None] = {}
    for token in _tokens(template):
        if isinstance(token, _Tag) and token.name not in MERGE_TAGS:
            found[token.name] = None
    return list(found)


def extract_urls(text: str) -> list[str]:
    return [_trim_url(m.group(0)) for m in URL_RE.finditer(text)]


def _trim_url(url: str) -> str:
    url = url.rstrip(_URL_TRAILING)
    # Keep a ")" only when the URL opened one (Wikipedia-style links); else it closes prose.
    while url.endswith(")") and url.count(")") > url.count("("):
        url = url[:-1].rstrip(_URL_TRAILING)
    return url


def _clean_value(value: str | None) -> str:
    if not value:
        return ""
    # Customer data may carry newlines or control characters; a name is one line of text.
    return _WHITESPACE_RE.sub(" ", _CONTROL_RE.sub("", value)).strip()


def _tag_value(tag: _Tag, ctx: RenderContext) -> str:
    if _is_literal(tag):
        return tag.name
    value = _clean_value(getattr(ctx, tag.name, None)) if tag.name in MERGE_TAGS else ""
    if value:
        return value
    return _clean_value(tag.default) or _EMPTY


@lru_cache(maxsize=256)
def _parsed(template: str) -> tuple[str | _Tag, ...]:
    # A send renders one template for thousands of subscribers: tokenise it once.
    return tuple(_tokens(template))


def _substitute(template: str, ctx: RenderContext) -> str:
    parts = [t if isinstance(t, str) else _tag_value(t, ctx) for t in _parsed(template)]
    return _tidy_empty("".join(parts))


def _tidy_empty(text: str) -> str:
    text = text.replace(" " + _EMPTY + " ", " ")
    text = re.sub(r"(^|\n)" + _EMPTY + " ", r"\1", text)
    text = re.sub(" " + _EMPTY + r"(?=[,.!?;:]|\n|$)", "", text)
    return text.replace(_EMPTY, "")


def _shorten_urls(body: str, shorten: Callable[[str], str] | None) -> tuple[str, tuple[str, ...]]:
    urls: list[str] = []

    def replace(match: re.Match[str]) -> str:
        raw = match.group(0)
        url = _trim_url(raw)
        urls.append(url)
        new = shorten(url) if shorten else url
        return new + raw[len(url) :]

    return URL_RE.sub(replace, body), tuple(urls)


def render(
    template: str,
    ctx: RenderContext,
    *,
    shorten: Callable[[str], str] | None = None,
    brand_prefix: bool = True,
    footer: str | None = None,
) -> Rendered:
    """Render ``template`` for one subscriber. Pure: ``shorten`` is the only callout."""
    body = _substitute(template, ctx).strip()
    body, urls = _shorten_urls(body, shorten)
    brand = _clean_value(ctx.brand)
    if brand_prefix and brand and not body.casefold().startswith(brand.casefold()):
        # Carriers and CTIA want the sender identified; a "Brand: " prefix is the usual form.
        body = f"{brand}: {body}"
    if footer:
        body = f"{body}\n{footer}"
    return Rendered(body=body, info=analyse(body), urls=urls)


def footer_due(*, is_first_message: bool, campaign_index: int, every_n: int) -> bool:
    """Whether this message carries the opt-out footer.

    ``campaign_index`` is 0-based: how many campaign messages this subscriber received before
    this one. The footer goes on the subscriber's first message and then on every ``every_n``-th
    campaign message (indexes 0, n, 2n, ...); ``every_n <= 0`` means only on the first message.
    """
    if campaign_index < 0:
        raise ValueError("campaign_index must be >= 0")
    if is_first_message:
        return True
    if every_n <= 0:
        return False
    return campaign_index % every_n == 0


def check_limit(rendered: Rendered, max_segments: int) -> TooLong | None:
    if rendered.info.segments > max_segments:
        return TooLong(segments=rendered.info.segments, limit=max_segments)
    return None


def placeholder_shortener(
    app_url: str, token_len: int = SHORT_LINK_PLACEHOLDER_LEN
) -> Callable[[str], str]:
    """A shortener for estimates: every URL becomes a link exactly as long as a real one.

    The real link service must build ``f"{app_url.rstrip('/')}/r/{token}"`` with a GSM-7 token
    of ``token_len`` characters, or estimates and sends will differ.
    """
    link = f"{app_url.rstrip('/')}/r/" + "x" * token_len

    def shorten(url: str) -> str:
        return link

    return shorten
