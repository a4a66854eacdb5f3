"""Tools' input schemas (docs/policy.md#input-schema-validation): a call stage that refuses a call whose
arguments do not match its tool's JSON Schema (Draft 2020-12, the `jsonschema` library) with `-32602`
and the failing paths, before the gate, so before any charge.

Two sources: schemas an admin registers per tool (POST /admin/tools/schema; kept in the store's meta,
`content.tool_schemas`), and, when `validateBackendSchemas` is on, the `inputSchema` each tool declares
in the backend's `tools/list`. A registered schema wins over the backend's. Validators are compiled once
per schema (at registration; for a backend schema, the first time its tool is called after a tools/list).

A caller the gate would refuse anyway (no key, the tool's ACL, ...) is not told about the schema: its
call goes on to the gate, which refuses it with its own reason.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from paygate.billing.service import BillingService
from paygate.core import errors
from paygate.core.domain_errors import Invalid, NotFound, TooLarge
from paygate.core.values import iso_time
from paygate.events.hub import EventHub
from paygate.mcp import jsonrpc
from paygate.mcp.jsonrpc import Message
from paygate.store.base import Store
from paygate.store.meta_doc import MetaDoc
from paygate.traffic.chain import Proceed, ToolCall

if TYPE_CHECKING:  # jsonschema is imported when a schema is first compiled: a gateway without any never loads it
    from jsonschema import Draft202012Validator

log = logging.getLogger("paygate.content")

META_SCHEMAS = "content.tool_schemas"
MAX_SCHEMAS = 500
MAX_SCHEMA_BYTES = 64 * 1024  # one schema, serialised
MAX_TOTAL_BYTES = 4 << 20  # every schema together (one meta value, read at start and by a fleet's peers)
MAX_ERRORS = 20  # failing paths an answer lists
MAX_MESSAGE = 200  # characters of each failure's message


@dataclass(slots=True)
class Registered:
    tool: str
    schema: dict[str, Any]
    validator: Draft202012Validator
    created_at: float
    created_by: str

    def view(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "schema": self.schema,
            "createdAt": iso_time(self.created_at),
            "createdBy": self.created_by,
        }


def _local_refs_only(node: Any) -> Iterator[str]:
    """Every `$ref` / `$dynamicRef` that does not point inside the schema (the library never fetches
    them: a validation would fail on them at call time)."""
    if isinstance(node, dict):
        for name, value in node.items():
            if name in ("$ref", "$dynamicRef") and isinstance(value, str) and not value.startswith("#"):
                yield value
            else:
                yield from _local_refs_only(value)
    elif isinstance(node, list):
        for item in node:
            yield from _local_refs_only(item)


def compile_schema(schema: Any) -> Draft202012Validator:
    """A validator for an admin's schema, or Invalid saying why it is not one."""
    if not isinstance(schema, dict):
        raise Invalid("Invalid request: schema must be a JSON object")
    size = len(orjson.dumps(schema))
    if size > MAX_SCHEMA_BYTES:
        raise TooLarge(f"The schema is {size} bytes; at most {MAX_SCHEMA_BYTES}")
    if jsonrpc.too_deep(schema):
        raise Invalid(f"Invalid request: schema nested too deeply (over {jsonrpc.MAX_PARAMS_DEPTH} levels)")
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = exc.json_path if exc.json_path != "$" else "the schema"
        raise Invalid(
            f"Invalid request: schema is not a valid JSON Schema (2020-12): {where}: {exc.message}"[:400]
        ) from None
    remote = next(_local_refs_only(schema), None)
    if remote is not None:
        raise Invalid(f"Invalid request: schema: only references inside the schema are allowed, not {remote[:100]!r}")
    return Draft202012Validator(schema)


def failures(validator: Draft202012Validator, instance: Any) -> list[dict[str, str]]:
    """The first MAX_ERRORS failures as {path, message}, in the library's order, messages cut short."""
    out = []
    for error in validator.iter_errors(instance):
        out.append({"path": error.json_path, "message": error.message[:MAX_MESSAGE]})
        if len(out) >= MAX_ERRORS:
            break
    return out


class ToolSchemas:
    """The registered schemas, their admin operations (each publishes its audit event) and the call stage."""

    name = "schema"

    def __init__(
        self,
        store: Store,
        events: EventHub,
        billing: BillingService,
        refresh: Callable[[], None],
        backend_tools: Callable[[], list[dict[str, Any]]],
        validate_backend: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.events = events
        self.billing = billing
        self._refresh = refresh  # Traffic.refresh: the chain follows `enabled`
        self.backend_tools = backend_tools  # the backend's tools/list now
        self.validate_backend = validate_backend
        self.clock = clock
        self.table: dict[str, Registered] = {}
        self.rejected: Counter[str] = Counter()  # by tool label (bounded)
        self.enabled = False
        self.doc = MetaDoc(store, META_SCHEMAS)
        # tool → (the backend's inputSchema object it was compiled from, its validator or None if unusable)
        self._backend: dict[str, tuple[Any, Draft202012Validator | None]] = {}
        self._apply()

    # --- the call stage ----------------------------------------------------------------------------
    async def around(self, call: ToolCall, proceed: Proceed) -> Message:
        validator = self.validator_for(call.tool)
        arguments = call.params.get("arguments", {})
        if validator is None or not isinstance(arguments, dict):  # not a dict: the gate answers -32602 itself
            return await proceed(call)
        try:
            failed = failures(validator, arguments)
        except Exception:  # a backend schema the library cannot apply (an unresolvable $ref): not ours to judge
            log.warning("the input schema of %r could not be applied; the call is not validated", call.tool)
            return await proceed(call)
        if not failed:
            return await proceed(call)
        ctx = call.ctx
        if self.billing.check_call_access(ctx.raw_key, call.tool, ctx.client)[1] is not None:
            return await proceed(call)  # a caller the gate refuses learns nothing of the schema
        self.rejected[self.billing.metrics.tool_label(call.tool)] += 1
        first = failed[0]
        return jsonrpc.error(
            call.msg_id,
            errors.INVALID_PARAMS,
            f"Invalid arguments for tool {call.tool}: {first['path']}: {first['message']}",
            {"reason": "invalid_arguments", "tool": call.tool, "errors": failed},
        )

    def applies(self, tool: str) -> bool:
        return self.enabled and (tool in self.table or self.validate_backend)

    def validator_for(self, tool: str) -> Draft202012Validator | None:
        registered = self.table.get(tool)
        if registered is not None:
            return registered.validator
        if not self.validate_backend:
            return None
        schema = next((t.get("inputSchema") for t in self.backend_tools() if t.get("name") == tool), None)
        if not isinstance(schema, dict):
            return None
        cached = self._backend.get(tool)
        if cached is not None and cached[0] is schema:  # the same tools/list: compiled already
            return cached[1]
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(schema)
            validator: Draft202012Validator | None = Draft202012Validator(schema)
        except SchemaError as exc:
            log.warning(
                "the backend's inputSchema of %r is not a valid JSON Schema (%s): not validated", tool, exc.message
            )
            validator = None
        if len(self._backend) > 10_000:  # tools come and go on a dynamic server: never grows without bound
            self._backend.clear()
        self._backend[tool] = (schema, validator)
        return validator

    # --- admin ---------------------------------------------------------------------------------------
    def register(self, tool: str, schema: Any, actor: str) -> Registered:
        validator = compile_schema(schema)
        if tool not in self.table and len(self.table) >= MAX_SCHEMAS:
            raise TooLarge(f"At most {MAX_SCHEMAS} tool schemas")
        registered = Registered(tool, schema, validator, self.clock(), actor)
        self._save({**self.table, tool: registered})
        self.events.publish("content.schema_set", actor, tool=tool, replaced=tool in self.table)
        return registered

    def remove(self, tool: str, actor: str) -> Registered:
        registered = self.table.get(tool)
        if registered is None:
            raise NotFound(f"No schema registered for tool {tool!r}")
        self._save({k: v for k, v in self.table.items() if k != tool})
        self.events.publish("content.schema_removed", actor, tool=tool)
        return registered

    def view(self, tool: str | None = None) -> dict[str, Any]:
        if tool is not None:
            registered = self.table.get(tool)
            if registered is None:
                raise NotFound(f"No schema registered for tool {tool!r}")
            return registered.view()
        schemas = [r.view() for r in sorted(self.table.values(), key=lambda r: r.tool)]
        return {
            "schemas": schemas,
            "count": len(schemas),
            "max": MAX_SCHEMAS,
            "validateBackendSchemas": self.validate_backend,
            "rejected": sum(self.rejected.values()),
        }

    # --- persistence ---------------------------------------------------------------------------------
    def _save(self, table: dict[str, Registered]) -> None:
        stored = {
            t: {"schema": r.schema, "createdAt": r.created_at, "createdBy": r.created_by} for t, r in table.items()
        }
        if len(self.doc.encode(stored)) > MAX_TOTAL_BYTES:
            raise TooLarge(f"The tool schemas together would be over {MAX_TOTAL_BYTES} bytes")
        self.doc.write(stored)  # first: if the write fails nothing changed
        self.table = table
        self._apply()

    def _apply(self) -> None:
        on = bool(self.table) or self.validate_backend
        if on != self.enabled:
            self.enabled = on
            self._refresh()

    def reload(self) -> None:
        """Read the stored schemas again if they changed (start-up; a fleet peer's change, on a ticker)."""
        table = self.doc.read(_parse_schemas, "tool schemas", (Invalid, TooLarge))
        if table is not None:
            self.table = table
            self._apply()


class SchemaCollector(Collector):
    """`paygate_schema_rejections_total{tool}`: calls refused for arguments that did not match the schema."""

    def __init__(self, schemas: ToolSchemas) -> None:
        self.schemas = schemas

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "paygate_schema_rejections",
            "tools/call requests refused (-32602, not charged) for arguments that did not match the tool's schema",
            labels=["tool"],
        )
        for tool, n in sorted(self.schemas.rejected.items()):
            family.add_metric([tool], n)
        yield family


def _parse_schemas(stored: dict[str, Any]) -> dict[str, Registered]:
    return {
        tool: Registered(
            tool, doc["schema"], compile_schema(doc["schema"]), float(doc["createdAt"]), str(doc["createdBy"])
        )
        for tool, doc in stored.items()
    }
