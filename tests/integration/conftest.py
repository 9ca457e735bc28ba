"""Fixtures shared by the integration tests: the Shopify Admin and Twilio stand-ins on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.conftest import API_KEY, API_SECRET
from tests.fakes.shopify_server import FakeShopify
from tests.integration.send_support import _fake_server, fake_twilio  # noqa: F401 - fixtures


@pytest.fixture(scope="module")
def _fake_shopify_server() -> Iterator[FakeShopify]:
    with FakeShopify(API_KEY, API_SECRET) as fake:
        yield fake


@pytest.fixture
def fake_shopify(app: Flask, _fake_shopify_server: FakeShopify) -> Iterator[FakeShopify]:
    """The stand-in, emptied, with the app's Admin API base URL pointing at it for one test."""
    fake = _fake_shopify_server
    fake.reset()
    previous = app.config["SHOPIFY_ADMIN_BASE_URL"]
    app.config["SHOPIFY_ADMIN_BASE_URL"] = fake.base_url_template
    try:
        yield fake
    finally:
        app.config["SHOPIFY_ADMIN_BASE_URL"] = previous
