"""`flask webhooks replay`: run failed Shopify webhook deliveries again after a fix."""

from __future__ import annotations

import click
from flask.cli import AppGroup

webhooks_cli = AppGroup("webhooks", help="Shopify webhook deliveries.")


@webhooks_cli.command("replay")
@click.option("--id", "ids", type=int, multiple=True, help="A delivery id (repeatable).")
@click.option(
    "--malformed", is_flag=True, help="Only those that failed for good on a malformed payload."
)
@click.option("--shop", "shop_domain", help="Only this shop (its myshopify.com domain).")
@click.option("--topic", help="Only this topic, e.g. orders/create.")
@click.option("--all-failed", is_flag=True, help="Every failed delivery that kept its payload.")
def replay_command(
    ids: tuple[int, ...],
    malformed: bool,
    shop_domain: str | None,
    topic: str | None,
    all_failed: bool,
) -> None:
    """Put failed deliveries back in the queue with their attempts reset, and drain them."""
    from jobs.webhooks import replay_failed

    if not (ids or malformed or shop_domain or topic or all_failed):
        raise click.UsageError(
            "Say which deliveries: --id, --malformed, --shop, --topic, or --all-failed."
        )
    count = replay_failed(ids=ids, malformed_only=malformed, shop_domain=shop_domain, topic=topic)
    click.echo(f"{count} deliveries queued again.")
