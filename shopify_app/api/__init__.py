"""The JSON API the admin page uses. Every module here that defines `blp` is registered.

Every route under /api is behind the session-token guard (shopify_app.auth.guard), which sets
`g.shop` before the view runs; views reach the shop only through `current_shop()`.
"""

from __future__ import annotations

import importlib
import pkgutil

from flask import Flask
from marshmallow import fields


def register_api(app: Flask) -> None:
    api = app.extensions["tidings_api"]
    # Money leaves the API as a string ("59.00", fields.Decimal(as_string=True)), never a float.
    api.register_field(fields.Decimal, "string", "decimal")
    api.spec.components.security_scheme(
        "sessionToken", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        blp = getattr(module, "blp", None)
        if blp is not None:
            api.register_blueprint(blp)
