"""Start and stop gunicorn for a benchmark, on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
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
