"""RegionApplication: the use cases of one pooling region, as an eventsourcing application.

It is independent of the database: `store.app` gives it a PostgreSQL recorder over the region's
own schema. Commands of the CLI call one method here each.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Mapper

from core.codec import EventMapper
from core.ids import policy_book_id
from core.policy_book import PolicyBook


class RegionApplication(Application):
    name = "yibao"

    def __init__(self, region: str, env: Any = None) -> None:
        self.region = region
        super().__init__(env)

    def construct_mapper(self) -> Mapper[Any]:
        return EventMapper()

    # --- policies -------------------------------------------------------------------------

    def record_policy(self, year: int, content_hash: str, toml_text: str) -> bool:
        """Record a policy version for this region and year; False if it is already current."""
        try:
            book: PolicyBook = self.repository.get(policy_book_id(self.region, year))
        except AggregateNotFoundError:
            book = PolicyBook(region=self.region, year=year)
        recorded = book.load(content_hash, toml_text)
        self.save(book)
        return recorded

    def policy_book(self, year: int) -> PolicyBook | None:
        try:
            return self.repository.get(policy_book_id(self.region, year))
        except AggregateNotFoundError:
            return None
