"""HTTP adapters: parse and validate, call a service, shape the response."""
