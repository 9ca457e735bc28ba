"""The development outbox: what the dev provider "sent", and what would happen next.

Only in development with the outbox provider (SMS_PROVIDER=outbox, ENV not production); every
route answers 404 otherwise, as if it did not exist. A developer plays a delivery receipt or a
failure, taps a message's link, or replies from the recipient's phone; each goes through the
same code as Twilio's callbacks and a real tap (shopify_app/providers/outbox.py).
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import Link, Message, OutboxMessage
from shopify_app.providers import outbox
from shopify_app.sms.phones import normalize

blp = Blueprint(
    "outbox",
    __name__,
    url_prefix="/api/outbox",
    description="Development only: messages the outbox provider 'sent', and playing "
    "their delivery, failure, a click or a reply.",
)

PLAYABLE = ("sent", "delivered", "undelivered", "failed")
# A believable error per failed outcome when the developer does not pick one: 30003 unreachable
# handset (retried), 30006 landline (permanent).
DEFAULT_ERRORS = {"undelivered": 30003, "failed": 30006}


def outbox_enabled() -> bool:
    config = current_app.config
    return config.get("SMS_PROVIDER") == "outbox" and config.get("ENV") != "production"


@blp.before_request
def _only_in_development() -> None:
    if not outbox_enabled():
        raise ApiError(404, "not_found", "The development outbox is not enabled.")


class OutboxLinkSchema(Schema):
    token = fields.String()
    url = fields.String()


class OutboxMessageLinkSchema(Schema):
    id = fields.Integer()
    status = fields.String()
    kind = fields.String()
    campaign_id = fields.Integer(allow_none=True)
    subscriber_id = fields.Integer()
    skip_reason = fields.String(allow_none=True)
    error_code = fields.Integer(allow_none=True)


class OutboxItemSchema(Schema):
    id = fields.Integer()
    sid = fields.String()
    to = fields.String()
    sender = fields.String()
    body = fields.String()
    status = fields.String(metadata={"description": "what the outbox last played"})
    created_at = fields.DateTime()
    message = fields.Nested(
        OutboxMessageLinkSchema,
        allow_none=True,
        metadata={"description": "the Message row the send belongs to"},
    )
    links = fields.List(fields.Nested(OutboxLinkSchema))


class OutboxPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(OutboxItemSchema))


class OutboxQuerySchema(PageArgsSchema):
    to = fields.String(load_default=None, metadata={"description": "digits of the recipient"})


class PlaySchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(PLAYABLE))
    error_code = fields.Integer(load_default=None, validate=validate.Range(1, 99999))


class ClickSchema(Schema):
    token = fields.String(load_default=None, metadata={"description": "default: first link"})


class ReplySchema(Schema):
    body = fields.String(required=True, validate=validate.Length(1, 1600))


class InboundSchema(ReplySchema):
    from_phone = fields.String(required=True, data_key="from")


class ReplyResultSchema(Schema):
    twiml = fields.String()


class ClickResultSchema(Schema):
    redirect_to = fields.String()


def _item(row: OutboxMessage, message: Message | None, links: list[Link]) -> dict[str, Any]:
    return {
        "id": row.id,
        "sid": row.sid,
        "to": row.to,
        "sender": row.sender,
        "body": row.body,
        "status": row.status,
        "created_at": row.created_at,
        "message": message,
        "links": [{"token": link.token, "url": link.url} for link in links],
    }


def _items(rows: list[OutboxMessage]) -> list[dict[str, Any]]:
    shop_id = current_shop().id
    sids = [r.sid for r in rows]
    messages = (
        {
            m.provider_sid: m
            for m in db.session.scalars(
                Message.for_shop(shop_id).where(Message.provider_sid.in_(sids))
            )
        }
        if sids
        else {}
    )
    ids = [m.id for m in messages.values()]
    links: dict[int, list[Link]] = {}
    if ids:
        for link in db.session.scalars(
            Link.for_shop(shop_id).where(Link.message_id.in_(ids)).order_by(Link.id)
        ):
            links.setdefault(link.message_id or 0, []).append(link)
    result = []
    for row in rows:
        message = messages.get(row.sid)
        result.append(_item(row, message, links.get(message.id, []) if message else []))
    return result


def _row(sid: str) -> OutboxMessage:
    row = db.session.scalars(
        OutboxMessage.for_shop(current_shop().id).where(OutboxMessage.sid == sid)
    ).first()
    if row is None:
        raise ApiError(404, "not_found", "No outbox message has that id.")
    return row


@blp.route("")
class Outbox(MethodView):
    @blp.arguments(OutboxQuerySchema, location="query")
    @blp.response(200, OutboxPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """What the outbox 'sent' for this shop, newest first."""
        stmt = OutboxMessage.for_shop(current_shop().id)
        digits = "".join(c for c in (args["to"] or "") if c.isdigit())
        if digits:
            stmt = stmt.where(OutboxMessage.to.contains(digits))
        page = keyset_page(stmt, OutboxMessage.id, args["cursor"], args["limit"])
        return {"items": _items(page.items), "next_cursor": page.next_cursor, "limit": page.limit}


@blp.route("/<sid>/play")
class Play(MethodView):
    @blp.arguments(PlaySchema)
    @blp.response(200, OutboxItemSchema)
    def post(self, body: dict[str, Any], sid: str) -> dict[str, Any]:
        """Play a status callback (sent, delivered, undelivered, failed) for this message."""
        row = _row(sid)
        status = body["status"]
        error_code = body["error_code"] or DEFAULT_ERRORS.get(status)
        outbox.play(row.sid, status, error_code)
        db.session.refresh(row)
        return _items([row])[0]


@blp.route("/<sid>/click")
class Click(MethodView):
    @blp.arguments(ClickSchema)
    @blp.response(200, ClickResultSchema)
    def post(self, body: dict[str, Any], sid: str) -> dict[str, str]:
        """Tap one of the message's short links (the first unless `token` is given)."""
        item = _items([_row(sid)])[0]
        tokens = [link["token"] for link in item["links"]]
        token = body["token"] or (tokens[0] if tokens else None)
        if token is None or token not in tokens:
            raise ApiError(409, "no_link", "This message has no such link to tap.")
        target = outbox.simulate_click(token)
        if target is None:
            raise ApiError(404, "not_found", "That link does not exist any more.")
        return {"redirect_to": target}


@blp.route("/<sid>/reply")
class Reply(MethodView):
    @blp.arguments(ReplySchema)
    @blp.response(200, ReplyResultSchema)
    def post(self, body: dict[str, Any], sid: str) -> dict[str, str]:
        """Reply to this message from its recipient's phone (STOP, HELP, Y, anything)."""
        row = _row(sid)
        return {"twiml": outbox.simulate_inbound(current_shop(), row.to, body["body"])}


@blp.route("/inbound")
class Inbound(MethodView):
    @blp.arguments(InboundSchema)
    @blp.response(200, ReplyResultSchema)
    def post(self, body: dict[str, Any]) -> dict[str, str]:
        """A text to the shop from any number (a JOIN keyword from someone new, say)."""
        shop = current_shop()
        phone = normalize(body["from_phone"], shop.country or "US")
        if not phone.ok or phone.e164 is None:
            raise ApiError(
                422, "invalid", "That phone number is not valid.", {"from": phone.reason}
            )
        return {"twiml": outbox.simulate_inbound(shop, phone.e164, body["body"])}
