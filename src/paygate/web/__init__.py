"""The web pages (docs/dashboard.md): a static front end bundled in the package, served by `routes.py`.
The pages are clients of the documented HTTP API only; this package holds no service."""
