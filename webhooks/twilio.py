"""POST /webhooks/twilio/inbound and /webhooks/twilio/status: Twilio's two doors.

Every request must carry a valid X-Twilio-Signature over the public URL (built from APP_URL:
behind a proxy the Host header is not what Twilio called) and every form parameter; anything
else gets 403 before any work is done.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from shopify_app.extensions import db
from shopify_app.services import twilio_events
from webhooks.verify import twilio_public_url, verify_twilio_request

bp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")
log = logging.getLogger(__name__)


def _verified_params() -> dict[str, str] | None:
    """The form parameters when the signature is valid, else None."""
    params = request.form.to_dict(flat=True)
    url = twilio_public_url(current_app.config["APP_URL"], request.path, request.query_string)
    check = verify_twilio_request(
        current_app.config.get("TWILIO_AUTH_TOKEN", ""),
        url,
        params,
        request.headers.get("X-Twilio-Signature"),
    )
    if not check:
        log.warning("twilio request to %s refused: %s", request.path, check.reason)
        return None
    return params


def _forbidden() -> Response:
    return Response("invalid signature", status=403, mimetype="text/plain")


@bp.post("/inbound")
def inbound() -> Response:
    params = _verified_params()
    if params is None:
        return _forbidden()
    twiml = twilio_events.handle_inbound(params)
    db.session.commit()
    return Response(twiml, status=200, mimetype="text/xml")


@bp.post("/status")
def status() -> Response:
    params = _verified_params()
    if params is None:
        return _forbidden()
    twilio_events.handle_status(params)
    db.session.commit()
    return Response(status=204)
