"""Reads of the agent: the turns the retry sweep should finish."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from leads import selectors as lead_selectors


@dataclass(frozen=True)
class IncompleteTurns:
    unanswered: list[int]  # lead messages whose turn neither answered nor gave up
    undelivered: list[int]  # lead messages whose stored reply still waits for delivery

    @property
    def message_ids(self) -> list[int]:
        return sorted(set(self.unanswered) | set(self.undelivered))

    def counts(self) -> dict[str, int]:
        return {"unanswered": len(self.unanswered), "undelivered": len(self.undelivered)}

    def __getitem__(self, key: str) -> list[int]:
        return {"unanswered": self.unanswered, "undelivered": self.undelivered}[key]


def turn_list_incomplete(*, limit: int = 100) -> IncompleteTurns:
    """The turns the sweep should finish: unanswered messages and replies still waiting for delivery.

    Only messages older than AGENT_RETRY_AFTER_SECONDS (their webhook or task had its chance) and younger
    than AGENT_RETRY_MAX_AGE_HOURS (ManyChat refuses to send past its 24-hour window).
    """
    now = timezone.now()
    older_than = now - timedelta(seconds=settings.AGENT_RETRY_AFTER_SECONDS)
    newer_than = now - timedelta(hours=settings.AGENT_RETRY_MAX_AGE_HOURS)
    return IncompleteTurns(
        unanswered=lead_selectors.message_turns_incomplete(
            older_than=older_than,
            newer_than=newer_than,
            max_attempts=settings.AGENT_MAX_TURN_ATTEMPTS,
            limit=limit,
        ),
        undelivered=lead_selectors.message_replies_undelivered(
            older_than=older_than, newer_than=newer_than, limit=limit
        ),
    )
