"""admin.routes."""
