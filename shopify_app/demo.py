"""`flask demo`: a demo shop with subscribers, orders and a finished campaign (development only)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("demo")
@click.option("--subscribers", default=3000, show_default=True, type=click.IntRange(min=0))
@click.option("--orders", default=1200, show_default=True, type=click.IntRange(min=0))
@with_appcontext
def demo_command(subscribers: int, orders: int) -> None:
    """Seed the demo shop (refused in production). Set-based, for sizes up to 1 000 000
    subscribers and 5 000 000 orders (`python -m bench.segment_count` seeds with it and
    prints how long that took)."""
    if current_app.config["ENV"] == "production":
        raise click.ClickException("flask demo is for development only")
    from shopify_app.services.demo_data import seed_demo

    summary = seed_demo(current_app.config["DEMO_SHOP"], subscribers=subscribers, orders=orders)
    click.echo(summary)
