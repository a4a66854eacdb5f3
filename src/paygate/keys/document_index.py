"""The in-memory indexes a service keeps over one kind of document (holds by key, due times, …).

Built from the store at startup, and rebuilt after a backup restore: a restore is the
only writer of these documents besides the service itself.
"""

from __future__ import annotations

from paygate.events.hub import Event
from paygate.store.base import Store
from paygate.store.documents import Doc


class DocumentIndex:
    kind: str  # the document kind indexed
    store: Store

    def _clear_indexes(self) -> None:
        raise NotImplementedError

    def _index(self, doc: Doc) -> None:
        raise NotImplementedError

    def reload(self) -> None:
        """Rebuild the indexes from the store."""
        self._clear_indexes()
        for _, doc in self.store.doc_items(self.kind):
            self._index(doc)

    def on_event(self, event: Event) -> None:
        if event.type == "backup.restored":
            self.reload()
