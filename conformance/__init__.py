"""The official MCP conformance suite, run against servers directly and through the gateway."""
