"""Admin routes of the MCP side (tasks)."""
