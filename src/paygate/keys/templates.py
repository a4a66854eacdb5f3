"""Key templates: named presets for `POST /keys`, kept as documents of kind `key_template`.

A template stores only the fields its author gave; on key creation those are
defaults that explicit request fields override.
"""

from __future__ import annotations

import time
from typing import Any

from paygate.core.domain_errors import Conflict, NotFound
from paygate.keys.service import Publish, no_events
from paygate.store.base import Store

KIND = "key_template"
MAX_TEMPLATES = 100
META_FIELDS = ("name", "description", "createdAt", "updatedAt")


class TemplateNotFound(NotFound):
    pass


class TemplateService:
    def __init__(self, store: Store, publish: Publish = no_events) -> None:
        self.store = store
        self.publish = publish

    def get(self, name: str) -> dict[str, Any]:
        template = self.store.doc_get(KIND, name)
        if template is None:
            raise TemplateNotFound(f'Template "{name}" not found')
        return template

    def list(self) -> list[dict[str, Any]]:
        return sorted(self.store.doc_list(KIND), key=lambda t: str(t.get("name")))

    def count(self) -> int:
        return len(self.store.doc_items(KIND))

    def save(self, name: str, fields: dict[str, Any], actor: str) -> tuple[dict[str, Any], bool]:
        """Create or replace the template `name` (announced); returns (template, created)."""
        existing = self.store.doc_peek(KIND, name)
        if existing is None and self.count() >= MAX_TEMPLATES:
            raise Conflict(f"template limit reached ({MAX_TEMPLATES}); delete one first")
        now = time.time()
        doc = {**fields, "name": name, "createdAt": existing["createdAt"] if existing else now, "updatedAt": now}
        self.store.doc_put(KIND, name, doc)
        self.publish("template.created" if existing is None else "template.updated", actor, name=name)
        return doc, existing is None

    def delete(self, name: str, actor: str) -> None:
        if not self.store.doc_delete(KIND, name):
            raise TemplateNotFound(f'Template "{name}" not found')
        self.publish("template.deleted", actor, name=name)


def key_defaults(template: dict[str, Any]) -> dict[str, Any]:
    """The template's key fields (camelCase, as `POST /keys` names them), without its own metadata."""
    return {k: v for k, v in template.items() if k not in META_FIELDS}
