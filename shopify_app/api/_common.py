"""What every API module shares: the error shape, the current shop, keyset pagination."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from flask import g, jsonify
from flask.typing import ResponseReturnValue
from flask_smorest import Api
from marshmallow import Schema, fields, validate
from sqlalchemy import Select
from werkzeug.routing import IntegerConverter

from shopify_app.extensions import db
from shopify_app.models import Shop


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Raw(allow_none=True)


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class TidingsApi(Api):
    """flask-smorest's Api documenting the error shape the API really answers with
    (shopify_app/errors.py), not flask-smorest's own: clients and schemathesis read it."""

    ERROR_SCHEMA = ErrorSchema


# PostgreSQL's bigint: a larger number names no row, and must not reach the database.
MAX_ROW_ID = 2**63 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` in every route: a row id, so at most PostgreSQL's bigint. A larger number
    names no row (404) instead of reaching the database and failing there (500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002 - werkzeug's
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


class ApiError(Exception):
    """An expected failure with the API's one error shape."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> ResponseReturnValue:
    body = {"error": {"code": code, "message": message, "details": details}}
    return jsonify(body), status, headers or {}


def current_shop() -> Shop:
    """The shop named by the request's verified session token."""
    shop = g.get("shop")
    if shop is None:  # the guard runs before every /api view; reaching here is a bug
        raise ApiError(401, "unauthenticated", "A session token is required.")
    return shop


class PageArgsSchema(Schema):
    cursor = fields.String(load_default=None)
    # A validator must raise (marshmallow 4 ignores a False return); Range also documents it.
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class PageMetaSchema(Schema):
    next_cursor = fields.String(allow_none=True)
    limit = fields.Integer()


@dataclass
class Page:
    items: list[Any]
    next_cursor: str | None
    limit: int


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, json.JSONDecodeError):
        raise ApiError(400, "bad_cursor", "The page cursor is not valid.") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_cursor", "The page cursor is not valid.")
    return value


def cursor_row_id(value: Any) -> int:
    """A row id read from a cursor; a forged one (a string, a bool, a 70-bit integer) is a 400
    before it reaches the database."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ROW_ID:
        raise ApiError(400, "bad_cursor", "The page cursor is not valid.")
    return value


def keyset_page(
    stmt: Select, id_column: Any, cursor: str | None, limit: int, *, descending: bool = True
) -> Page:
    """Page by id (`id < last` newest first, or `id > last`), never by OFFSET."""
    after = decode_cursor(cursor)
    if after is not None:
        last = cursor_row_id(after.get("id", 0))
        stmt = stmt.where(id_column < last if descending else id_column > last)
    stmt = stmt.order_by(id_column.desc() if descending else id_column.asc()).limit(limit + 1)
    rows = list(db.session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor({"id": rows[-1].id}) if more and rows else None
    return Page(rows, next_cursor, limit)
