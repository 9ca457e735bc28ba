"""GET /api/analytics/campaigns/<id>/links: a campaign's results per destination link, as the
campaign detail page shows them."""

from __future__ import annotations

from shopify_app.extensions import db
from shopify_app.models import Shop
from tests.integration.analytics_support import at, campaign, click, link, message, subscriber

SALE = "https://northwind.example/collections/sale"
HOME = "https://northwind.example/"


def test_per_link_texts_clicks_and_clickers(api, shop: Shop) -> None:
    """Two destinations over three texts: human clicks, bot clicks and distinct clickers are
    counted per URL, most clicked first, and another campaign's links stay out."""
    row = campaign(shop)
    other = campaign(shop, "Other")
    sent = at("2026-10-01T15:00:00+00:00")
    subs = [subscriber(shop, f"+1617555{i:04d}") for i in range(3)]
    msgs = [message(shop, s, sent=sent, campaign_id=row.id) for s in subs]
    sale = [link(shop, m, f"sale{i}", SALE) for i, m in enumerate(msgs)]
    home = link(shop, msgs[0], "home0", HOME)
    click(shop, sale[0], at("2026-10-01T15:05:00+00:00"))
    click(shop, sale[0], at("2026-10-01T15:06:00+00:00"))  # the same subscriber again
    click(shop, sale[1], at("2026-10-01T16:00:00+00:00"))
    click(shop, sale[2], at("2026-10-01T15:00:01+00:00"), bot=True)
    foreign = link(shop, message(shop, subs[0], sent=sent, campaign_id=other.id), "o0", SALE)
    click(shop, foreign, at("2026-10-01T17:00:00+00:00"))
    db.session.commit()

    resp = api.get(f"/api/analytics/campaigns/{row.id}/links")

    assert resp.status_code == 200
    assert resp.json == [
        {
            "url": SALE,
            "texts": 3,
            "clicks": 3,
            "bot_clicks": 1,
            "unique_clicks": 2,
            "ctr": "0.6667",
        },
        {
            "url": HOME,
            "texts": 1,
            "clicks": 0,
            "bot_clicks": 0,
            "unique_clicks": 0,
            "ctr": "0.0000",
        },
    ]
    assert home.url == HOME


def test_no_links_and_other_shops(api, shop: Shop, other_shop: Shop) -> None:
    """A campaign without links answers an empty list; another shop's campaign is a 404."""
    mine = campaign(shop)
    theirs = campaign(other_shop)
    db.session.commit()

    assert api.get(f"/api/analytics/campaigns/{mine.id}/links").json == []
    resp = api.get(f"/api/analytics/campaigns/{theirs.id}/links")
    assert resp.status_code == 404
