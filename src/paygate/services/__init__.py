"""Domain services: no HTTP types in here."""
