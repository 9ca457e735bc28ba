"""The receiving side of the outside world: Shopify and Twilio webhooks."""
