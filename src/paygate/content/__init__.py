"""Content controls on the call path (docs/policy.md, "Content controls"): tools' input schemas, guardrails
and request/response transforms, each a traffic call stage (traffic/chain.py)."""
