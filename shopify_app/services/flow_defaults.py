"""The four flows every shop gets, their settings, and what a valid flow definition is.

Default flows are created disabled: nothing is texted until the merchant turns a flow on.

Default texts are written to be compliant as they stand, because the send path adds what the
law and the carriers ask of every marketing text: `compose.render` prefixes the brand
("Brand: ...") and `rendering.render_for_send` adds the opt-out footer on a subscriber's first
marketing text and every Nth after (the shop's `footer_every_n`). So the texts here name no
brand and carry no STOP line of their own (that would print it twice), promise nothing they
do not deliver, and use no urgency they cannot back up.

Flow merge tags, filled when a step is queued (the engine's own tags — first_name, brand,
discount_code … — are filled by the send path): `{checkout_url}` (abandoned checkout only: the
checkout's recovery URL, sent as a tracked short link) and `{shop_url}` (the storefront).

Step ids: every step carries an integer `id` that stays with it through edits (moves,
insertions, removals). A run's texts are keyed by it (Message.flow_step), so a step is texted at
most once per run whatever the edits, and its results stay with it; and an edit moves each
active run to where the step it was about to perform now stands (`reposition`). Steps stored
before ids existed have the implicit id of their position (`step_id`), which is also what their
texts were keyed by. A client that sends steps without ids (an editor that does not keep them)
has them matched to the old steps: same content first, then same position and type.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shopify_app.extensions import db
from shopify_app.models import Flow, Shop, utcnow
from shopify_app.models.flow import FLOW_KINDS
from shopify_app.services.bulk import is_postgresql
from shopify_app.services.discount_config import InvalidDiscountConfig, parse_discount_config
from shopify_app.sms.compose import find_unknown_tags

MINUTE = 1
HOUR = 60 * MINUTE
DAY = 24 * HOUR
MAX_WAIT_MINUTES = 365 * DAY
MAX_STEPS = 20
MAX_BODY_CHARS = 1600
MAX_HOLDOUT_PERCENT = 50
# New step ids are drawn at random above the range of implicit (positional) ids, so an id is
# never handed out again in a flow whose step with that id was removed (a run that texted it
# would otherwise find the new step's text already there).
FIRST_NEW_STEP_ID = 1000
MAX_STEP_ID = 2**31 - 1
_BARE_CODE_TAG = re.compile(r"(?<!\{)\{\s*discount_code\s*\}(?!\})", re.IGNORECASE)

FLOW_TAGS: dict[str, tuple[str, ...]] = {
    "abandoned_checkout": ("checkout_url", "shop_url"),
    "welcome": ("shop_url",),
    "post_purchase": ("shop_url",),
    "winback": ("shop_url",),
}

# exit_on_purchase: an order by the subscriber after the run started ends it ("purchased").
# The abandoned-checkout flow always ends when its own checkout is completed, whatever this
# says: the checkout is no longer abandoned.
SETTINGS_DEFAULTS: dict[str, dict[str, Any]] = {
    "abandoned_checkout": {"exit_on_purchase": True},
    # signup_offer: the sign-up offer's code (widget settings) fills {discount_code} in steps
    # that have no discount of their own.
    "welcome": {"exit_on_purchase": True, "signup_offer": True},
    # trigger_on: "order" (orders/create) or "fulfillment" (the order becoming fulfilled).
    "post_purchase": {"exit_on_purchase": False, "trigger_on": "order"},
    # A subscriber whose last order is older than days_since_order gets at most one run per
    # period_days.
    "winback": {"exit_on_purchase": True, "days_since_order": 90, "period_days": 90},
}

DEFAULT_FLOWS: dict[str, dict[str, Any]] = {
    "abandoned_checkout": {
        "name": "Abandoned checkout",
        "steps": [
            {"type": "wait", "minutes": 30},
            {
                "type": "message",
                "discount": None,
                "body": "Hi {first_name|there}, you left something in your cart. "
                "You can complete your order here: {checkout_url}",
            },
            {"type": "wait", "minutes": 24 * HOUR},
            {
                "type": "message",
                "discount": None,
                "body": "Your cart is still saved, {first_name|there}. "
                "Pick up where you left off: {checkout_url}",
            },
        ],
    },
    # The subscribers service sends the compliance welcome (brand, program, frequency, rates,
    # HELP/STOP) the moment consent is confirmed; this flow starts right after it.
    "welcome": {
        "name": "Welcome series",
        "steps": [
            {"type": "wait", "minutes": 0},
            {
                "type": "message",
                "discount": None,
                "body": "Thanks for joining, {first_name|friend}! Take a look at what's new: "
                "{shop_url}",
            },
            {"type": "wait", "minutes": 3 * DAY},
            {
                "type": "message",
                "discount": None,
                "body": "Still looking around, {first_name|friend}? Our bestsellers are here: "
                "{shop_url}",
            },
        ],
    },
    "post_purchase": {
        "name": "Post-purchase thank-you",
        "steps": [
            {"type": "wait", "minutes": 3 * DAY},
            {
                "type": "message",
                "discount": None,
                "body": "Thanks again for your order, {first_name|there}! We hope you love it. "
                "Find something to go with it: {shop_url}",
            },
        ],
    },
    "winback": {
        "name": "Win-back",
        "steps": [
            {
                "type": "message",
                "discount": None,
                "body": "We miss you, {first_name|there}! See what's new since your last visit: "
                "{shop_url}",
            },
        ],
    },
}


class InvalidFlow(ValueError):
    """A flow definition the merchant sent cannot be used; `details` says where."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.details = details


def default_flow(kind: str) -> dict[str, Any]:
    """A fresh copy of a kind's default definition (name, steps, settings)."""
    base = copy.deepcopy(DEFAULT_FLOWS[kind])
    for index, step in enumerate(base["steps"]):
        step["id"] = index
    base["settings"] = dict(SETTINGS_DEFAULTS[kind])
    return base


def settings_of(kind: str, stored: dict[str, Any] | None) -> dict[str, Any]:
    """The effective settings: the kind's defaults overlaid with what the flow stores."""
    merged = dict(SETTINGS_DEFAULTS.get(kind, {}))
    merged.update(stored or {})
    return merged


def ensure_default_flows(shop_id: int) -> None:
    """Give the shop its four flows, disabled, if it lacks any (INSERT … ON CONFLICT DO
    NOTHING on (shop, kind): safe to call from concurrent requests). The caller commits."""
    now = utcnow()
    rows = []
    for kind in FLOW_KINDS:
        flow = default_flow(kind)
        rows.append(
            {
                "shop_id": shop_id,
                "kind": kind,
                "name": flow["name"],
                "enabled": False,
                "steps": flow["steps"],
                "settings": flow["settings"],
                "holdout_percent": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    insert = pg_insert if is_postgresql(db.session) else sqlite_insert
    db.session.execute(
        insert(Flow).values(rows).on_conflict_do_nothing(index_elements=["shop_id", "kind"])
    )


# --- validation ---------------------------------------------------------------------------


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise InvalidFlow(f"{where} must be a whole number", {"field": where})
    if not low <= int(value) <= high:
        raise InvalidFlow(f"{where} must be between {low} and {high}", {"field": where})
    return int(value)


def _message_step(kind: str, step: dict[str, Any], where: str, shop: Shop) -> dict[str, Any]:
    body = step.get("body")
    if not isinstance(body, str) or not body.strip():
        raise InvalidFlow(f"{where}.body must be a non-empty text", {"field": f"{where}.body"})
    if len(body) > MAX_BODY_CHARS:
        raise InvalidFlow(
            f"{where}.body is longer than {MAX_BODY_CHARS} characters", {"field": f"{where}.body"}
        )
    unknown = [t for t in find_unknown_tags(body) if t not in FLOW_TAGS[kind]]
    if unknown:
        raise InvalidFlow(
            f"{where}.body has unknown merge tags: {', '.join(unknown)}",
            {"field": f"{where}.body", "unknown_tags": unknown},
        )
    discount = step.get("discount")
    if discount is not None:
        if not isinstance(discount, dict):
            raise InvalidFlow(
                f"{where}.discount must be an object or null", {"field": f"{where}.discount"}
            )
        try:
            parse_discount_config(
                discount,
                title="flow step",
                flow=True,
                default_prefix=shop.setting("discount_prefix"),
            )
        except InvalidDiscountConfig as exc:
            raise InvalidFlow(f"{where}.discount: {exc}", {"field": f"{where}.discount"}) from exc
        if "discount_code" not in body.lower():
            raise InvalidFlow(
                f"{where}.body must show the code: add {{discount_code}}",
                {"field": f"{where}.body"},
            )
    elif kind != "welcome" and _BARE_CODE_TAG.search(body):
        # Nothing would fill it: the send path skips a text whose code is missing.
        raise InvalidFlow(
            f"{where}.body uses {{discount_code}} but the step has no discount",
            {"field": f"{where}.discount"},
        )
    extra = set(step) - {"type", "body", "discount", "id"}
    if extra:
        raise InvalidFlow(
            f"{where} has unknown fields: {', '.join(sorted(extra))}", {"field": where}
        )
    return {"type": "message", "body": body, "discount": discount}


def validate_steps(
    kind: str, steps: Any, shop: Shop, previous: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The steps in their stored form, each with its id (kept from `previous`, the flow's
    current steps, or new), or InvalidFlow saying which one is wrong."""
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise InvalidFlow(f"steps must be a list of 1 to {MAX_STEPS} steps", {"field": "steps"})
    clean: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        where = f"steps[{i}]"
        if not isinstance(step, dict):
            raise InvalidFlow(f"{where} must be an object", {"field": where})
        kind_of_step = step.get("type")
        if kind_of_step == "wait":
            if set(step) - {"type", "minutes", "id"}:
                raise InvalidFlow(f"{where}: a wait has only `minutes`", {"field": where})
            clean.append(
                {
                    "type": "wait",
                    "minutes": _int(step.get("minutes"), f"{where}.minutes", 0, MAX_WAIT_MINUTES),
                }
            )
        elif kind_of_step == "message":
            clean.append(_message_step(kind, step, where, shop))
        else:
            raise InvalidFlow(
                f"{where}.type must be 'wait' or 'message'", {"field": f"{where}.type"}
            )
    if not any(s["type"] == "message" for s in clean):
        raise InvalidFlow("a flow needs at least one message step", {"field": "steps"})
    given = [_given_id(step, f"steps[{i}]") for i, step in enumerate(steps)]
    return assign_step_ids(clean, given, previous or [])


# --- step ids -----------------------------------------------------------------------------


def step_id(step: dict[str, Any], index: int) -> int:
    """A step's id; a step stored before ids existed is known by its position."""
    value = step.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else index


def _given_id(step: dict[str, Any], where: str) -> int | None:
    if step.get("id") is None:
        return None
    return _int(step["id"], f"{where}.id", 0, MAX_STEP_ID)


def _content(step: dict[str, Any]) -> tuple[Any, ...]:
    return (step["type"], step.get("minutes"), step.get("body"), repr(step.get("discount")))


def assign_step_ids(
    clean: list[dict[str, Any]], given: list[int | None], previous: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Give each new step an id: the one it was sent with when that is an old step's. From a
    client that keeps ids, a step sent without one is new. From one that sends none, a step
    takes the id of an old step with the same content, else of the old step at its position
    if of the same type, else a new one."""
    old = [(step_id(s, i), s) for i, s in enumerate(previous)]
    old_ids = {i for i, _ in old}
    ids: list[int | None] = [None] * len(clean)
    claimed: set[int] = set()
    for j, wanted in enumerate(given):
        if wanted is not None and wanted in old_ids and wanted not in claimed:
            ids[j] = wanted
            claimed.add(wanted)
    keeps_ids = any(wanted is not None for wanted in given)
    for j, step in enumerate(clean):
        if ids[j] is None and not keeps_ids:
            same = next(
                (i for i, s in old if i not in claimed and _content(s) == _content(step)), None
            )
            if same is not None:
                ids[j] = same
                claimed.add(same)
    for j, step in enumerate(clean):
        if ids[j] is None and not keeps_ids and j < len(old):
            i, s = old[j]
            if i not in claimed and s.get("type") == step["type"]:
                ids[j] = i
                claimed.add(i)
    used = old_ids | claimed
    for j in range(len(clean)):
        if ids[j] is None:
            new = FIRST_NEW_STEP_ID + secrets.randbelow(MAX_STEP_ID - FIRST_NEW_STEP_ID)
            while new in used:
                new = FIRST_NEW_STEP_ID + secrets.randbelow(MAX_STEP_ID - FIRST_NEW_STEP_ID)
            ids[j] = new
            used.add(new)
    return [{**step, "id": ids[j]} for j, step in enumerate(clean)]


def reposition(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[int, int]:
    """Where each position of the old steps (0 … len(old), the end included) is in the new
    ones: at the step the run was about to perform, or the next old step that is still there
    — or at the new steps inserted just before that one, which the run has not reached
    either. When no old step is left ahead: right after the last one before it that is left.
    When nothing of the old steps is left before or after it: at the start if the run has not
    texted yet, else at the end (it completes rather than starting over)."""
    old_ids = [step_id(s, i) for i, s in enumerate(old)]
    known = set(old_ids)
    where = {step_id(s, j): j for j, s in enumerate(new)}
    mapping = {}
    for position in range(len(old) + 1):
        ahead = next((where[i] for i in old_ids[position:] if i in where), None)
        if ahead is not None:
            while ahead > 0 and step_id(new[ahead - 1], ahead - 1) not in known:
                ahead -= 1
            mapping[position] = ahead
            continue
        behind = [where[i] for i in old_ids[:position] if i in where]
        if behind:
            mapping[position] = max(behind) + 1
        else:
            texted = any(s.get("type") == "message" for s in old[:position])
            mapping[position] = len(new) if texted else 0
    return mapping


def validate_settings(kind: str, settings: Any) -> dict[str, Any]:
    """The settings in their stored form (only known keys, checked types)."""
    if not isinstance(settings, dict):
        raise InvalidFlow("settings must be an object", {"field": "settings"})
    known = SETTINGS_DEFAULTS[kind]
    unknown = set(settings) - set(known)
    if unknown:
        raise InvalidFlow(
            f"unknown settings for {kind}: {', '.join(sorted(unknown))}", {"field": "settings"}
        )
    clean: dict[str, Any] = {}
    for key, value in settings.items():
        where = f"settings.{key}"
        if isinstance(known[key], bool):
            if not isinstance(value, bool):
                raise InvalidFlow(f"{where} must be true or false", {"field": where})
            clean[key] = value
        elif key == "trigger_on":
            if value not in ("order", "fulfillment"):
                raise InvalidFlow(f"{where} must be 'order' or 'fulfillment'", {"field": where})
            clean[key] = value
        else:
            clean[key] = _int(value, where, 1, 3650)
    return clean


def validate_holdout(value: Any) -> int:
    return _int(value, "holdout_percent", 0, MAX_HOLDOUT_PERCENT)
