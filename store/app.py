"""The process's handle on the database: admin connection, migrations, per-region applications.

Each pooling region is its own eventsourcing application over its own PostgreSQL schema
(`region_NNNNNN`), with its own connection pool, so regions never share an event table.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresFactory
from psycopg.conninfo import conninfo_to_dict

from app.ports import Neighbours
from app.region import RegionApplication
from core.errors import UnknownRegion
from core.institution import InstitutionRegistry
from store import migrate
from store.errors import DatabaseUnavailable, SchemaNotReady
from store.migrate import SchemaStatus
from store.recorder import RegionDatastore, RegionRecorder
from store.server import ServerLocation
from store.users import Users


class RegionFactory(PostgresFactory):
    """The library's PostgreSQL factory, given a ready datastore and our recorder."""

    def __init__(self, env: Any, datastore: RegionDatastore) -> None:
        InfrastructureFactory.__init__(self, env)  # skip reading POSTGRES_* from the environment
        self.datastore = datastore

    def application_recorder(self) -> RegionRecorder:
        return RegionRecorder(self.datastore)

    def env_create_table(self) -> bool:
        return False  # tables are created by migrations, never at application start


def _postgres_application_class(base: type[RegionApplication]) -> type[RegionApplication]:
    class PostgresRegionApplication(base):  # type: ignore[valid-type, misc]
        def __init__(self, region: str, datastore: RegionDatastore) -> None:
            self._datastore = datastore
            super().__init__(region)

        def construct_factory(self, env: Any) -> RegionFactory:
            return RegionFactory(env, self._datastore)

    return PostgresRegionApplication


class Store(Neighbours):
    """Opens region applications on one server; the CLI keeps one in the Click context. Each
    region it opens reaches the others through it (`Neighbours`)."""

    pool_size = 2
    pool_max_overflow = 4

    def __init__(
        self, location: ServerLocation, application_class: type[RegionApplication] = RegionApplication
    ) -> None:
        self.location = location
        self._application_class = _postgres_application_class(application_class)
        self._apps: dict[str, RegionApplication] = {}
        self._region_codes: list[str] | None = None
        self._params = conninfo_to_dict(location.url)

    def connect_admin(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.location.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to {self.location.describe()}: {exc}") from exc

    @contextmanager
    def users(self) -> Iterator[Users]:
        """The users registry, on a connection of its own."""
        with self.connect_admin() as conn:
            yield Users(conn)

    def migrate(self) -> SchemaStatus:
        with self.connect_admin() as conn:
            return migrate.migrate(conn)

    def status(self) -> SchemaStatus:
        with self.connect_admin() as conn:
            return migrate.status(conn)

    def regions(self) -> list[str]:
        return sorted(self.status().region_versions)

    def region_codes(self) -> list[str]:
        """The regions, as of the first call of this process (bulk.batch.RegionDirectory)."""
        if self._region_codes is None:
            self._region_codes = self.regions()
        return self._region_codes

    def add_region(self, region: str) -> bool:
        self._region_codes = None
        with self.connect_admin() as conn:
            return migrate.add_region(conn, region)

    def ensure_region(self, region: str) -> RegionApplication:
        """The region's application, creating the region (schema and tables) if it is new."""
        if region not in self._apps and region not in self.regions():
            self.add_region(region)
        return self.region(region)

    def region(self, region: str) -> RegionApplication:
        app = self._apps.get(region)
        if app is not None:
            return app
        status = self.status()
        if region not in status.region_versions:
            raise UnknownRegion(f"region {region} does not exist (yibao regions add {region})")
        if status.region_versions[region] != status.latest_region or not status.global_version:
            raise SchemaNotReady("the database schema is behind this version of yibao: run `yibao db up`")
        datastore = RegionDatastore(
            dbname=self._params.get("dbname", ""),
            host=self._params.get("host", ""),
            port=self._params.get("port") or 5432,
            user=self._params.get("user", ""),
            password=self._params.get("password", ""),
            pool_size=self.pool_size,
            max_overflow=self.pool_max_overflow,
            schema=migrate.schema_name(region),
        )
        app = self._apps[region] = self._application_class(region, datastore)
        app.neighbours = self
        return app

    def registry_of(self, region: str) -> InstitutionRegistry | None:
        return self.region(region).institution_registry()

    def close(self) -> None:
        for app in self._apps.values():
            app.close()
        self._apps.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
