"""Credit prompt versions with the funnel steps their leads reach.

The rule is the qualification rule (prompts.services.prompt_version_record_qualification): a step is
credited to the version whose reply came just before the lead reached it, on that version's fact row of the
reply's conversation, once per conversation and step (a partial unique index per step holds it). A lead that
skips steps (new -> booked by a booking webhook, or marked won by hand) has reached the steps before at the
same moment: "won" also credits booked, qualified and engaged where those are not credited yet. "Lost" stands
alone. The steps come from the leads' status activities, read with a cursor by the reconcile task.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from leads import selectors as lead_selectors
from leads.models import LeadStatus, Message, MessageRole
from prompts.models import FunnelCursor, FunnelStep, PromptVersionConversation
from prompts.services import prompt_version_record_reply

# The steps a lead has passed when it reaches a status.
STEPS_REACHED: dict[str, tuple[FunnelStep, ...]] = {
    LeadStatus.ENGAGED: (FunnelStep.ENGAGED,),
    LeadStatus.QUALIFIED: (FunnelStep.ENGAGED, FunnelStep.QUALIFIED),
    LeadStatus.BOOKED: (FunnelStep.ENGAGED, FunnelStep.QUALIFIED, FunnelStep.BOOKED),
    LeadStatus.CONVERTED: (FunnelStep.ENGAGED, FunnelStep.QUALIFIED, FunnelStep.BOOKED, FunnelStep.WON),
    LeadStatus.LOST: (FunnelStep.LOST,),
}
# Status changes younger than this are left for the next run: their transaction may still be committing
# behind a newer activity id, and the cursor must not step over it.
SETTLE = timedelta(seconds=60)


def funnel_step_record(*, lead_id: int, status: str, at: datetime) -> int | None:
    """Credit the steps a lead passed by reaching `status` at `at`; returns the version credited (None when no
    version had replied before, or the status is not a funnel step). Safe to repeat."""
    steps = STEPS_REACHED.get(status)
    if not steps:
        return None
    last_reply = (
        Message.objects.filter(
            conversation__lead_id=lead_id,
            role=MessageRole.AGENT,
            prompt_version__isnull=False,
            created_at__lte=at,
        )
        .order_by("-created_at", "-id")
        .only("id", "conversation_id", "prompt_version_id", "created_at")
        .first()
    )
    if last_reply is None:
        return None
    prompt_version_record_reply(message_id=last_reply.pk)  # the fact row, if its task has not run yet
    credited = {
        step
        for step in steps
        if PromptVersionConversation.objects.filter(
            conversation_id=last_reply.conversation_id, **{f"{step}_at__isnull": False}
        ).exists()
    }
    for step in steps:
        if step in credited:
            continue
        try:
            with transaction.atomic():
                PromptVersionConversation.objects.filter(
                    prompt_version_id=last_reply.prompt_version_id,
                    conversation_id=last_reply.conversation_id,
                    **{f"{step}_at__isnull": True},
                ).update(**{f"{step}_at": at})
        except IntegrityError:
            continue  # a concurrent run credited this conversation's step first
    return last_reply.prompt_version_id


def funnel_reconcile(*, limit: int = 500) -> int:
    """Credit the status changes recorded since the cursor (oldest first); returns how many were read."""
    with transaction.atomic():
        cursor, _ = FunnelCursor.objects.select_for_update().get_or_create(pk=1)
        changes = lead_selectors.lead_status_changes_after(
            after_activity_id=cursor.last_activity_id, before=timezone.now() - SETTLE, limit=limit
        )
        for change in changes:
            funnel_step_record(lead_id=change.lead_id, status=change.status, at=change.at)
        if changes:
            cursor.last_activity_id = changes[-1].activity_id
            cursor.save(update_fields=["last_activity_id"])
    return len(changes)
