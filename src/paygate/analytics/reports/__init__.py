"""The report definitions, by family: each module's `REPORTS` (catalog.py collects them)."""
