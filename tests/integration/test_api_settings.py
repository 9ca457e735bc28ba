"""GET/PUT /api/settings: effective values, partial updates, and every validation rule."""

from __future__ import annotations

from typing import Any

import pytest

from shopify_app.extensions import db
from shopify_app.models import Shop
from shopify_app.models.shop import DEFAULT_CONSENT_TEXT, SHOP_SETTING_DEFAULTS


def _put(api: Any, body: dict[str, Any]) -> Any:
    return api.put("/api/settings", json=body)


def _errors(resp: Any) -> dict[str, str]:
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid"
    return error["details"]


def _stored(shop: Shop) -> dict[str, Any]:
    db.session.expire_all()
    return dict(db.session.get(Shop, shop.id).settings)


def test_get_answers_defaults_limits_and_shop(api, shop):
    """A new shop reads the defaults, the legal window and the required disclosures."""
    resp = api.get("/api/settings")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["settings"]["quiet_hours"] == {"start": "08:00", "end": "21:00"}
    assert body["settings"]["consent_text"] == DEFAULT_CONSENT_TEXT
    assert body["defaults"]["max_segments"] == SHOP_SETTING_DEFAULTS["max_segments"]
    assert body["limits"]["legal_window"] == {"start": "08:00", "end": "21:00"}
    assert "how to STOP" in body["limits"]["required_disclosures"]["consent_text"]
    assert body["default_price_table"]["US"] == "0.0083"
    assert body["shop"]["domain"] == shop.domain and body["shop"]["timezone"] == shop.timezone


def test_needs_a_session_token(client, shop):
    """Without a session token the settings are not readable or writable."""
    assert client.get("/api/settings").status_code == 401
    assert client.put("/api/settings", json={"brand_name": "X"}).status_code == 401


def test_partial_update_keeps_other_keys_and_stores_only_changes(api, shop):
    """A partial dict merges with the current value; defaults are not stored."""
    resp = _put(api, {"brand_name": "  Acme  ", "sender": {"from_number": "+1 415 555 2671"}})
    assert resp.status_code == 200, resp.get_json()
    settings = resp.get_json()["settings"]
    assert settings["brand_name"] == "Acme"
    assert settings["sender"] == {"messaging_service_sid": "", "from_number": "+14155552671"}
    assert resp.get_json()["shop"]["brand"] == "Acme"
    assert _stored(shop) == {
        "brand_name": "Acme",
        "sender": {"messaging_service_sid": "", "from_number": "+14155552671"},
    }

    # Setting a value back to its default removes it from the stored settings.
    assert _put(api, {"brand_name": ""}).status_code == 200
    assert "brand_name" not in _stored(shop)


def test_settings_are_per_shop(api, shop, other_shop):
    """One shop's change never shows in another shop's settings."""
    assert _put(api, {"max_segments": 2}).status_code == 200
    db.session.expire_all()
    assert db.session.get(Shop, other_shop.id).setting("max_segments") == 4


@pytest.mark.parametrize(
    ("quiet", "field"),
    [
        ({"start": "07:00", "end": "20:00"}, "quiet_hours.start"),
        ({"start": "09:00", "end": "22:00"}, "quiet_hours.end"),
        ({"start": "12:00", "end": "10:00"}, "quiet_hours.end"),
        ({"start": "9am", "end": "20:00"}, "quiet_hours.start"),
    ],
)
def test_quiet_hours_only_narrow_the_legal_window(api, shop, quiet, field):
    """Sending hours outside 8:00-21:00, inverted or malformed are refused, nothing saved."""
    details = _errors(_put(api, {"quiet_hours": quiet, "brand_name": "Saved?"}))
    assert field in details
    assert _stored(shop) == {}


def test_quiet_hours_narrowed(api, shop):
    """A narrower window is saved as HH:MM."""
    resp = _put(api, {"quiet_hours": {"start": "9:30", "end": "20:00"}})
    assert resp.status_code == 200
    assert resp.get_json()["settings"]["quiet_hours"] == {"start": "09:30", "end": "20:00"}


def test_legal_window_follows_the_shop_country(api, shop):
    """A French shop may send until 22:00 (Monday to Saturday)."""
    shop.country = "FR"
    db.session.commit()
    assert api.get("/api/settings").get_json()["limits"]["legal_window"]["end"] == "22:00"
    assert _put(api, {"quiet_hours": {"start": "09:00", "end": "22:00"}}).status_code == 200


def test_caps_must_be_non_negative(api, shop):
    """Negative counts and spends, and zero-length caps, are refused per field."""
    details = _errors(
        _put(
            api,
            {
                "usage_caps": {"daily_messages": -1, "monthly_spend": "-5"},
                "frequency_caps": [{"count": 0, "hours": 24}, {"count": 3, "hours": "x"}],
                "smart_sending_hours": -2,
            },
        )
    )
    assert set(details) == {
        "usage_caps.daily_messages",
        "usage_caps.monthly_spend",
        "frequency_caps.0.count",
        "frequency_caps.1.hours",
        "smart_sending_hours",
    }


def test_caps_saved(api, shop):
    """Valid caps are normalised: counts as ints, spends as Decimal strings, blanks as None."""
    resp = _put(
        api,
        {
            "usage_caps": {"daily_messages": "500", "daily_spend": "25.50", "monthly_spend": ""},
            "frequency_caps": [{"count": "3", "hours": 24}],
        },
    )
    assert resp.status_code == 200
    settings = resp.get_json()["settings"]
    assert settings["usage_caps"] == {
        "daily_messages": 500,
        "monthly_messages": None,
        "daily_spend": "25.50",
        "monthly_spend": None,
    }
    assert settings["frequency_caps"] == [{"count": 3, "hours": 24}]


def test_price_table_takes_decimal_strings(api, shop):
    """Prices are Decimal strings per country code; floats, bad codes and typos are refused."""
    details = _errors(
        _put(api, {"price_table": {"US": 0.0083, "usa": "0.01", "GB": "12", "CA": "0.000001"}})
    )
    assert set(details) == {"price_table.US", "price_table.usa", "price_table.GB", "price_table.CA"}
    resp = _put(api, {"price_table": {"us": "0.0079", "*": "0.05"}})
    assert resp.status_code == 200
    assert resp.get_json()["settings"]["price_table"] == {"US": "0.0079", "*": "0.05"}


@pytest.mark.parametrize(
    ("removed", "label"),
    [
        ("{brand}", "brand"),
        ("recurring automated marketing", "recurring automated marketing"),
        ("Msg & data rates may apply.", "Msg & data rates"),
        ("Reply HELP for help and ", "HELP"),
        (" and STOP to cancel", "STOP"),
        ("Consent is not a condition of purchase. ", "not a condition of purchase"),
    ],
)
def test_consent_text_keeps_required_disclosures(api, shop, removed, label):
    """Removing any one required disclosure from the consent text is refused, naming it."""
    text = DEFAULT_CONSENT_TEXT.replace(removed, "")
    assert text != DEFAULT_CONSENT_TEXT
    details = _errors(_put(api, {"consent_text": text}))
    assert label.lower() in details["consent_text"].lower()


def test_consent_text_may_name_the_brand_literally(api, shop):
    """The brand itself instead of {brand} satisfies the brand disclosure."""
    text = DEFAULT_CONSENT_TEXT.replace("{brand}", "Tidings Test Shop")
    assert _put(api, {"consent_text": text}).status_code == 200


def test_welcome_text_keeps_disclosures(api, shop):
    """The first message after opt-in must keep frequency, rates, HELP and STOP."""
    details = _errors(_put(api, {"welcome_text": "{brand}: Welcome!"}))
    assert "STOP" in details["welcome_text"]


@pytest.mark.parametrize(
    ("sender", "field"),
    [
        ({"from_number": "4155552671"}, "sender.from_number"),
        ({"from_number": "+1555"}, "sender.from_number"),
        ({"messaging_service_sid": "MG123"}, "sender.messaging_service_sid"),
        ({"messaging_service_sid": "PN" + "a" * 32}, "sender.messaging_service_sid"),
    ],
)
def test_sender_must_be_e164_or_messaging_service(api, shop, sender, field):
    assert field in _errors(_put(api, {"sender": sender}))


def test_messaging_service_sid_accepted(api, shop):
    sid = "MG" + "0123456789abcdef" * 2
    resp = _put(api, {"sender": {"messaging_service_sid": sid}})
    assert resp.status_code == 200
    assert resp.get_json()["settings"]["sender"]["messaging_service_sid"] == sid


def test_unknown_keys_and_wrong_types_refused(api, shop):
    details = _errors(
        _put(
            api,
            {
                "no_such": 1,
                "sender": "x",
                "widget": {"enabled": "yes"},
                "attribution": {"click_window_days": 0},
            },
        )
    )
    assert set(details) == {"no_such", "sender", "widget.enabled", "attribution.click_window_days"}


def test_widget_and_keywords(api, shop):
    """Widget appearance and offer are saved; reserved keywords are refused."""
    resp = _put(
        api,
        {
            "widget": {
                "headline": "Join us",
                "offer_text": "15% off",
                "welcome_discount": "WELCOME15",
            },
            "join_keywords": ["join", "vip"],
            "discount_prefix": "sms",
            "footer_every_n": 3,
            "footer_text": "Txt STOP to end",
        },
    )
    assert resp.status_code == 200, resp.get_json()
    settings = resp.get_json()["settings"]
    assert settings["widget"]["headline"] == "Join us"
    assert settings["widget"]["button_label"] == "Subscribe"  # kept from the default
    assert settings["widget"]["welcome_discount"] == "WELCOME15"
    assert settings["join_keywords"] == ["JOIN", "VIP"]
    assert settings["discount_prefix"] == "SMS"
    details = _errors(
        _put(api, {"join_keywords": ["STOP"], "footer_text": "Bye", "widget": {"headline": ""}})
    )
    assert set(details) == {"join_keywords", "footer_text", "widget.headline"}
