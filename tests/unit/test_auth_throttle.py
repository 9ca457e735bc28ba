"""How long the GraphQL client waits when Shopify throttles it."""

from __future__ import annotations

import pytest

from shopify_app.shopify.client import MAX_WAIT_SECONDS, raise_user_errors, throttle_wait_seconds
from shopify_app.shopify.errors import ShopifyUserError


def cost(requested: float, available: float, rate: float = 100.0) -> dict:
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": None,
        "throttleStatus": {
            "maximumAvailable": 2000.0,
            "currentlyAvailable": available,
            "restoreRate": rate,
        },
    }


def test_wait_is_the_time_to_refill_the_missing_points() -> None:
    """(requested - available) / restoreRate, plus a little slack."""
    assert throttle_wait_seconds(cost(502, 2), 0) == pytest.approx(5.05)
    assert throttle_wait_seconds(cost(100, 0, rate=1000), 0) == pytest.approx(0.15)


def test_enough_points_already_means_only_the_slack() -> None:
    """Shopify said THROTTLED although the bucket looks full enough: wait a moment only."""
    assert throttle_wait_seconds(cost(10, 50), 0) == pytest.approx(0.05)


def test_wait_is_capped() -> None:
    assert throttle_wait_seconds(cost(100_000, 0, rate=50), 0) == MAX_WAIT_SECONDS
    assert throttle_wait_seconds(cost(10, 0, rate=0), 0) == MAX_WAIT_SECONDS


def test_without_cost_information_back_off_exponentially() -> None:
    assert [throttle_wait_seconds(None, n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert throttle_wait_seconds({"throttleStatus": {}}, 1) == 2.0
    assert throttle_wait_seconds(None, 10) == MAX_WAIT_SECONDS


def test_raise_user_errors() -> None:
    """Empty userErrors returns the payload; any error raises with all of them."""
    ok = {"discountCodeBasicCreate": {"codeDiscountNode": {"id": "gid://1"}, "userErrors": []}}
    assert raise_user_errors(ok, "discountCodeBasicCreate")["codeDiscountNode"]["id"] == "gid://1"
    bad = {
        "discountCodeBasicCreate": {
            "codeDiscountNode": None,
            "userErrors": [
                {"field": ["code"], "code": "TAKEN", "message": "Code must be unique."},
                {"field": ["title"], "code": "BLANK", "message": "Title can't be blank"},
            ],
        }
    }
    with pytest.raises(ShopifyUserError) as raised:
        raise_user_errors(bad, "discountCodeBasicCreate")
    assert raised.value.field == "discountCodeBasicCreate"
    assert [e["code"] for e in raised.value.user_errors] == ["TAKEN", "BLANK"]
    assert "Title can't be blank" in str(raised.value)
