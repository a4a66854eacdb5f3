"""keys.routes."""
