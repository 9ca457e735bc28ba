"""A campaign's results per link: how many texts carried each destination and who tapped it.

A campaign makes one short Link row per (message, URL), so grouping its links by URL gives, per
destination: the texts that carried it, human clicks, bot clicks (previewers, scanners) and the
distinct subscribers who clicked. One aggregate query, whatever the audience size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import distinct, func, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Click, Link
from shopify_app.services.stats import NotFound
from shopify_app.services.stats_sql import ratio


def campaign_link_stats(shop_id: int, campaign_id: int) -> list[dict[str, Any]]:
    """Per destination URL of the campaign, most clicked first.

    ctr = unique_clicks / texts (texts that carried the link; delivery is per message and
    shown on the campaign's own figures)."""
    if Campaign.get_for_shop(shop_id, campaign_id) is None:
        raise NotFound(f"campaign {campaign_id}")
    human = Click.is_bot.is_(False)
    clicks = func.count(Click.id).filter(human)
    stmt = (
        select(
            Link.url,
            func.count(distinct(Link.id)),
            clicks,
            func.count(Click.id).filter(~human),
            func.count(distinct(Click.subscriber_id)).filter(human),
        )
        .select_from(Link)
        .outerjoin(Click, Click.link_id == Link.id)
        .where(Link.shop_id == shop_id, Link.campaign_id == campaign_id)
        .group_by(Link.url)
        .order_by(clicks.desc(), Link.url)
    )
    rows = []
    for url, texts, human_clicks, bot_clicks, unique in db.session.execute(stmt):
        rows.append(
            {
                "url": url,
                "texts": int(texts or 0),
                "clicks": int(human_clicks or 0),
                "bot_clicks": int(bot_clicks or 0),
                "unique_clicks": int(unique or 0),
                "ctr": ratio(int(unique or 0), int(texts or 0)),
            }
        )
    return rows
