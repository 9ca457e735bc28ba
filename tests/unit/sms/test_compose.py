"""Templates: merge tags, links, brand prefix, footer and segment limits."""

from __future__ import annotations

import pytest

from shopify_app.sms.compose import (
    DEFAULT_FOOTER,
    MERGE_TAGS,
    SHORT_LINK_PLACEHOLDER_LEN,
    RenderContext,
    TooLong,
    check_limit,
    extract_urls,
    find_unknown_tags,
    footer_due,
    placeholder_shortener,
    render,
)

CTX = RenderContext(
    first_name="Ana",
    last_name="Silva",
    shop_name="Acme Store",
    brand="Acme",
    discount_code="SAVE10",
)


def body(template: str, ctx: RenderContext = CTX, **kwargs) -> str:
    kwargs.setdefault("brand_prefix", False)
    return render(template, ctx, **kwargs).body


def test_merge_tags_listed():
    """The five documented tags are the known ones."""
    assert set(MERGE_TAGS) == {"first_name", "last_name", "shop_name", "discount_code", "brand"}


def test_all_tags_substitute():
    """Each tag takes its value from the context."""
    template = "{first_name} {last_name} @ {shop_name} ({brand}): {discount_code}"
    assert body(template) == "Ana Silva @ Acme Store (Acme): SAVE10"


def test_tags_are_case_and_space_insensitive():
    """{ First_Name } is {first_name}."""
    assert body("Hi { First_Name }!") == "Hi Ana!"


def test_default_used_when_value_missing_or_blank():
    """{first_name|there} falls back to the default for None, "" and whitespace."""
    for name in (None, "", "   "):
        ctx = RenderContext(first_name=name, brand="Acme")
        assert body("Hi {first_name|there}!", ctx) == "Hi there!"
    assert body("Hi {first_name|there}!") == "Hi Ana!"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {first_name}, 20% off today", "Hi, 20% off today"),
        ("Hi {first_name} welcome back", "Hi welcome back"),
        ("Hi {first_name}!", "Hi!"),
        ("{first_name} your code is X", "your code is X"),
        ("Hi {first_name} {last_name}, hello", "Hi, hello"),
        ("Code: {discount_code}\nShop now", "Code:\nShop now"),
    ],
)
def test_missing_value_collapses_spaces(template, expected):
    """An empty tag leaves no doubled space and no space before punctuation."""
    ctx = RenderContext(brand="Acme")
    assert body(template, ctx) == expected


def test_literal_braces():
    """{{ and }} are literal braces and never tags."""
    assert body("Use {{first_name}} for {first_name}") == "Use {first_name} for Ana"
    assert find_unknown_tags("{{not_a_tag}}") == []


def test_values_are_not_reparsed():
    """A customer value containing braces cannot inject another tag."""
    ctx = RenderContext(first_name="{discount_code}", discount_code="SECRET")
    assert body("Hi {first_name}", ctx) == "Hi {discount_code}"


def test_values_are_one_line():
    """Newlines and control characters in customer data are flattened."""
    ctx = RenderContext(first_name="Ana\n\tMaria\x07")
    assert body("Hi {first_name}!", ctx) == "Hi Ana Maria!"


def test_unknown_and_malformed_tags_are_reported():
    """Unknown names and unclosed or empty braces are reported once each, in order."""
    template = "Hi {fist_name}, {first_name}, {coupon} {fist_name} {} {unclosed"
    assert find_unknown_tags(template) == ["fist_name", "coupon", "{}", "{unclosed"]
    assert find_unknown_tags("Hi {first_name|friend}, use {discount_code}") == []


def test_malformed_braces_render_literally():
    """An unclosed brace is kept as written so the merchant sees it in the preview."""
    assert body("Hi {first_name {brand}") == "Hi {first_name Acme"


def test_extract_urls_trims_sentence_punctuation():
    """URLs end before trailing punctuation and unbalanced parentheses."""
    text = (
        "Shop https://acme.example/sale. Or (see http://acme.example/a?b=1&c=2), "
        "wiki https://en.wikipedia.org/wiki/Foo_(bar)!"
    )
    assert extract_urls(text) == [
        "https://acme.example/sale",
        "http://acme.example/a?b=1&c=2",
        "https://en.wikipedia.org/wiki/Foo_(bar)",
    ]
    assert extract_urls("no links, just www.example.com") == []


def test_render_shortens_urls_and_keeps_originals():
    """Each URL goes through the shortener; Rendered.urls keeps the originals in order."""
    seen = []

    def shorten(url: str) -> str:
        seen.append(url)
        return f"https://t.example/{len(seen)}"

    rendered = render(
        "A https://acme.example/one. B https://acme.example/discount/{discount_code}",
        CTX,
        shorten=shorten,
        brand_prefix=False,
    )
    assert rendered.body == "A https://t.example/1. B https://t.example/2"
    assert rendered.urls == ("https://acme.example/one", "https://acme.example/discount/SAVE10")
    assert seen == list(rendered.urls)


def test_render_without_shortener_leaves_urls():
    """shorten=None keeps URLs as written but still reports them."""
    rendered = render("See https://acme.example/x", CTX, brand_prefix=False)
    assert rendered.body == "See https://acme.example/x"
    assert rendered.urls == ("https://acme.example/x",)


def test_brand_prefix():
    """The brand is prefixed once, unless the body already starts with it or it is off."""
    assert render("Sale today", CTX).body == "Acme: Sale today"
    assert render("acme sale today", CTX).body == "acme sale today"
    assert render("{brand}: sale", CTX).body == "Acme: sale"
    assert render("Sale today", CTX, brand_prefix=False).body == "Sale today"
    assert render("Sale today", RenderContext()).body == "Sale today"


def test_footer_on_new_line_and_counted():
    """The footer goes on its own line and counts towards the segments."""
    rendered = render("Sale", CTX, footer=DEFAULT_FOOTER)
    assert rendered.body == "Acme: Sale\nReply STOP to opt out"
    assert rendered.info.units == len(rendered.body)


def test_rendered_info_reflects_final_body():
    """Segment info is computed on the body as sent (prefix, links, footer)."""
    rendered = render("Hi {first_name} \U0001f389", CTX, footer=DEFAULT_FOOTER)
    assert rendered.info.encoding == "UCS-2"
    assert rendered.info.ucs2_chars == ("\U0001f389",)


def test_placeholder_shortener_has_real_length():
    """The estimate's link is exactly APP_URL/r/ plus the token length."""
    shorten = placeholder_shortener("https://tidings.example")
    link = shorten("https://acme.example/a/very/long/path?with=query")
    assert link == "https://tidings.example/r/" + "x" * SHORT_LINK_PLACEHOLDER_LEN
    assert placeholder_shortener("https://tidings.example/", 6)("u") == (
        "https://tidings.example/r/xxxxxx"
    )


def test_shortening_changes_the_estimate():
    """A long URL estimated through the placeholder costs what the short link will."""
    long_url = "https://acme.example/" + "p" * 200
    raw = render(f"Sale {long_url}", CTX, brand_prefix=False)
    short = render(
        f"Sale {long_url}", CTX, brand_prefix=False, shorten=placeholder_shortener("https://t.co")
    )
    assert raw.info.segments == 2
    assert short.info.segments == 1
    assert short.body == "Sale https://t.co/r/xxxxxxxxxx"


@pytest.mark.parametrize(
    ("is_first", "index", "every_n", "expected"),
    [
        (True, 0, 0, True),
        (True, 7, 5, True),
        (False, 0, 0, False),
        (False, 3, 0, False),
        (False, 3, -1, False),
        (False, 0, 3, True),
        (False, 1, 3, False),
        (False, 2, 3, False),
        (False, 3, 3, True),
        (False, 6, 3, True),
        (False, 5, 1, True),
    ],
)
def test_footer_due(is_first, index, every_n, expected):
    """Footer on the first message and on campaign indexes 0, n, 2n ... (0-based)."""
    assert footer_due(is_first_message=is_first, campaign_index=index, every_n=every_n) is expected


def test_footer_due_rejects_negative_index():
    """A negative campaign index is a caller bug."""
    with pytest.raises(ValueError):
        footer_due(is_first_message=False, campaign_index=-1, every_n=3)


def test_check_limit():
    """Over the limit returns the counts and a readable refusal; at the limit passes."""
    two = render("a" * 161, CTX, brand_prefix=False)
    assert check_limit(two, 2) is None
    too_long = check_limit(two, 1)
    assert too_long == TooLong(segments=2, limit=1)
    assert too_long.message == "This message is 2 segments; the limit is 1"
