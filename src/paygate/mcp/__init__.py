"""The protocol side: the /mcp endpoint, client sessions, and backends."""
