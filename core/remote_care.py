"""RemoteCare: 异地就医 seen from the insured region, one per settlement of a member treated at
an institution of another region.

The settlement itself (its facts, accumulators, account and postings) is the insured region's,
on its own policy (参保地政策); this aggregate only says, for each version, what the region of
treatment is owed for it (`Owed`) and when a version no longer stands (`Withdrawn`). Its events
carry everything the region of treatment needs, so the relay (app.remote_relay) reads them
alone, through a partial index, and never the settlement log.
"""

from __future__ import annotations

from typing import Any

import attrs

from core.codec import aggregate_topic
from core.events import Aggregate, Created, Event
from core.ids import remote_care_id


@attrs.frozen
class Owing:
    version: int
    treated_in: str
    fixmedins_code: str


@aggregate_topic("RemoteCare")
class RemoteCare(Aggregate):
    class Opened(Created):
        setl_id: str

    class Owed(Event):
        setl_id: str
        setl_version: int
        treated_in: str
        fixmedins_code: str
        amounts: dict[str, int]  # fund -> fen the region of treatment is owed (its hospital's due)
        posted_on: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owing = Owing(self.setl_version, self.treated_in, self.fixmedins_code)

    class Withdrawn(Event):
        setl_id: str
        setl_version: int
        treated_in: str
        fixmedins_code: str
        on_date: str

        def apply(self, aggregate: Any) -> None:
            aggregate.owing = None

    @staticmethod
    def create_id(setl_id: str) -> Any:
        return remote_care_id(setl_id)

    def __init__(self, setl_id: str) -> None:
        self.setl_id = setl_id
        self.owing: Owing | None = None

    def owe(self, version: int, treated_in: str, fixmedins_code: str, amounts: dict[str, int], posted_on: str) -> None:
        self.trigger_event(
            self.Owed, setl_id=self.setl_id, setl_version=version, treated_in=treated_in,
            fixmedins_code=fixmedins_code, amounts=amounts, posted_on=posted_on,
        )  # fmt: skip

    def withdraw(self, version: int, on_date: str) -> None:
        owing = self.owing
        if owing is None or owing.version != version:
            raise AssertionError(f"remote settlement {self.setl_id} v{version} is not owed")
        self.trigger_event(
            self.Withdrawn, setl_id=self.setl_id, setl_version=version, treated_in=owing.treated_in,
            fixmedins_code=owing.fixmedins_code, on_date=on_date,
        )  # fmt: skip


TOPICS = ("RemoteCare.Owed", "RemoteCare.Withdrawn")
