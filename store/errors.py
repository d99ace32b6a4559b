"""Named errors of the storage layer; the CLI shows them as one line and exits non-zero."""

from __future__ import annotations

from core.errors import YibaoError


class DatabaseUnavailable(YibaoError):
    reason = "database_unavailable"


class MigrationChanged(YibaoError):
    reason = "migration_changed"


class SchemaNotReady(YibaoError):
    reason = "schema_not_ready"
