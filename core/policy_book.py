"""PolicyBook: the versions of one region-year's policy, each recorded with its content hash.

The newest version is used for settlements from the moment it is loaded; every settlement
records the hash of the version it used, and any version can be read back by hash.
"""

from __future__ import annotations

from typing import Any

from core.codec import aggregate_topic
from core.events import Aggregate, Created, Event
from core.ids import policy_book_id


@aggregate_topic("PolicyBook")
class PolicyBook(Aggregate):
    class Opened(Created):
        region: str
        year: int

    class VersionLoaded(Event):
        content_hash: str
        toml_text: str

        def apply(self, aggregate: Any) -> None:
            aggregate.versions.append((self.content_hash, self.toml_text))

    @staticmethod
    def create_id(region: str, year: int) -> Any:
        return policy_book_id(region, year)

    def __init__(self, region: str, year: int) -> None:
        self.region = region
        self.year = year
        self.versions: list[tuple[str, str]] = []

    def load(self, content_hash: str, toml_text: str) -> bool:
        """Record a version; False (nothing recorded) when it is already the current one."""
        if self.versions and self.versions[-1][0] == content_hash:
            return False
        self.trigger_event(self.VersionLoaded, content_hash=content_hash, toml_text=toml_text)
        return True

    @property
    def current(self) -> tuple[str, str]:
        return self.versions[-1]

    def text_of(self, content_hash: str) -> str | None:
        for known_hash, text in self.versions:
            if known_hash == content_hash:
                return text
        return None
