"""ContributionReceived: one contribution (征缴) to a fund, idempotent by `contrib_id`."""

from __future__ import annotations

from typing import Any

from core.codec import aggregate_topic
from core.events import Aggregate, Created
from core.ids import contribution_id
from core.ledger import Posting, check_balanced


@aggregate_topic("Contribution")
class ContributionReceived(Aggregate):
    class Received(Created):
        contribution: dict[str, Any]
        content_hash: str
        postings: list[Posting]

    @staticmethod
    def create_id(contribution: dict[str, Any], content_hash: str, postings: list[Posting]) -> Any:
        return contribution_id(contribution["contrib_id"])

    def __init__(self, contribution: dict[str, Any], content_hash: str, postings: list[Posting]) -> None:
        check_balanced(postings)
        self.contribution = contribution
        self.content_hash = content_hash
