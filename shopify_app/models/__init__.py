"""Every model, imported so metadata is complete for migrations and create_all."""

from shopify_app.models.base import Model, ShopScoped, to_decimal, utcnow
from shopify_app.models.campaign import Campaign, Variant
from shopify_app.models.checkout import Checkout
from shopify_app.models.compliance import ComplianceRequest
from shopify_app.models.discount import Discount, DiscountCode
from shopify_app.models.flow import Flow, FlowRun
from shopify_app.models.imports import ImportJob
from shopify_app.models.inbound import InboundMessage
from shopify_app.models.link import Click, Link
from shopify_app.models.message import Message
from shopify_app.models.order import Order, OrderRefund
from shopify_app.models.outbox import OutboxMessage
from shopify_app.models.segment import Segment
from shopify_app.models.shop import Shop
from shopify_app.models.subscriber import ConsentEvent, Subscriber
from shopify_app.models.webhook import WebhookDelivery

__all__ = [
    "Campaign",
    "Checkout",
    "Click",
    "ComplianceRequest",
    "ConsentEvent",
    "Discount",
    "DiscountCode",
    "Flow",
    "FlowRun",
    "ImportJob",
    "InboundMessage",
    "Link",
    "Message",
    "Model",
    "Order",
    "OrderRefund",
    "OutboxMessage",
    "Segment",
    "Shop",
    "ShopScoped",
    "Subscriber",
    "Variant",
    "WebhookDelivery",
    "to_decimal",
    "utcnow",
]
