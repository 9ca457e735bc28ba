"""GET/HEAD /r/<token>: a subscriber tapping a short link.

Tracking never fails the shopper: the redirect is answered even when recording the click fails.
Bots, prefetches and HEAD requests are redirected but not counted (see services/links.py).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from html import escape

from flask import Blueprint, Response, redirect, request

from shopify_app.extensions import db
from shopify_app.services import links

bp = Blueprint("links", __name__)
log = logging.getLogger(__name__)

_NOT_FOUND = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not found</title>
<style>body{{font-family:system-ui,-apple-system,sans-serif;max-width:28rem;margin:20vh auto;
padding:0 1.5rem;color:#202223;text-align:center}}h1{{font-size:1.4rem}}p{{color:#6d7175}}</style>
</head><body><h1>This link isn't working</h1>
<p>It may have expired or been typed incorrectly. {hint}</p></body></html>"""


def _not_found() -> Response:
    page = _NOT_FOUND.format(hint=escape("Check the text message and try again."))
    resp = Response(page, status=404, mimetype="text/html")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/r/<token>", methods=["GET", "HEAD"])
def follow(token: str) -> Response:
    with ExitStack() as tap:
        try:
            conn = tap.enter_context(links.tap_connection())
            link = links.resolve(token, conn)
        except Exception:  # the database is down: nothing to redirect to
            log.exception("short link lookup failed")
            db.session.rollback()
            return _not_found()
        if link is None:
            return _not_found()
        target = links.redirect_target(link)
        if request.method == "GET":
            user_agent = request.headers.get("User-Agent")
            try:
                links.record_click(
                    link,
                    ip=request.access_route[0] if request.access_route else request.remote_addr,
                    user_agent=user_agent,
                    is_bot=links.is_bot_request(user_agent, request.headers),
                    conn=conn,
                )
            except Exception:
                log.exception("could not record a click; redirecting anyway")
                db.session.rollback()
    resp = redirect(target, code=302)
    # Every tap must reach us (no caching), and the shop should not see our URL as referrer.
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp
