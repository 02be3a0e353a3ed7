"""Reads of the agent: the turns the retry sweep should finish."""

from dataclasses import dataclass
from datetime import datetime, timedelta

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


def _due(*, rows: list[tuple[int, int, datetime]], now: datetime, max_attempts: int) -> set[int]:
    """Back off per message: after n attempts the next one is due AGENT_RETRY_AFTER_SECONDS x 2**n after
    the message arrived (2, 4, 8 ... minutes by default), and none after max_attempts."""
    base = settings.AGENT_RETRY_AFTER_SECONDS
    return {
        pk
        for pk, attempts, created_at in rows
        if attempts < max_attempts and created_at <= now - timedelta(seconds=base * 2**attempts)
    }


def turn_list_incomplete(*, limit: int = 100) -> IncompleteTurns:
    """The turns the sweep should finish: unanswered messages and replies still waiting for delivery.

    Only messages older than AGENT_RETRY_AFTER_SECONDS (their webhook or task had its chance) and younger
    than AGENT_RETRY_MAX_AGE_HOURS (ManyChat refuses to send past its 24-hour window). Retries are bounded
    per message (AGENT_MAX_TURN_ATTEMPTS turns, AGENT_MAX_DELIVERY_ATTEMPTS sends) and back off (_due).
    """
    from leads.models import Message, MessageRole

    now = timezone.now()
    older_than = now - timedelta(seconds=settings.AGENT_RETRY_AFTER_SECONDS)
    newer_than = now - timedelta(hours=settings.AGENT_RETRY_MAX_AGE_HOURS)
    unanswered = lead_selectors.message_turns_incomplete(
        older_than=older_than,
        newer_than=newer_than,
        max_attempts=settings.AGENT_MAX_TURN_ATTEMPTS,
        limit=limit,
    )
    undelivered = lead_selectors.message_replies_undelivered(
        older_than=older_than, newer_than=newer_than, limit=limit
    )
    if unanswered:
        rows = list(Message.objects.filter(pk__in=unanswered).values_list("pk", "attempts", "created_at"))
        due = _due(rows=rows, now=now, max_attempts=settings.AGENT_MAX_TURN_ATTEMPTS)
        unanswered = [pk for pk in unanswered if pk in due]
    if undelivered:
        rows = list(
            Message.objects.filter(in_reply_to_id__in=undelivered, role=MessageRole.AGENT).values_list(
                "in_reply_to_id", "attempts", "created_at"
            )
        )
        due = _due(rows=rows, now=now, max_attempts=settings.AGENT_MAX_DELIVERY_ATTEMPTS)
        undelivered = [pk for pk in undelivered if pk in due]
    return IncompleteTurns(unanswered=unanswered, undelivered=undelivered)
