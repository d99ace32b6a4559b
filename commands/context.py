"""The shared state of one CLI invocation, kept in the Click context (`ctx.obj`)."""

from __future__ import annotations

from store.app import Store
from store.server import ServerLocation, locate


class CliContext:
    """Opens the server and the store lazily: `yibao --help` never starts a database."""

    def __init__(self) -> None:
        self._location: ServerLocation | None = None
        self._store: Store | None = None

    @property
    def location(self) -> ServerLocation:
        if self._location is None:
            self._location = locate()
        return self._location

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.location)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
