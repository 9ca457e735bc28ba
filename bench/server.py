"""Start and stop gunicorn for a benchmark, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

BENCH_SECRET = "bench-api-secret-0123456789abcdef0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(db_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TIDINGS_ENV": "development",
            "DEV_LOGIN": "false",
            "LOG_LEVEL": "WARNING",
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "SHOPIFY_API_KEY": "bench-key",
            "SHOPIFY_API_SECRET": BENCH_SECRET,
            "SECRET_KEY": "bench-secret-key",
            "SMS_PROVIDER": "outbox",
            "APP_URL": "http://127.0.0.1",
        }
    )
    env.update(extra)
    return env


@contextmanager
def gunicorn(env: dict[str, str], workers: int = 2) -> Iterator[int]:
    port = free_port()
    # gthread: a worker overlaps one request's database and Redis waits with another's.
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        "8",
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "--backlog",
        "2048",
        "bench.bench_app:app",
    ]
    proc = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _split_raw(raw: bytes) -> tuple[str, str, dict[str, str], bytes]:
    """A request the load generator would send, as (method, path, headers, body)."""
    head, body = raw.split(b"\r\n\r\n", 1)
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = dict(line.split(": ", 1) for line in header_lines)
    for hop in ("Host", "Connection", "Content-Length"):
        headers.pop(hop, None)
    return method, path, headers, body


def profile_request_path(
    env: dict[str, str], factory: Callable[[int], bytes], n: int, *, expect: int
) -> list[str]:
    """The request path's CPU, in this process: the WSGI app called with prepared environs (no
    sockets, no gunicorn, no test client), so it is what one request costs the app itself, by
    layer. Printed beside the load figures so a missed target comes with what holds it back."""
    from werkzeug.test import EnvironBuilder

    from bench.common import cpu_profile
    from shopify_app import create_app
    from shopify_app.extensions import db

    app = create_app(env)
    environs = []
    for i in range(n + 50):
        method, path, headers, body = _split_raw(factory(i))
        builder = EnvironBuilder(path=path, method=method, headers=headers, data=body)
        environs.append(builder.get_environ())
        builder.close()

    def one(i: int) -> None:
        statuses: list[str] = []
        body = app(environs[i], lambda status, headers, exc_info=None: statuses.append(status))
        try:
            b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        if int(statuses[0][:3]) != expect:
            raise RuntimeError(f"request {i} answered {statuses[0]}, expected {expect}")

    for i in range(n, n + 50):  # warm: pools, prepared statements, compiled-SQL caches
        one(i)
    try:
        return cpu_profile(one, n)
    finally:
        with app.app_context():
            db.engine.dispose()
