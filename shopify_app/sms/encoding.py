"""SMS encoding, segment counting and cost.

Follows Twilio's segment calculator (github.com/TwilioDevEd/message-segment-calculator):

* GSM-7 when every character is in the GSM 03.38 basic table or its extension table. Extension
  characters (``^ { } \\ [ ~ ] | €`` and form feed) are sent as ESC + char, so they cost two
  septets. One segment holds 160 septets; a longer message is split into segments of 153 (the
  concatenation header takes the rest), and an escape pair is never split across segments.
* Otherwise UCS-2 (in practice UTF-16): one segment holds 70 code units, split segments 67.
  Characters outside the BMP (most emoji) take two code units and a surrogate pair is never
  split. Like Twilio's calculator we also keep a user-perceived character (an emoji with a skin
  tone or a variation selector, a ZWJ family, a flag, a letter with combining accents) in one
  segment.

Because of those two "never split" rules ``ceil(units / 153)`` undercounts near boundaries, which
is why this module packs segments instead of dividing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 basic table as Twilio's calculator maps it. ESC (0x1B) is deliberately absent: it is
# the escape prefix, not a character, and Twilio's map treats a literal U+001B as non-GSM.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM_CHARS = GSM_BASIC | GSM_EXTENSION

SINGLE_GSM = 160
MULTI_GSM = 153
SINGLE_UCS2 = 70
MULTI_UCS2 = 67

# Characters editors and phones insert silently that have a GSM-7 look-alike. Replacing them
# keeps a message in GSM-7 and can halve its cost; the editor offers this, never forces it.
GSM_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark (the iOS apostrophe)
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent
    "`": "'",  # grave accent is not in GSM-7
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left guillemet
    "\u00bb": '"',  # right guillemet
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2022": "-",  # bullet
    "\u2026": "...",  # horizontal ellipsis
    "\u00a0": " ",  # no-break space
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2007": " ",  # figure space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u3000": " ",  # ideographic space
    "\t": " ",  # tab
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte-order mark / zero-width no-break space
    "\u00ad": "",  # soft hyphen
    "\u00f7": "/",  # division sign
    "\u2044": "/",  # fraction slash
    "\u00bc": "1/4",
    "\u00bd": "1/2",
    "\u00be": "3/4",
    "\u2039": "<",  # single left-pointing angle quotation mark
    "\u203a": ">",  # single right-pointing angle quotation mark
    "\u203c": "!!",  # double exclamation mark
}

# Indicative Twilio list prices per outbound SMS segment in USD (late 2025/2026). Real prices
# change and depend on the sender type and carrier fees: operators override this table through
# settings, and "*" is a deliberately high default for countries not listed.
DEFAULT_PRICE_TABLE: dict[str, Decimal] = {
    "US": Decimal("0.0083"),
    "CA": Decimal("0.0083"),
    "GB": Decimal("0.0463"),
    "AU": Decimal("0.0515"),
    "IE": Decimal("0.0766"),
    "NZ": Decimal("0.1071"),
    "FR": Decimal("0.0794"),
    "DE": Decimal("0.0945"),
    "NL": Decimal("0.1020"),
    "ES": Decimal("0.0735"),
    "IT": Decimal("0.0838"),
    "MX": Decimal("0.0475"),
    "*": Decimal("0.1200"),
}


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    segments: int
    units: int  # septets for GSM-7 (extension chars count 2), UTF-16 code units for UCS-2
    per_segment: int  # 160/153 or 70/67 as applies
    chars_left: int  # units left in the last segment before another segment is needed
    ucs2_chars: tuple[str, ...]  # distinct characters that forced UCS-2, in order of appearance


def is_gsm_char(char: str) -> bool:
    return char in GSM_CHARS


def analyse(text: str) -> SegmentInfo:
    """Encoding, segment count and remaining room of ``text`` as Twilio would send it."""
    if GSM_CHARS.issuperset(text):
        return _analyse_gsm(text)
    return _analyse_ucs2(text)


def _analyse_gsm(text: str) -> SegmentInfo:
    total = len(text) + sum(text.count(c) for c in GSM_EXTENSION)
    if total <= SINGLE_GSM:
        return SegmentInfo(GSM7, 1, total, SINGLE_GSM, SINGLE_GSM - total, ())
    costs = [2 if c in GSM_EXTENSION else 1 for c in text]
    segments, left = _split(costs, MULTI_GSM)
    return SegmentInfo(GSM7, segments, total, MULTI_GSM, left, ())


def _analyse_ucs2(text: str) -> SegmentInfo:
    clusters = _clusters(text)
    forcing = tuple(dict.fromkeys(c for c in clusters if not GSM_CHARS.issuperset(c)))
    total = _utf16_units(text)
    if total <= SINGLE_UCS2:
        return SegmentInfo(UCS2, 1, total, SINGLE_UCS2, SINGLE_UCS2 - total, forcing)
    costs: list[int] = []
    for cluster in clusters:
        units = _utf16_units(cluster)
        if units <= MULTI_UCS2:
            costs.append(units)
        else:
            # A cluster longer than a whole segment cannot stay together; fall back to code
            # points (whose surrogate pairs still never split).
            costs.extend(_utf16_units(c) for c in cluster)
    segments, left = _split(costs, MULTI_UCS2)
    return SegmentInfo(UCS2, segments, total, MULTI_UCS2, left, forcing)


def _split(costs: list[int], per_segment: int) -> tuple[int, int]:
    """Pack indivisible units into segments; returns (segments, units left in the last)."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:  # an escape or surrogate pair moves whole to the next
            segments, used = segments + 1, 0
        used += cost
    return segments, per_segment - used


def _utf16_units(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


_ZWJ = "\u200d"
_MAY_EXTEND_RE = re.compile(r"[^\x00-\u02ff]")


def _extends(char: str) -> bool:
    """True when ``char`` belongs to the character before it (grapheme extension)."""
    cp = ord(char)
    return (
        char == _ZWJ
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (emoji vs text presentation)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= cp <= 0xE01EF  # variation selectors supplement
        or unicodedata.category(char) in ("Mn", "Me", "Mc")  # combining marks, keycap
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _clusters(text: str) -> list[str]:
    """Approximate extended grapheme clusters, enough for emoji and accents.

    Twilio's calculator splits into full Unicode grapheme clusters; the standard library has no
    segmenter, so this covers what marketing texts contain: combining marks, variation
    selectors, skin tones, ZWJ sequences, tag sequences and regional-indicator flag pairs.
    CR LF is deliberately two clusters: both are GSM-7 characters (Twilio's calculator counts a
    CR LF pair as UCS-2 only as an artefact of its grapheme splitter).
    """
    if not _MAY_EXTEND_RE.search(text):
        return list(text)  # fast path: nothing below U+0300 joins the character before it
    clusters: list[str] = []
    pending_flag = False
    for char in text:
        if clusters and (
            _extends(char)
            or clusters[-1].endswith(_ZWJ)
            or (pending_flag and _is_regional_indicator(char))
        ):
            pending_flag = False
            clusters[-1] += char
            continue
        clusters.append(char)
        pending_flag = _is_regional_indicator(char)
    return clusters


def suggest_gsm(text: str) -> str:
    """``text`` with look-alike characters replaced by their GSM-7 equivalents."""
    return "".join(GSM_REPLACEMENTS.get(c, c) for c in text)


def segment_price(country: str | None, table: Mapping[str, Decimal | str]) -> Decimal:
    """Price of one segment to ``country`` (ISO code); falls back to the table's "*" entry,
    then to ours, so a partial settings table never breaks an estimate or a spend cap."""
    key = (country or "").upper()
    value = table.get(key, table.get("*", DEFAULT_PRICE_TABLE["*"]))
    # Settings tables come from JSON: go through str so 0.0083 never becomes a binary float.
    return Decimal(str(value))


def message_cost(
    text_or_info: str | SegmentInfo, country: str | None, table: Mapping[str, Decimal | str]
) -> Decimal:
    info = text_or_info if isinstance(text_or_info, SegmentInfo) else analyse(text_or_info)
    return info.segments * segment_price(country, table)
