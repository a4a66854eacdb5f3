"""Persistence behind one protocol (`store.base.Store`)."""
