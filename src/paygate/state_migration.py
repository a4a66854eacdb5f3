"""`paygate-mcp import-state FILE`: open our state file (taking its lock, so never under a running
gateway), read the paygate-mcp state, plan, write in one transaction unless `--dry-run`, report.

Exit codes: 0 everything in the files is here as they say (imported now or already); 1 nothing was
imported: the paygate-mcp state is unreadable or not one, or our state file is in use by a running
gateway or is not a PayGate database; 3 the rest was imported but some items were not (each with
its reason: a conflict with what is here, or invalid).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paygate.admin.backup import DOC_CHECKS
from paygate.admin.reference_state import StateFileInvalid, read_state
from paygate.admin.state_import import StateImport, exit_code, format_text, report
from paygate.compose.doc_checks import restore_doc_checks
from paygate.config import IN_MEMORY
from paygate.store.errors import StateFileError, StoreError
from paygate.store.sqlite import MEMORY, SQLiteStore
from paygate.store.state_file import StateFileInUse

Echo = Callable[..., Any]


def run_import(source: str, target: str, *, dry_run: bool, as_json: bool, echo: Echo) -> int:
    def fail(message: str) -> int:
        if as_json:
            echo(json.dumps({"error": message, "imported": 0}))
        else:
            echo(f"error: {message}", err=True)
        return 1

    if target == IN_MEMORY:
        return fail("--state-file :memory: would import into a store that ends with this command")
    try:
        state = read_state(Path(source).expanduser())
    except StateFileInvalid as exc:
        return fail(str(exc))
    path = Path(target).expanduser()
    # a dry run against a state file that does not exist yet plans against an empty store, creating nothing
    store = SQLiteStore(MEMORY if dry_run and not path.exists() else path)
    try:
        store.open()
    except (StateFileInUse, StateFileError, OSError) as exc:
        return fail(str(exc))
    try:
        importer = StateImport(store, {**DOC_CHECKS, **restore_doc_checks(allow_private=False)})
        planned = importer.plan(state)
        if not dry_run:
            try:
                importer.apply(planned)
            except (StoreError, sqlite3.Error) as exc:  # the transaction rolled back
                return fail(f"nothing was imported: {exc}")
        result = report(state, planned, str(source), str(target), dry_run)
    finally:
        store.close()
    echo(json.dumps(result, indent=2) if as_json else format_text(result))
    return exit_code(result)
