"""Analytics: `/analytics` and the read-only `/admin/*` reports, computed from the store's call rollups, its
key records and its audit log (docs/analytics.md)."""
