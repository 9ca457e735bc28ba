"""The app as gunicorn serves it in benchmarks, plus two bare endpoints that measure the ceiling:
the same server, the same worker count, doing nothing but answering."""

from __future__ import annotations

from flask import Response, redirect

from shopify_app import create_app

app = create_app()


@app.post("/_bench/ok")
def bare_ok() -> Response:
    return Response("ok", status=200)


@app.get("/_bench/redirect")
def bare_redirect() -> Response:
    return redirect("https://tidings-bench.myshopify.com/products/x?utm_source=tidings", code=302)
