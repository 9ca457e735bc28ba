"""Keyword handling for inbound texts: STOP always wins, then HELP, START, Y, the join keyword.

Called by services.twilio_events.handle_inbound with the shops that own the receiving number or
messaging service. An opt-out applies in every one of those shops where the number is a
subscriber (on a number shared by several shops, compliance wins); the other keywords act in
the one shop the sender most plausibly means. Whatever is not a keyword (or a keyword that has
nothing to act on) is left for the caller to store as an inbound message for the merchant.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shopify_app.models import Shop, Subscriber
from shopify_app.services import consent, subscribers
from shopify_app.sms.keywords import Keyword, classify
from shopify_app.sms.phones import normalize

log = logging.getLogger(__name__)

# Twilio's advanced opt-out sets OptOutType when its filter recognised the keyword.
_TWILIO_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}
_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass
class InboundOutcome:
    keyword: Keyword
    # True: the text was a keyword and acted on; False: store it for the merchant to read.
    handled: bool = False
    # A text to answer with in TwiML: only for a number no shop holds a row for (HELP).
    reply: str | None = None
    # shop id -> subscriber id, for every shop where the sender is a subscriber.
    subscriber_ids: dict[int, int] = field(default_factory=dict)
    acted_shop_ids: list[int] = field(default_factory=list)


def _subscribers(shops: Sequence[Shop], e164: str) -> dict[int, Subscriber]:
    found = {}
    for shop in shops:
        sub = subscribers.find_by_phone(shop.id, e164)
        if sub is not None and sub.redacted_at is None:
            found[shop.id] = sub
    return found


def _latest(subs: list[Subscriber]) -> Subscriber | None:
    """The subscriber the sender most plausibly answers: the most recent consent change, then
    the most recent text."""
    if not subs:
        return None
    return max(
        subs, key=lambda s: (s.consent_updated_at or _EPOCH, s.last_message_at or _EPOCH, s.id)
    )


def _with_status(subs: Mapping[int, Subscriber], *statuses: str) -> Subscriber | None:
    return _latest([s for s in subs.values() if s.status in statuses])


def handle_keywords(shops: Sequence[Shop], params: Mapping[str, str]) -> InboundOutcome:
    """Act on a keyword in an inbound text (Twilio's parameters). Flushes; the caller commits."""
    body = params.get("Body") or ""
    sender = (params.get("From") or "").strip()
    sid = params.get("MessageSid") or params.get("SmsSid") or None
    twilio_type = (params.get("OptOutType") or "").strip().upper()
    keyword = classify(body, join_keywords=())
    # Twilio's own recognition is authoritative for its words (it has already acted on them),
    # but our wider opt-out phrasing still wins over anything else.
    if keyword != Keyword.OPT_OUT and twilio_type in _TWILIO_TYPES:
        keyword = _TWILIO_TYPES[twilio_type]
    shops_by_id = {shop.id: shop for shop in shops}
    subs = _subscribers(shops, sender) if sender else {}
    outcome = InboundOutcome(keyword, subscriber_ids={k: s.id for k, s in subs.items()})
    if not shops or not sender:
        return outcome

    if keyword == Keyword.OPT_OUT:
        _opt_out(shops, subs, sender, sid, twilio_filtered=bool(twilio_type), outcome=outcome)
        return outcome

    if keyword == Keyword.OTHER:
        join_shop = _join_shop(shops, subs, body)
        if join_shop is not None:
            outcome.keyword = Keyword.JOIN
            _join(join_shop, sender, body, sid, outcome)
        return outcome

    if keyword == Keyword.HELP:
        sub = _latest(list(subs.values()))
        shop = shops_by_id[sub.shop_id] if sub is not None else shops[0]
        if sub is not None:
            subscribers.queue_text(
                shop,
                sub,
                kind="compliance",
                template=consent.shop_template(shop, "help_text"),
                dedupe_key=f"help:{sub.id}:{sid or body}",
            )
        else:
            outcome.reply = consent.shop_text(shop, "help_text")
        outcome.handled = True
        outcome.acted_shop_ids.append(shop.id)
        return outcome

    # START / UNSTOP prefer resubscribing an opted-out number; Y / YES prefer completing a
    # pending sign-up. Either one does the other when that is all there is to do.
    order = (
        ("unsubscribed", "pending") if keyword == Keyword.OPT_IN else ("pending", "unsubscribed")
    )
    for status in order:
        sub = _with_status(subs, status)
        if sub is None:
            continue
        shop = shops_by_id[sub.shop_id]
        if status == "pending":
            subscribers.confirm(shop, sub, source="keyword", evidence_id=sid)
        else:
            subscribers.resubscribe(shop, sub, source="keyword", evidence_id=sid)
        outcome.handled = True
        outcome.acted_shop_ids.append(shop.id)
        return outcome
    # START from a subscribed number changes nothing; a subscribed "yes" may answer a campaign
    # question, so the merchant gets to read it.
    outcome.handled = keyword == Keyword.OPT_IN and bool(subs)
    return outcome


def _opt_out(
    shops: Sequence[Shop],
    subs: Mapping[int, Subscriber],
    sender: str,
    sid: str | None,
    *,
    twilio_filtered: bool,
    outcome: InboundOutcome,
) -> None:
    outcome.handled = True
    note = "Twilio advanced opt-out replied" if twilio_filtered else None
    confirmation_sent = twilio_filtered  # Twilio's filter already sent the one confirmation
    for shop in shops:
        sub = subs.get(shop.id)
        if sub is None:
            continue
        event = subscribers.unsubscribe(
            shop,
            sub,
            source="keyword",
            evidence_id=sid,
            send_confirmation=not confirmation_sent,
            note=note,
        )
        if event is not None:
            confirmation_sent = True
            outcome.acted_shop_ids.append(shop.id)
    if not subs and len(shops) == 1:
        # A number the shop never had: remember the opt-out so no import adds it later.
        phone = normalize(sender, None)
        if phone.ok:
            sub = subscribers.suppress(shops[0], phone, source="keyword", evidence_id=sid)
            outcome.subscriber_ids[shops[0].id] = sub.id
            outcome.acted_shop_ids.append(shops[0].id)
    if outcome.acted_shop_ids:
        log.info("opt-out by keyword applied in %d shop(s)", len(outcome.acted_shop_ids))


def _join_shop(shops: Sequence[Shop], subs: Mapping[int, Subscriber], body: str) -> Shop | None:
    """The shop whose text-to-join keyword this is; shops where the sender already is a
    subscriber are asked first."""
    ordered = sorted(shops, key=lambda s: s.id not in subs)
    for shop in ordered:
        words = shop.setting("join_keywords") or []
        if words and classify(body, join_keywords=words) == Keyword.JOIN:
            return shop
    return None


def _join(shop: Shop, sender: str, body: str, sid: str | None, outcome: InboundOutcome) -> None:
    phone = normalize(sender, shop.country)
    if not phone.ok:
        return  # a short code or an unparseable sender: nothing we could text back
    result = subscribers.request_opt_in(
        shop,
        phone,
        source="keyword",
        consent_text=None,
        evidence_id=sid,
        note=f"Texted the join keyword {body.strip()[:40]!r}",
    )
    outcome.handled = True
    outcome.acted_shop_ids.append(shop.id)
    outcome.subscriber_ids[shop.id] = result.subscriber.id
