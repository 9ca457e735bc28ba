"""The flows API: default flows (off, with compliant texts) and their results, editing with
validation, on/off, runs, the OpenAPI document, and no way into another shop's flows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shopify_app.extensions import db
from shopify_app.models import Flow, FlowRun, Shop
from shopify_app.services import flow_triggers
from shopify_app.services.flow_defaults import DEFAULT_FLOWS, FIRST_NEW_STEP_ID
from shopify_app.sms.compose import find_unknown_tags
from tests.conftest import ApiClient
from tests.integration.consent_support import add_subscriber
from tests.integration.flows_support import PHONE, flow_shop, tick_and_send

KINDS = ["abandoned_checkout", "welcome", "post_purchase", "winback"]


def _flows(api: ApiClient) -> dict[str, dict]:
    resp = api.get("/api/flows")
    assert resp.status_code == 200
    return {f["kind"]: f for f in resp.get_json()["items"]}


def test_list_creates_the_four_default_flows_disabled(api: ApiClient, shop: Shop):
    """First read: four flows, all off, with their default steps, settings and zero results."""
    flows = _flows(api)
    assert list(flows) == KINDS
    assert all(f["enabled"] is False for f in flows.values())
    abandoned = flows["abandoned_checkout"]
    assert [s["type"] for s in abandoned["steps"]] == ["wait", "message", "wait", "message"]
    assert abandoned["steps"][0]["minutes"] == 30 and abandoned["steps"][2]["minutes"] == 1440
    assert abandoned["settings"] == {"exit_on_purchase": True}
    assert abandoned["merge_tags"] == ["checkout_url", "shop_url"]
    assert flows["winback"]["settings"]["days_since_order"] == 90
    assert abandoned["stats"]["sent"] == 0 and abandoned["stats"]["runs"]["total"] == 0
    assert _flows(api).keys() == flows.keys()  # idempotent
    assert db.session.scalar(select(db.func.count()).select_from(Flow)) == 4


def test_default_texts_are_compliant():
    """Default texts use known tags only, leave brand and STOP to the send path (which adds
    both) and make no promise the flow does not keep (no code without a discount)."""
    for kind, flow in DEFAULT_FLOWS.items():
        for step in flow["steps"]:
            if step["type"] != "message":
                continue
            body = step["body"]
            assert set(find_unknown_tags(body)) <= {"checkout_url", "shop_url"}
            assert "STOP" not in body and "{brand}" not in body
            assert "discount_code" not in body and "%" not in body
            if kind == "abandoned_checkout":
                assert "{checkout_url}" in body


def test_update_steps_settings_holdout_and_name(api: ApiClient, shop: Shop):
    """PATCH changes what it is given and answers the flow as stored."""
    flow = _flows(api)["abandoned_checkout"]
    steps = flow["steps"]
    steps[2]["minutes"] = 720
    steps[3] = {
        "type": "message",
        "body": "Take 10% off: {discount_code} {checkout_url}",
        "discount": {"value_type": "percentage", "value": "10", "expires_after_hours": 48},
    }
    resp = api.patch(
        f"/api/flows/{flow['id']}",
        json={
            "steps": steps,
            "settings": {"exit_on_purchase": False},
            "holdout_percent": 10,
            "name": "Cart rescue",
        },
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    # Steps keep their ids; the one sent without an id, among steps with theirs, is new.
    assert body["steps"][2] == {"id": 2, "type": "wait", "minutes": 720}
    assert body["steps"][3]["discount"]["value"] == "10"
    assert body["steps"][3]["id"] >= FIRST_NEW_STEP_ID
    assert (body["settings"], body["holdout_percent"], body["name"]) == (
        {"exit_on_purchase": False},
        10,
        "Cart rescue",
    )
    db.session.expire_all()
    stored = db.session.get(Flow, flow["id"])
    assert stored.steps[2]["minutes"] == 720 and stored.holdout_percent == 10


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"steps": []}, "steps"),
        ({"steps": [{"type": "wait", "minutes": 5}]}, "steps"),
        ({"steps": [{"type": "sleep", "minutes": 5}]}, "steps[0].type"),
        (
            {"steps": [{"type": "wait", "minutes": -1}, {"type": "message", "body": "x"}]},
            "steps[0].minutes",
        ),
        ({"steps": [{"type": "message", "body": "  "}]}, "steps[0].body"),
        ({"steps": [{"type": "message", "body": "Hi {nickname}"}]}, "steps[0].body"),
        ({"steps": [{"type": "message", "body": "Back: {checkout_url}"}]}, "steps[0].body"),
        ({"steps": [{"type": "message", "body": "Code {discount_code}"}]}, "steps[0].discount"),
        (
            {
                "steps": [
                    {
                        "type": "message",
                        "body": "Code {discount_code}",
                        "discount": {"value_type": "percentage", "value": "150"},
                    }
                ]
            },
            "steps[0].discount",
        ),
        (
            {
                "steps": [
                    {
                        "type": "message",
                        "body": "No code shown",
                        "discount": {"value_type": "amount", "value": "5"},
                    }
                ]
            },
            "steps[0].body",
        ),
        ({"settings": {"trigger_on": "delivery"}}, "settings.trigger_on"),
        ({"settings": {"exit_on_purchase": "yes"}}, "settings.exit_on_purchase"),
        ({"settings": {"colour": "red"}}, "settings"),
        ({"holdout_percent": 80}, "holdout_percent"),
    ],
)
def test_invalid_changes_answer_422_and_save_nothing(api: ApiClient, shop: Shop, changes, field):
    """Each mistake is named; nothing is stored."""
    flow = _flows(api)["post_purchase"]
    resp = api.patch(f"/api/flows/{flow['id']}", json=changes)
    assert resp.status_code == 422, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid" and error["details"]["field"] == field
    db.session.expire_all()
    stored = db.session.get(Flow, flow["id"])
    assert stored.steps == flow["steps"] and stored.holdout_percent == 0


def test_enable_and_disable(api: ApiClient, shop: Shop):
    flow = _flows(api)["welcome"]
    assert api.post(f"/api/flows/{flow['id']}/enable").get_json()["enabled"] is True
    assert _flows(api)["welcome"]["enabled"] is True
    assert api.post(f"/api/flows/{flow['id']}/disable").get_json()["enabled"] is False


def test_runs_list_and_stats_per_step(api: ApiClient, shop: Shop, fake_twilio, run_jobs):
    """A welcome run that sent its first text: listed with its position, and the flow's
    results count the text under its step."""
    flow = _flows(api)["welcome"]
    api.post(f"/api/flows/{flow['id']}/enable")
    shop = flow_shop(db.session.get(Shop, shop.id))
    sub = add_subscriber(shop, PHONE)
    sub_id = sub.id
    flow_triggers.subscription_confirmed(shop, sub)
    db.session.commit()
    tick_and_send(run_jobs)

    page = api.get(f"/api/flows/{flow['id']}/runs").get_json()
    [run] = page["items"]
    assert (run["subscriber_id"], run["status"], run["step_index"]) == (sub_id, "active", 3)
    assert run["trigger_key"] == f"welcome:{sub_id}" and page["next_cursor"] is None
    assert api.get(f"/api/flows/{flow['id']}/runs?status=completed").get_json()["items"] == []
    detail = api.get(f"/api/flows/{flow['id']}").get_json()
    assert detail["stats"]["sent"] == 1 and detail["stats"]["runs"]["by_status"] == {"active": 1}
    assert [(s["step"], s["sent"]) for s in detail["stats"]["steps"]] == [(1, 1)]


def test_runs_pages(api: ApiClient, shop: Shop):
    flow_id = _flows(api)["winback"]["id"]
    shop = db.session.get(Shop, shop.id)
    subs = [add_subscriber(shop, f"+1202555{i:04d}") for i in range(5)]
    db.session.add_all(
        FlowRun(
            shop_id=shop.id, flow_id=flow_id, subscriber_id=s.id, trigger_key=f"winback:{s.id}:1"
        )
        for s in subs
    )
    db.session.commit()
    first = api.get(f"/api/flows/{flow_id}/runs?limit=3").get_json()
    second = api.get(f"/api/flows/{flow_id}/runs?limit=3&cursor={first['next_cursor']}")
    ids = [r["id"] for r in first["items"] + second.get_json()["items"]]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)


def test_openapi_documents_the_routes(client):
    paths = client.get("/api/openapi.json").get_json()["paths"]
    for path in (
        "/api/flows",
        "/api/flows/{flow_id}",
        "/api/flows/{flow_id}/enable",
        "/api/flows/{flow_id}/disable",
        "/api/flows/{flow_id}/runs",
    ):
        assert path in paths
    assert "patch" in paths["/api/flows/{flow_id}"]


def test_another_shops_flow_is_not_found_on_every_route(
    client, api: ApiClient, shop: Shop, other_shop: Shop
):
    """Every route answers 404 for a flow of another shop, and changes nothing."""
    other = ApiClient(client, other_shop.domain)
    theirs = {f["kind"]: f for f in other.get("/api/flows").get_json()["items"]}["welcome"]
    mine = _flows(api)
    assert theirs["id"] not in {f["id"] for f in mine.values()}
    fid = theirs["id"]
    for method, path, body in [
        ("get", f"/api/flows/{fid}", None),
        ("patch", f"/api/flows/{fid}", {"name": "hijacked", "enabled": True}),
        ("post", f"/api/flows/{fid}/enable", None),
        ("post", f"/api/flows/{fid}/disable", None),
        ("get", f"/api/flows/{fid}/runs", None),
    ]:
        resp = getattr(api, method)(path, json=body) if body else getattr(api, method)(path)
        assert resp.status_code == 404, (method, path)
        assert resp.get_json()["error"]["code"] == "not_found"
    db.session.expire_all()
    stored = db.session.get(Flow, fid)
    assert (stored.name, stored.enabled) == (theirs["name"], False)


def test_requires_a_session_token(client):
    assert client.get("/api/flows").status_code == 401
