"""What `make fuzz` (schemathesis against /api/openapi.json) found, pinned as outcomes."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/api/outbox", "/api/campaigns", "/api/discounts"])
@pytest.mark.parametrize("limit", ["-1", "0", "201", "204521779020714115072"])
def test_a_page_limit_out_of_range_is_refused_not_a_500(api, path, limit):
    res = api.get(f"{path}?limit={limit}")
    assert res.status_code == 422
    assert set(res.get_json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/campaigns/84944712149697573158912",
        "/api/segments/9223372036854775808",
        "/api/subscribers/84944712149697573158912",
    ],
)
def test_a_row_id_beyond_bigint_names_no_row(api, path):
    assert api.get(path).status_code == 404


def test_a_forged_cursor_is_a_400(api):
    import base64
    import json

    for value in ("x", 2**70, True):
        cursor = base64.urlsafe_b64encode(json.dumps({"id": value}).encode()).decode()
        res = api.get(f"/api/campaigns?cursor={cursor}")
        assert res.status_code == 400
        assert res.get_json()["error"]["code"] == "bad_cursor"


def test_the_document_describes_the_error_envelope_and_money_as_strings(client):
    doc = client.get("/api/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"]["$ref"].endswith("/ErrorBody")
    assert set(schemas["ErrorBody"]["required"]) == {"code", "message"}
    assert schemas["Subscriber"]["properties"]["total_spent"]["type"] == "string"
    limit = next(
        p for p in doc["paths"]["/api/campaigns"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"]) == (1, 200)


def test_an_ab_metric_of_any_documented_name_fits_its_column(api):
    res = api.post(
        "/api/campaigns",
        json={"name": "A/B", "ab_metric": "revenue_per_recipient", "discount_mode": "shared"},
    )
    assert res.status_code in (200, 201), res.get_json()
    assert res.get_json()["ab_metric"] == "revenue_per_recipient"


@pytest.mark.parametrize("path", ["/api/analytics/shop", "/api/analytics/timeseries"])
@pytest.mark.parametrize("query", ["until=0001-01-01", "since=9999-12-31&until=9999-12-31"])
def test_a_far_off_date_range_is_a_400(api, path, query):
    res = api.get(f"{path}?{query}")
    assert res.status_code == 400
    assert res.get_json()["error"]["code"] == "bad_range"
