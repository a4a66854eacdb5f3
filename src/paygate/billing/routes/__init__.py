"""billing.routes."""
