"""Short links: where they may point, the /r/<token> redirect, and which taps count."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Click, Link, Shop, Subscriber
from shopify_app.providers import outbox
from shopify_app.services import links

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


@pytest.fixture
def link(shop: Shop) -> Link:
    shop.primary_domain = "shop.example.com"
    sub = Subscriber(shop_id=shop.id, phone="+12025550101", status="subscribed")
    db.session.add(sub)
    db.session.commit()
    links.shorten(
        shop,
        "https://shop.example.com/products/tee?color=blue",
        subscriber_id=sub.id,
        campaign_id=None,
    )
    db.session.commit()
    return db.session.scalars(select(Link)).one()


def _clicks() -> list[Click]:
    db.session.expire_all()
    return list(db.session.scalars(select(Click).order_by(Click.id)))


def test_a_tap_redirects_with_utm_and_ref_and_is_counted(client, link):
    """A person's tap: 302 to the shop URL with UTM and tidings_ref; click stored, engaged."""
    resp = client.get(f"/r/{link.token}", headers={"User-Agent": IPHONE})
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == (
        "https",
        "shop.example.com",
        "/products/tee",
    )
    query = parse_qs(target.query)
    assert query == {
        "color": ["blue"],
        "utm_source": ["tidings"],
        "utm_medium": ["sms"],
        "utm_campaign": ["sms"],
        "tidings_ref": [link.token],
    }
    assert resp.headers["Cache-Control"] == "no-store"
    clicks = _clicks()
    assert [(c.is_bot, c.link_id, c.user_agent) for c in clicks] == [(False, link.id, IPHONE)]
    assert db.session.get(Subscriber, link.subscriber_id).last_click_at is not None


@pytest.mark.parametrize(
    "agent",
    [
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "WhatsApp/2.23.20.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Discordbot/2.0)",
        "Twitterbot/1.0",
        "LinkedInBot/1.0",
        "curl/8.5.0",
        "python-requests/2.32.3",
        "Go-http-client/1.1",
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
        "",
    ],
)
def test_link_preview_bots_are_redirected_but_not_counted(client, link, agent):
    """Preview fetchers and scripts get the redirect; their visit is stored as a bot."""
    resp = client.get(f"/r/{link.token}", headers={"User-Agent": agent})
    assert resp.status_code == 302
    assert [c.is_bot for c in _clicks()] == [True]
    assert db.session.get(Subscriber, link.subscriber_id).last_click_at is None


@pytest.mark.parametrize(
    "header",
    [
        {"Purpose": "prefetch"},
        {"Sec-Purpose": "prefetch;prerender"},
        {"X-Purpose": "preview"},
        {"X-Moz": "prefetch"},
    ],
)
def test_prefetches_are_not_counted(client, link, header):
    resp = client.get(f"/r/{link.token}", headers={"User-Agent": IPHONE, **header})
    assert resp.status_code == 302
    assert [c.is_bot for c in _clicks()] == [True]


def test_head_is_redirected_and_not_stored(client, link):
    """HEAD (link checkers, some previewers) is answered but leaves no click at all."""
    resp = client.head(f"/r/{link.token}", headers={"User-Agent": IPHONE})
    assert resp.status_code == 302 and "tidings_ref=" in resp.headers["Location"]
    assert _clicks() == []


@pytest.mark.parametrize("token", ["NoSuchTok3n", "short", "bad-token!", "x" * 40])
def test_unknown_token_gets_a_friendly_404(client, link, token):
    resp = client.get(f"/r/{token}", headers={"User-Agent": IPHONE})
    assert resp.status_code == 404
    assert resp.mimetype == "text/html"
    assert "This link isn't working" in resp.get_data(as_text=True)
    assert _clicks() == []


def test_recording_failure_still_redirects(client, link, monkeypatch):
    """Tracking never fails the shopper: a broken click insert still answers 302."""

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("database unavailable")

    monkeypatch.setattr(links, "record_click", broken)
    resp = client.get(f"/r/{link.token}", headers={"User-Agent": IPHONE})
    assert resp.status_code == 302
    assert _clicks() == []


def test_merchant_utm_values_are_kept_and_the_ref_is_ours(shop):
    """UTM values the merchant put in the link stay; a stale tidings_ref is replaced."""
    shop.primary_domain = "shop.example.com"
    db.session.commit()
    links.shorten(
        shop, "https://shop.example.com/?utm_campaign=summer&tidings_ref=OLDOLDOLD1", campaign_id=42
    )
    db.session.commit()
    link = db.session.scalars(select(Link)).one()
    query = parse_qs(urlsplit(links.redirect_target(link)).query)
    assert query["utm_campaign"] == ["summer"]
    assert query["tidings_ref"] == [link.token]
    assert link.utm_campaign == "42"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://tidings-test.myshopify.com/products/a", True),
        ("https://shop.example.com/", True),
        ("https://www.shop.example.com/sale", True),
        ("http://shop.example.com/x", True),
        ("https://partner.example.org/page", True),
        ("https://evil.example.net/", False),
        ("https://shop.example.com.evil.net/", False),
        ("https://shop.example.com@evil.net/", False),
        ("javascript:alert(1)", False),
        ("ftp://shop.example.com/file", False),
        ("https://notshop.example.com.au/", False),
        ("https://myshopify.com/", False),
    ],
)
def test_only_the_shops_own_and_allowed_domains_are_link_targets(shop, url, ok):
    shop.primary_domain = "www.shop.example.com"
    shop.settings["allowed_link_domains"] = ["partner.example.org"]
    db.session.commit()
    assert links.allowed_link(shop, url) is ok


def test_shortening_a_foreign_link_is_refused(shop):
    with pytest.raises(links.LinkNotAllowed):
        links.shorten(shop, "https://evil.example.net/")
    db.session.commit()
    assert db.session.scalars(select(Link)).all() == []


def test_tokens_are_ten_base62_characters_and_unique(shop):
    tokens = {links.new_token() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(len(t) == 10 and t.isalnum() and t.isascii() for t in tokens)


@pytest.mark.parametrize(
    ("landing", "ref"),
    [
        ("/products/tee?utm_source=tidings&tidings_ref=AbC123xyz9", "AbC123xyz9"),
        ("https://shop.example.com/?tidings_ref=AbC123xyz9&x=1", "AbC123xyz9"),
        ("/products/tee?utm_source=tidings", None),
        ("/?tidings_ref=not-a-token", None),
        ("", None),
        (None, None),
    ],
)
def test_ref_from_landing_site_reads_back_the_redirect_ref(landing, ref):
    assert links.ref_from_landing_site(landing) == ref


def test_outbox_simulated_click_counts_as_a_human_tap(app, link):
    """The dev outbox's simulated tap goes through the same click recording."""
    target = outbox.simulate_click(link.token)
    assert target is not None and f"tidings_ref={link.token}" in target
    assert [c.is_bot for c in _clicks()] == [False]
    assert outbox.simulate_click("Unknown123") is None


def test_a_tap_on_a_link_without_subscriber_is_stored_and_touches_no_subscriber(client, shop):
    """A link made for no one in particular (e.g. a flow preview) still counts its taps; the
    engaged update matches nothing and must not stop the click from being stored."""
    shop.primary_domain = "shop.example.com"
    sub = Subscriber(shop_id=shop.id, phone="+12025550102", status="subscribed")
    db.session.add(sub)
    db.session.commit()
    links.shorten(shop, "https://shop.example.com/")
    db.session.commit()
    link = db.session.scalars(select(Link)).one()
    resp = client.get(f"/r/{link.token}", headers={"User-Agent": IPHONE})
    assert resp.status_code == 302
    assert [(c.is_bot, c.subscriber_id, c.shop_id) for c in _clicks()] == [(False, None, shop.id)]
    assert db.session.get(Subscriber, sub.id).last_click_at is None


def test_a_tap_is_committed_when_the_redirect_is_answered(client, link):
    """The click is durable before the shopper is sent on: another connection sees it."""
    client.get(f"/r/{link.token}", headers={"User-Agent": IPHONE})
    db.session.rollback()
    with db.engine.connect() as other:
        rows = other.execute(select(Click.link_id, Click.is_bot, Click.ip)).all()
    assert [(r.link_id, r.is_bot) for r in rows] == [(link.id, False)]
