"""The message editor's JS counter (static/js/sms.js) agrees with sms.encoding.analyse."""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

import pytest

from shopify_app.sms.encoding import GSM_BASIC, GSM_EXTENSION, analyse

pytestmark = pytest.mark.e2e

EMOJI = "\U0001f600"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
FLAG = "\U0001f1fa\U0001f1f8"
THUMB = "\U0001f44d\U0001f3fd"

TABLE: list[str] = [
    "",
    "Hello",
    "a" * 160,
    "a" * 161,
    "a" * 306,
    "a" * 307,
    "a" * 459,
    "a" * 460,
    "€" * 80,
    "€" * 81,
    "a" * 152 + "€",
    "a" * 153 + "€" + "a" * 10,
    "a" * 159 + "^",
    "^{}\\[~]|\f",
    "Café, Ægir, Øre, ß, Δ and ¿qué?",
    "line\r\nbreak\ttab",
    "ç" * 70,
    "ç" * 71,
    "Ç" * 200,
    "a" * 69 + "ç",
    "a" * 66 + EMOJI + "a" * 5,
    EMOJI * 35,
    EMOJI * 36,
    "a" * 66 + EMOJI + "b" * 70,
    "a" * 67 + EMOJI * 34,
    FAMILY * 5 + "a" * 60,
    FLAG * 20,
    THUMB * 18 + "x",
    "e\u0301" * 40,
    "It\u2019s \u201cgreat\u201d \u2013 50% off\u2026",
    "Price: 10 \u20ac or \u00a310 \u00a5",
    "\u4f60\u597d" * 40,
    "\u0645\u0631\u062d\u0628\u0627 " * 15,
    "\u00a0non-breaking",
    "a" * 65 + "\U0001f1eb\U0001f1f7" + "b" * 3,
    "\ufe0f" + "x" * 80,
    "\u200d" * 3 + "a",
]


def _random_strings(n: int) -> list[str]:
    rng = random.Random(20261123)
    pool = (
        "abcXYZ 019.,!?@£€^{}[]~|\\\n\r\f"
        + "éèçÇñÑ"
        + "\u2019\u201c\u2013\u2026\t"
        + EMOJI
        + "\u0301\u200d\U0001f3fb\ufe0f"
        + "\U0001f1fa\U0001f1f8"
        + "\u4f60"
    )
    chars = list(pool)
    out = []
    for _ in range(n):
        length = rng.choice([rng.randint(0, 80), rng.randint(60, 180), rng.randint(140, 480)])
        gsm_only = rng.random() < 0.4
        source = [c for c in chars if c in GSM_BASIC or c in GSM_EXTENSION] if gsm_only else chars
        out.append("".join(rng.choice(source) for _ in range(length)))
    return out


def _python(text: str) -> dict[str, Any]:
    info = asdict(analyse(text))
    info["ucs2_chars"] = list(info["ucs2_chars"])
    return info


def test_js_counter_matches_python(page, live_server) -> None:
    """Every string in the table (boundaries, escapes, emoji, flags, ZWJ, accents) and 300
    random ones give the same encoding, segments, units and room left in both counters."""
    # /healthz is JSON, so Chromium also asks for /favicon.ico: answer it here.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page.goto(f"{live_server.url}/healthz")
    strings = TABLE + _random_strings(300)
    result = page.evaluate(
        """async (strings) => {
        const m = await import('/static/js/sms.js');
        return { basic: [...m.GSM_BASIC].join(''), ext: [...m.GSM_EXTENSION].join(''),
                 infos: strings.map((s) => m.analyse(s)) };
    }""",
        strings,
    )
    assert set(result["basic"]) == set(GSM_BASIC)
    assert set(result["ext"]) == set(GSM_EXTENSION)
    mismatches = [
        (s, info, _python(s))
        for s, info in zip(strings, result["infos"], strict=True)
        if info != _python(s)
    ]
    assert mismatches == [], mismatches[:3]
