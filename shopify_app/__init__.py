"""Tidings: the Flask application factory. Importing this package opens no connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

from shopify_app.config import INSTANCE_DIR, PROJECT_ROOT, Settings, load_settings


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` overrides environment variables (tests pass their own)."""
    env: dict[str, Any] = dict(os.environ)
    overrides = dict(config or {})
    known = set(Settings.__dataclass_fields__) | {"TIDINGS_ENV", "FLASK_ENV"}
    env.update({k: str(v) for k, v in overrides.items() if k in known})
    settings = load_settings(env)
    settings.extra = {k: v for k, v in overrides.items() if k not in known}

    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        static_folder=str(PROJECT_ROOT / "static"),
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    app.config.from_mapping(settings.to_flask())
    app.config["SETTINGS"] = settings

    from shopify_app import logs

    if not app.config.get("TESTING"):
        logs.configure(settings.LOG_LEVEL)

    if settings.DATABASE_URL.startswith("sqlite"):
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)

    from shopify_app.api._common import RowIdConverter

    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from shopify_app import models  # noqa: F401 - every model registered on the metadata
    from shopify_app.api._common import TidingsApi
    from shopify_app.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(
        app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True, compare_type=True
    )
    # One Api per app: flask-smorest's Api remembers the app it was bound to.
    app.extensions["tidings_api"] = TidingsApi(app)


def _register_blueprints(app: Flask) -> None:
    from shopify_app import errors, health, links
    from shopify_app.admin.routes import bp as admin_bp
    from shopify_app.api import register_api
    from shopify_app.auth.guard import install_api_guard
    from shopify_app.auth.routes import bp as auth_bp
    from shopify_app.storefront.routes import bp as storefront_bp
    from webhooks.shopify import bp as shopify_webhooks_bp
    from webhooks.twilio import bp as twilio_webhooks_bp

    app.register_blueprint(health.bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(storefront_bp)
    app.register_blueprint(links.bp)
    app.register_blueprint(shopify_webhooks_bp)
    app.register_blueprint(twilio_webhooks_bp)
    install_api_guard(app)
    register_api(app)
    errors.register(app)


def _register_cli(app: Flask) -> None:
    from shopify_app.cli import register

    register(app)
