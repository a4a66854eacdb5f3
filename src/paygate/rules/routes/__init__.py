"""The money rules' admin routers (paygate/rules, docs/money-rules.md)."""
