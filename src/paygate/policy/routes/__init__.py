"""policy.routes."""
