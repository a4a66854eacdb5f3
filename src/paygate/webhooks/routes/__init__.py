"""webhooks.routes."""
