"""What the /groups and /teams routers share: name and id fields, and the update rule.

The operations themselves (and their events) are `policy/memberships.py`'s; the routers keep their
own paths, request bodies and answers (the reference shapes them differently). Not a router.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError

from paygate.api.stored_docs import error_text


def _display_name(text: str) -> str:
    # Names are unique ignoring case; trimmed, so that "Eng " cannot sit beside "Eng" as another name.
    name = text.strip()
    if not name:
        raise ValueError("name cannot be blank")
    if not name.isprintable():
        raise ValueError("name cannot contain control characters")
    return name


DocName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_display_name)]
DocId = Annotated[str, Field(min_length=1, max_length=64)]
Description = Annotated[str, Field(max_length=500)]


def check_update(body: BaseModel, id_fields: set[str]) -> None:
    """An update body must change something, and a name is never null (pydantic model validators call this)."""
    if "name" in body.model_fields_set and getattr(body, "name", None) is None:
        raise ValueError("name cannot be null")
    if not body.model_fields_set - id_fields:
        raise ValueError("nothing to update")


_STORED_META: dict[str, TypeAdapter[Any]] = {
    "name": TypeAdapter(DocName),
    "active": TypeAdapter(bool, config={"strict": True}),
}


def stored_doc_problem(model: type[BaseModel], doc_id: str, doc: dict[str, Any]) -> str | None:
    """Why a stored group or team document (e.g. from a backup) is not one the API could have written,
    or None: its `id` is the document's id, its name a DocName, and its fields pass the same request
    model the create route uses (`model`, whose aliases are the stored field names)."""
    if doc.get("id") != doc_id:
        return "id must equal the document id"
    fields = {f.alias or n for n, f in model.model_fields.items()}
    checks: list[tuple[str, Any]] = [
        (name, lambda a=adapter, name=name: a.validate_python(doc.get(name)))
        for name, adapter in _STORED_META.items()
        if name in doc or name == "name"
    ]
    checks.append(("", lambda: model.model_validate({k: v for k, v in doc.items() if k in fields})))
    for name, check in checks:
        try:
            check()
        except ValidationError as exc:
            return error_text(exc, name)
    return None
