"""What the /groups and /teams routers share: name and id fields, and the update rule.

The operations themselves (and their events) are `policy/memberships.py`'s; the routers keep their
own paths, request bodies and answers (the reference shapes them differently). Not a router.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field


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
