"""Error handlers: /api answers in the one error shape; everything else gets a small page."""

from __future__ import annotations

from flask import Flask, render_template_string, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError

from shopify_app.api._common import ApiError, error_response

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media",
    422: "invalid",
    429: "rate_limited",
}

_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{{ title }}</title>
<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">
<h1 style="font-size:1.4rem">{{ title }}</h1><p>{{ text }}</p></body></html>"""


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/proxy/", "/webhooks/"))


def register(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> ResponseReturnValue:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> ResponseReturnValue:
        status = exc.code or 500
        if _wants_json():
            data = getattr(exc, "data", None) or {}
            details = data.get("messages") if isinstance(data, dict) else None
            message = (data.get("message") if isinstance(data, dict) else None) or exc.description
            if status == 422 and details:
                message = "Some fields are not valid."
            return error_response(status, _CODES.get(status, "error"), message or exc.name, details)
        return render_template_string(_PAGE, title=exc.name, text=exc.description), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> ResponseReturnValue:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_response(500, "internal", "Something went wrong on our side.")
        err = InternalServerError()
        return render_template_string(_PAGE, title=err.name, text=err.description), 500
