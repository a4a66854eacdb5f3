"""reports.routes."""
