"""Money rules (docs/money-rules.md): rules an admin sets that the gate applies before any charge."""
