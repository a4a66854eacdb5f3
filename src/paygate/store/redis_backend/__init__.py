"""The Redis store: one set of keys, credits, usage and documents shared by a fleet of gateways."""
