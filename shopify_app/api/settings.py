"""Merchant settings: read the effective values and change some of them, validated.

GET answers the effective settings (defaults overlaid with what the shop changed), the defaults
themselves, and the limits the admin page shows next to the inputs (the legal sending window,
the disclosures consent texts must keep). PUT takes any subset of the keys; a dict setting may be
given in part (`{"sender": {"from_number": "+1..."}}` keeps the messaging service SID). Invalid
input answers 422 with `details` mapping each field path ("quiet_hours.start") to a sentence the
page shows under that input; nothing is saved unless everything is valid. The rules live in
shopify_app/services/shop_settings.py.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields

from shopify_app.api._common import ApiError, current_shop
from shopify_app.extensions import db
from shopify_app.services.shop_settings import save_changes, settings_document, validate_changes

blp = Blueprint(
    "settings",
    __name__,
    url_prefix="/api/settings",
    description="The shop's merchant settings: sender, brand, consent and "
    "disclosure texts, quiet hours, caps, attribution, prices, widget.",
)


class SettingsUpdateSchema(Schema):
    """Any subset of the setting keys (see GET for the whole set and its defaults)."""

    class Meta:
        unknown = INCLUDE


class SettingsSchema(Schema):
    shop = fields.Dict(
        metadata={
            "description": "domain, name, brand, timezone, currency, country (read-only here)"
        }
    )
    settings = fields.Dict(metadata={"description": "the effective settings"})
    defaults = fields.Dict()
    limits = fields.Dict(metadata={"description": "legal window and required disclosures"})
    default_price_table = fields.Dict(keys=fields.String(), values=fields.String())


@blp.route("")
class Settings(MethodView):
    @blp.response(200, SettingsSchema)
    def get(self) -> dict[str, Any]:
        """The effective settings, their defaults and the limits the inputs must respect."""
        return settings_document(current_shop())

    @blp.arguments(SettingsUpdateSchema)
    @blp.response(200, SettingsSchema)
    def put(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change any subset of the settings; 422 with `details` per field, nothing saved."""
        shop = current_shop()
        values, errors = validate_changes(shop, changes)
        if errors:
            raise ApiError(422, "invalid", "Some settings are not valid.", errors)
        save_changes(shop, values)
        db.session.commit()
        return settings_document(shop)
