"""The content controls' admin routers."""
