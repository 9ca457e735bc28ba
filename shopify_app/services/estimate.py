"""Review before sending: who gets it, how long each text is, what it costs, what to watch.

The estimate renders with the send path's own `render_for_send` (through `render_preview`:
links become placeholders exactly as long as real short links, the discount code a stand-in
exactly as long as the real one), once per group of recipients whose text can differ in
length — their first/last name when the text uses it (names made only of plain letters count
by length), whether the opt-out footer is due for them, their country for the price — so the
total is exact, not an average. Prices are the shop's per-country table, as the send path
charges them.

Recipients are the campaign's audience (segment rules, exclusions, subscribed status) minus
the holdout and minus those the smart-sending rule will skip. Quiet hours are worked out per
place exactly as the start does (services/campaign_start.py), so "when it will go" is what
will happen.

For an A/B test the test share is priced per variant and the rest at the dearest variant (the
winner is not known yet): the total is then an upper bound, flagged as such.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, and_, case, exists, func, literal, not_, select

from shopify_app.extensions import db
from shopify_app.models import Campaign, Message, Shop, Subscriber, utcnow
from shopify_app.services import campaign_start, campaigns, rendering, segments, send_checks
from shopify_app.services.codes import generate_code
from shopify_app.sms.compose import extract_urls, find_unknown_tags
from shopify_app.sms.encoding import segment_price, suggest_gsm

CENT = Decimal("0.01")
MONEY4 = Decimal("0.0001")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9' -]*$")
_TAG = re.compile(r"\{\s*([a-z_]+)", re.IGNORECASE)
_BARE_CODE = re.compile(r"(?<!\{)\{\s*discount_code\s*[|}]", re.IGNORECASE)
_OPT_OUT = re.compile(r"\b(stop|unsubscribe|opt[ -]?out)\b", re.IGNORECASE)


@dataclass
class Issue:
    code: str
    message: str
    blocking: bool = False
    count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "blocking": self.blocking,
            "count": self.count,
            "details": self.details,
        }


def templates_of(campaign: Campaign) -> list[tuple[str | None, int | None, str]]:
    """(label, variant id, text) of every text the campaign can send."""
    variants = campaigns.variants_of(campaign)
    if variants:
        return [(v.label, v.id, v.body) for v in variants]
    return [(None, None, campaign.body or "")]


def discount_standin(shop: Shop, campaign: Campaign) -> tuple[str | None, Issue | None]:
    """A code exactly as long as the one recipients will get (or the merchant's shared one)."""
    if campaign.discount_mode not in ("shared", "unique"):
        return None, None
    from shopify_app.services.discount_config import InvalidDiscountConfig, parse_discount_config
    from shopify_app.services.discounts import campaign_discount_title

    try:
        settings = parse_discount_config(
            campaign.discount_config,
            title=campaign_discount_title(campaign),
            default_prefix=shop.setting("discount_prefix"),
        )
    except InvalidDiscountConfig as exc:
        return None, Issue("discount_config", f"Discount settings: {exc}", blocking=True)
    if campaign.discount_mode == "shared" and settings.code:
        return settings.code, None
    return generate_code(settings.prefix), None


def _name_key(value: str | None) -> tuple[str, Any]:
    """Names that cannot change a text's encoding or form a link count by their length."""
    cleaned = re.sub(r"\s+", " ", re.sub(r"[\x00-\x1f\x7f]", "", value or "")).strip()
    if _PLAIN_NAME.match(cleaned):
        return ("len", len(cleaned))
    return ("text", cleaned)


def _footer_flag(shop_id: int, every_n: int) -> Any:
    """1 when the opt-out footer is due on this subscriber's next marketing text."""
    sent = and_(
        Message.subscriber_id == Subscriber.id,
        Message.shop_id == shop_id,
        Message.sent_at.is_not(None),
        Message.kind.in_(segments.MARKETING_KINDS),
    )
    if every_n <= 0:
        return case((not_(exists().where(sent)), 1), else_=0)
    prior = select(func.count()).where(sent).scalar_subquery()
    return case((prior % every_n == 0, 1), else_=0)


def _smart_skip(shop_id: int, hours: int, at: datetime) -> Any:
    if hours <= 0:
        return None
    return exists().where(
        Message.subscriber_id == Subscriber.id,
        Message.shop_id == shop_id,
        Message.kind.in_(segments.MARKETING_KINDS),
        Message.sent_at > at - timedelta(hours=hours),
    )


@dataclass
class _Priced:
    recipients: int = 0
    segments: int = 0
    cost: Decimal = Decimal(0)
    by_country: dict[str, list[Any]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, Decimal(0)])
    )
    by_segments: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    by_encoding: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ucs2_chars: dict[str, None] = field(default_factory=dict)
    too_long: int = 0
    too_long_segments: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # skip reason -> detail
    sample: str | None = None


def _price_template(
    shop: Shop,
    template: str,
    groups: list[tuple[Any, int]],
    rules: send_checks.ShopRules,
    code: str | None,
) -> _Priced:
    priced = _Priced()
    for (country, first, last, footer), n in groups:
        sub = SimpleNamespace(id=None, first_name=first, last_name=last)
        outcome = rendering.render_preview(
            shop, template, subscriber=sub, with_footer=bool(footer), discount_code=code
        )
        if not outcome.ok or outcome.rendered is None:
            if outcome.skip_reason == "too_long":
                priced.too_long += n
                priced.too_long_segments = max(priced.too_long_segments, outcome.segments or 0)
            else:
                priced.refused[outcome.skip_reason or "render_failed"] = outcome.detail or ""
            continue
        info = outcome.rendered.info
        cost = info.segments * segment_price(country, rules.price_table) * n
        priced.sample = priced.sample or outcome.rendered.body
        priced.recipients += n
        priced.segments += info.segments * n
        priced.cost += cost
        row = priced.by_country[country]
        row[0] += n
        row[1] += info.segments * n
        row[2] += cost
        priced.by_segments[info.segments] += n
        priced.by_encoding[info.encoding] += n
        for char in info.ucs2_chars:
            priced.ucs2_chars[char] = None
    return priced


def _by_segments(priced: _Priced) -> dict[str, int]:
    """Recipients by segment count, keyed as JSON keys are so callers see one shape."""
    return {str(k): v for k, v in sorted(priced.by_segments.items())}


def _length_groups(
    shop: Shop,
    where: ColumnElement[bool],
    templates: list[str],
    rules: send_checks.ShopRules,
    every_n: int,
) -> list[tuple[Any, int]]:
    """(country, first name, last name, footer due) → recipients, names merged by key."""
    tags = {t.lower() for body in templates for t in _TAG.findall(body)}
    _, country, _, _ = campaign_start.place_columns()
    pfx = case(
        (country == "", func.substr(Subscriber.phone, 1, campaign_start.PREFIX_LEN)), else_=""
    )
    names = [
        c
        for tag, c in (("first_name", Subscriber.first_name), ("last_name", Subscriber.last_name))
        if tag in tags
    ]
    footer = _footer_flag(shop.id, every_n).label("footer")
    keys = [country, pfx, *names, footer]
    rows = db.session.execute(
        select(*keys, func.min(Subscriber.phone), func.count()).where(where).group_by(*keys)
    ).all()
    merged: dict[Any, list[Any]] = {}
    for row in rows:
        values = dict(
            zip(
                ("country", "pfx", *(c.key for c in names), "footer", "phone", "n"),
                row,
                strict=True,
            )
        )
        place = campaign_start.place_of_group("UTC", values["country"], "", values["phone"], rules)
        first_name, last_name = values.get("first_name"), values.get("last_name")
        flag, n = int(values["footer"]), int(values["n"])
        key = (place.country, _name_key(first_name), _name_key(last_name), flag)
        if key in merged:
            merged[key][1] += n
        else:
            merged[key] = [(place.country, first_name, last_name, flag), n]
    return [(v[0], v[1]) for v in merged.values()]


def review(shop: Shop, campaign: Campaign, *, now: datetime | None = None) -> dict[str, Any]:
    """Everything the merchant sees before sending, and what blocks the send."""
    now = now or utcnow()
    segments.without_jit()  # the audience queries, as for a segment count
    issues: list[Issue] = []
    rules = send_checks.shop_rules(shop, current_app.config)
    texts = templates_of(campaign)
    variants = [t for t in texts if t[1] is not None]
    testing = campaign.ab_test_percent > 0 and len(variants) >= 2
    if variants and not testing:
        issues.append(
            Issue(
                "ab_setup",
                "An A/B test needs 2 to 4 variants and a test share (ab_test_percent).",
                blocking=True,
            )
        )
    if campaign.ab_test_percent > 0 and len(variants) < 2:
        issues.append(Issue("ab_setup", "An A/B test needs 2 to 4 variants.", blocking=True))
    for label, _, body in texts:
        name = f"Variant {label}" if label else "The text"
        if not body.strip():
            issues.append(Issue("no_text", f"{name} is empty.", blocking=True))
        unknown = find_unknown_tags(body)
        if unknown:
            issues.append(
                Issue(
                    "unknown_tags",
                    f"{name} has unknown tags: " + ", ".join(unknown),
                    blocking=True,
                    details={"tags": unknown},
                )
            )
        if _BARE_CODE.search(body) and campaign.discount_mode == "none":
            issues.append(
                Issue(
                    "no_discount",
                    f"{name} uses {{discount_code}} but the campaign has no discount.",
                    blocking=True,
                )
            )
    code, problem = discount_standin(shop, campaign)
    if problem:
        issues.append(problem)
    audience = campaigns.audience_of(campaign)
    report: dict[str, Any] = {
        "campaign_id": campaign.id,
        "currency": "USD",
        "timezone": shop.timezone,
    }
    if audience is None:
        issues.append(
            Issue(
                "no_audience", "Choose who gets this campaign (a segment or rules).", blocking=True
            )
        )
        return _finish(report, issues, None, 0, 0, 0)
    ctx = segments.Context(shop.id, shop.timezone or "UTC", now)
    base = segments.audience_condition(audience.rules, audience.exclusions, ctx)
    held = campaign_start.holdout_flag(campaign.id, campaign.holdout_percent)
    send_ref = max(campaign.send_at or now, now)
    smart = _smart_skip(shop.id, rules.smart_sending_hours, send_ref)
    counts = db.session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(held), 0),
            func.coalesce(func.sum(case((and_(held == 0, smart), 1), else_=0)), 0)
            if smart is not None
            else literal(0),
        )
        .select_from(Subscriber)
        .where(base)
    ).one()
    audience_n, held_n, smart_n = int(counts[0]), int(counts[1] or 0), int(counts[2] or 0)
    where = and_(base, held == 0, not_(smart) if smart is not None else True)
    bodies = [t[2] for t in texts if t[2].strip()]
    groups = _length_groups(shop, where, bodies, rules, int(rules_footer_every(shop)))
    priced = {t[0]: _price_template(shop, t[2], groups, rules, code) for t in texts if t[2].strip()}
    timing = _timing(shop, campaign, where, rules, now)
    report.update(timing)
    _pricing(report, issues, campaign, texts, priced, testing, rules)
    _warnings(report, issues, shop, campaign, texts, priced, groups, rules, now, timing)
    return _finish(report, issues, audience, audience_n, held_n, smart_n)


def rules_footer_every(shop: Shop) -> int:
    return int(shop.setting("footer_every_n") or 0)


def _timing(
    shop: Shop,
    campaign: Campaign,
    where: ColumnElement[bool],
    rules: send_checks.ShopRules,
    now: datetime,
) -> dict[str, Any]:
    base_due = campaign_start.base_due_for(campaign, shop, "all", now)
    groups = campaign_start.place_groups(shop, where, rules=rules, base_due=base_due, now=now)
    delayed = sum(
        g.count for g in groups if g.due > max(base_due(g.place), now) + timedelta(seconds=60)
    )
    first = min((g.due for g in groups), default=None)
    last = max((g.due for g in groups), default=None)
    return {
        "starts_at": first,
        "starts_at_local": campaigns.local_iso(first, shop),
        "last_due_at": last,
        "last_due_at_local": campaigns.local_iso(last, shop),
        "quiet_hours_delayed": delayed,
        "never_allowed": sum(g.count for g in groups if g.impossible),
    }


def _pricing(
    report: dict[str, Any],
    issues: list[Issue],
    campaign: Campaign,
    texts: list[tuple[str | None, int | None, str]],
    priced: dict[Any, _Priced],
    testing: bool,
    rules: send_checks.ShopRules,
) -> None:
    if not priced:
        report.update(
            recipients=0,
            total_cost="0.00",
            total_segments=0,
            per_country=[],
            segments_per_message={},
            encodings={},
            ucs2_chars=[],
            variants=[],
            total_is_upper_bound=False,
            sample=None,
        )
        return
    main = next(iter(priced.values()))
    recipients = main.recipients
    variants = []
    if testing:
        test_n = recipients * campaign.ab_test_percent // 100
        n = len(priced)
        shares = {
            label: test_n // n + (1 if i < test_n % n else 0) for i, label in enumerate(priced)
        }
        rest = recipients - test_n
        dearest = max(priced.values(), key=lambda p: p.cost)
        total = Decimal(0)
        segs = 0
        for label, p in priced.items():
            per = (p.cost / p.recipients) if p.recipients else Decimal(0)
            total += per * shares[label]
            segs += (p.segments * shares[label] // p.recipients) if p.recipients else 0
            variants.append(
                {
                    "label": label,
                    "test_recipients": shares[label],
                    "cost_if_sent_to_all": str(p.cost.quantize(MONEY4)),
                    "segments_per_message": _by_segments(p),
                    "encodings": dict(p.by_encoding),
                    "sample": p.sample,
                }
            )
        if dearest.recipients:
            total += dearest.cost / dearest.recipients * rest
            segs += dearest.segments * rest // dearest.recipients
        report.update(
            recipients=recipients,
            total_cost=str(total.quantize(CENT)),
            total_segments=segs,
            total_is_upper_bound=rest > 0,
            ab_test_recipients=test_n,
            ab_rest_recipients=rest,
        )
        shown = dearest
    else:
        shown = main
        report.update(
            recipients=recipients,
            total_cost=str(main.cost.quantize(CENT)),
            total_cost_exact=str(main.cost),
            total_segments=main.segments,
            total_is_upper_bound=False,
        )
    report.update(
        per_country=[
            {
                "country": c,
                "recipients": v[0],
                "segments": v[1],
                "price_per_segment": str(segment_price(c, rules.price_table)),
                "cost": str(v[2]),
            }
            for c, v in sorted(shown.by_country.items(), key=lambda kv: -kv[1][0])
        ],
        segments_per_message=_by_segments(shown),
        encodings=dict(shown.by_encoding),
        variants=variants,
        sample=shown.sample,
        ucs2_chars=list({c: None for p in priced.values() for c in p.ucs2_chars}),
    )
    too_long = max(p.too_long for p in priced.values())
    if too_long:
        worst = max(p.too_long_segments for p in priced.values())
        issues.append(
            Issue(
                "too_long",
                f"{too_long} recipients' texts would be {worst} "
                f"segments; the limit is {rules.max_segments}. Shorten the text.",
                blocking=True,
                count=too_long,
                details={"segments": worst, "limit": rules.max_segments},
            )
        )
    for p in priced.values():
        for reason, detail in p.refused.items():
            issues.append(Issue(reason, detail or reason.replace("_", " "), blocking=True))


def _warnings(
    report: dict[str, Any],
    issues: list[Issue],
    shop: Shop,
    campaign: Campaign,
    texts: list[tuple[str | None, int | None, str]],
    priced: dict[Any, _Priced],
    groups: list[tuple[Any, int]],
    rules: send_checks.ShopRules,
    now: datetime,
    timing: dict[str, Any],
) -> None:
    recipients = int(report.get("recipients") or 0)
    if report.get("ucs2_chars"):
        chars = report["ucs2_chars"]
        issues.append(
            Issue(
                "ucs2",
                "These characters switch the text to UCS-2 (70 characters "
                "per segment instead of 160): " + " ".join(chars),
                details={
                    "chars": chars,
                    "suggestion": {t[0] or "text": suggest_gsm(t[2]) for t in texts},
                },
            )
        )
    if not any(extract_urls(t[2]) for t in texts):
        issues.append(
            Issue(
                "no_link",
                "There is no link: only sent and delivered can be "
                "measured (no clicks, no click attribution).",
            )
        )
    footer_needed = sum(n for (_, _, _, flag), n in groups if flag)
    footer_text = str(shop.setting("footer_text") or "").strip()
    if footer_needed and not footer_text and not all(_OPT_OUT.search(t[2]) for t in texts):
        issues.append(
            Issue(
                "missing_opt_out",
                f"{footer_needed} recipients are due opt-out "
                "language (their first text, or by the footer cadence) but the "
                "opt-out footer is empty and the text has none.",
                count=footer_needed,
            )
        )
    if timing["quiet_hours_delayed"]:
        issues.append(
            Issue(
                "quiet_hours",
                f"{timing['quiet_hours_delayed']} recipients are "
                "in quiet hours; their texts wait for the sending window (from "
                f"{timing['starts_at_local']}).",
                count=timing["quiet_hours_delayed"],
            )
        )
    if timing["never_allowed"]:
        issues.append(
            Issue(
                "no_allowed_time",
                f"{timing['never_allowed']} recipients have no "
                "allowed sending time in the next week and will be skipped.",
                count=timing["never_allowed"],
            )
        )
    if not recipients and not any(i.blocking for i in issues):
        issues.append(
            Issue("no_recipients", "Nobody in this audience can be texted now.", blocking=True)
        )
    _usage_warnings(issues, shop, rules, recipients, Decimal(report.get("total_cost") or 0), now)


def _usage_warnings(
    issues: list[Issue],
    shop: Shop,
    rules: send_checks.ShopRules,
    recipients: int,
    cost: Decimal,
    now: datetime,
) -> None:
    if not rules.has_usage_caps or not recipients:
        return
    usage = send_checks.usage_of(shop.id, now, rules.timezone)
    per = cost / recipients
    checks = [
        ("daily_messages", rules.daily_messages, usage.sent_today, "wait until tomorrow"),
        ("monthly_messages", rules.monthly_messages, usage.sent_month, "will be skipped"),
    ]
    for name, limit, used, fate in checks:
        if limit is not None and used + recipients > limit:
            room = max(0, limit - used)
            issues.append(
                Issue(
                    "usage_cap",
                    f"The {name.replace('_', ' ')} cap ({limit}) leaves "
                    f"room for {room} of {recipients} texts; the rest {fate}.",
                    count=recipients - room,
                    details={"cap": name},
                )
            )
    spend = [
        ("daily_spend", rules.daily_spend, usage.spend_today, "wait until tomorrow"),
        ("monthly_spend", rules.monthly_spend, usage.spend_month, "will be skipped"),
    ]
    for name, limit, used, fate in spend:
        if limit is not None and per and used + cost > limit:
            room = max(0, int((limit - used) / per))
            issues.append(
                Issue(
                    "usage_cap",
                    f"The {name.replace('_', ' ')} cap ({limit}) covers "
                    f"about {room} of {recipients} texts; the rest {fate}.",
                    count=recipients - room,
                    details={"cap": name},
                )
            )


def _finish(
    report: dict[str, Any],
    issues: list[Issue],
    audience: Any,
    audience_n: int,
    held_n: int,
    smart_n: int,
) -> dict[str, Any]:
    report.setdefault("recipients", 0)
    report.setdefault("total_cost", "0.00")
    report.update(
        audience=audience_n,
        held_out=held_n,
        smart_sending_skipped=smart_n,
        segment_id=getattr(audience, "segment_id", None),
        segment_name=getattr(audience, "segment_name", None),
        warnings=[i.as_dict() for i in issues if not i.blocking],
        blocking=[i.as_dict() for i in issues if i.blocking],
    )
    report["can_send"] = not report["blocking"]
    return report


def blocking_issues(
    shop: Shop, campaign: Campaign, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    return review(shop, campaign, now=now)["blocking"]
