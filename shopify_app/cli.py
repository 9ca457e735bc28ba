"""`flask` commands: worker, scheduler, dev (everything at once), demo data, webhook replay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from shopify_app.extensions import QUEUE_NAMES


def register(app: Flask) -> None:
    app.cli.add_command(worker_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(dev_command)
    from shopify_app.demo import demo_command
    from webhooks.cli import webhooks_cli

    app.cli.add_command(demo_command)
    app.cli.add_command(webhooks_cli)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--queue", "queues", multiple=True, help="Queues to listen on (default: all).")
@with_appcontext
def worker_command(burst: bool, queues: tuple[str, ...]) -> None:
    """Run an RQ worker for Tidings' queues."""
    from jobs.worker import make_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = make_worker(app, queues or QUEUE_NAMES)
    # with_scheduler: jobs queued for later (Retry intervals, enqueue_in) are moved onto their
    # queue by a worker's scheduler thread (one per queue, under RQ's lock); without it they
    # wait in the scheduled registry forever.
    worker.work(burst=burst, logging_level=app.config["LOG_LEVEL"], with_scheduler=True)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the periodic tick (due campaigns, flow steps, stuck sends, token refresh)."""
    from jobs.scheduler import run_forever

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    run_forever(app, app.config["SCHEDULER_INTERVAL_SECONDS"])


@click.command("dev")
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"))
@with_appcontext
def dev_command(host: str) -> None:
    """Start web, worker and scheduler together; Ctrl-C stops all of them."""
    from shopify_app.extensions import _EmbeddedRedis, redis_url

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    env = dict(os.environ)
    # One embedded Redis for the three processes (started here when REDIS_URL is unset).
    env["REDIS_URL"] = redis_url(app)
    port = str(app.config["PORT"])
    env["PORT"] = port
    flask = [sys.executable, "-m", "flask", "--app", "shopify_app:create_app"]
    procs = {
        "web": subprocess.Popen([*flask, "run", "--host", host, "--port", port], env=env),
        "worker": subprocess.Popen([*flask, "worker"], env=env),
        "scheduler": subprocess.Popen([*flask, "scheduler"], env=env),
    }
    click.echo(f"\n  Tidings is running at {app.config['APP_URL']}")
    if app.config.get("DEV_LOGIN"):
        click.echo(
            f"  Demo shop: {app.config['APP_URL']}/app?shop={app.config['DEMO_SHOP']}"
            "  (run `flask demo` first for data)"
        )
    click.echo("  Ctrl-C stops web, worker and scheduler.\n")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    click.echo(f"{name} exited with {proc.returncode}; stopping the rest", err=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.time() + 10
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
        _EmbeddedRedis.shutdown()
