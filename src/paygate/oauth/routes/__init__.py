"""The OAuth server's routers: metadata, clients, authorize, token (docs/auth.md)."""
