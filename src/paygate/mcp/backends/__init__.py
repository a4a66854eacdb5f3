"""Backends: where tool calls go (a stdio process, a remote HTTP endpoint, or several)."""
