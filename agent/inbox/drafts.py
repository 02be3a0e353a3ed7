"""Draft mode (co-pilot) and shadow mode: the agent writes, a person decides.

Draft mode (AGENT_DRAFT_MODE, overridden per lead by Lead.draft_mode): the turn stores the agent's reply as
a draft (agent.turn.turn_deliver answers ManyChat with an empty body) and the lead waits for a person. The
person sends it as written (the reply itself goes out through sendContent, as the agent's), sends an edited
text (a person's message, plus a pre-filled correction candidate: the lead's message, the draft, the sent
text) or discards it. A draft moves on once: the row is locked and the move is a conditional UPDATE, so a
double click or two people get one send and a Conflict (409).

Shadow mode (AGENT_SHADOW_MODE): while a person handles a lead (a takeover), each message the lead writes
still gets what the agent would have said, written by a background task and stored as a shadow draft;
nothing is sent and the lead's message keeps its "bot silent" state.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from agent import budget
from config.enqueue import enqueue_on_commit
from config.errors import Conflict, NotFound
from leads import assignment, roles
from leads.models import DeliveryStatus, Lead, Message
from leads.selectors import users_with_permission
from leads.services import activity_record, notification_notify
from training import candidates

logger = logging.getLogger(__name__)


def lead_drafts_on(*, lead: Lead) -> bool:
    return assignment.lead_draft_mode(lead=lead)


def _require_operator(user: Any) -> None:
    if not user.has_perm(roles.PERM_CHANGE_LEAD):
        raise PermissionDenied("Your role may read drafts but not send or discard them.")


def _locked_draft(*, draft_id: int, lead: Lead | None) -> Message:
    draft = assignment.draft_lock(draft_id=draft_id)
    if draft is None or (lead is not None and draft.conversation.lead_id != lead.pk):
        raise NotFound("No such draft for this lead.", field="draft_id")
    if draft.delivery_status != DeliveryStatus.DRAFT:
        labels: dict[str, str] = {
            DeliveryStatus.DRAFT_DISCARDED: "discarded",
            DeliveryStatus.DRAFT_EDITED: "sent (edited)",
            DeliveryStatus.SHADOW: "a shadow draft, which is never sent",
        }
        label = labels.get(draft.delivery_status, "sent")
        raise Conflict(f"This draft was already {label}.", field="draft_id")
    return draft


def draft_waiting(*, lead: Lead, draft: Message) -> None:
    """A new draft: the lead waits for a person from now; the people who work leads are told once per wait."""
    with transaction.atomic():
        if not assignment.lead_mark_waiting(lead_id=lead.pk, at=draft.created_at):
            return
        notification_notify(
            recipients=users_with_permission(perm=roles.PERM_CHANGE_LEAD),
            verb="inbox.draft_waiting",
            message=f"A draft for {lead.display_name} waits for you: {draft.text}"[:500],
            target=lead,
            url=f"/dashboard/inbox/{lead.pk}/",
        )


@transaction.atomic
def inbox_draft_mode_set(*, lead: Lead, user: Any, draft_mode: bool | None) -> Lead:
    _require_operator(user)
    return assignment.lead_set_draft_mode(lead=lead, draft_mode=draft_mode, actor=user)


@transaction.atomic
def inbox_draft_send(
    *, draft_id: int, user: Any, text: str | None = None, lead: Lead | None = None
) -> Message:
    """Send a waiting draft: as written (text None or unchanged) or edited. Returns the message that goes
    out (the draft itself, or the person's message with the edited text). 409 once it moved on."""
    _require_operator(user)
    draft = _locked_draft(draft_id=draft_id, lead=lead)
    lead = draft.conversation.lead
    edited = text is not None and text.strip() != draft.text.strip()
    if not edited:
        if not assignment.draft_close(draft_id=draft.pk, status=DeliveryStatus.PENDING):
            raise Conflict("This draft was already sent.", field="draft_id")  # the UPDATE has the last word
        Lead.objects.filter(pk=lead.pk).update(waiting_since=None)
        activity_record(verb="inbox.draft_sent", lead=lead, actor=user, data={"message_id": draft.pk})
        from agent.tasks import complete_turn

        # The reply is pending like any agent reply: the turn's task sends it through sendContent once (it
        # claims the attempt), and the retry sweep covers a lost task.
        if draft.in_reply_to_id is not None:
            enqueue_on_commit(complete_turn, draft.in_reply_to_id)
        from agent.turn import turn_credit_sent_draft

        turn_credit_sent_draft(reply_id=draft.pk)
        draft.delivery_status = DeliveryStatus.PENDING
        return draft
    if not assignment.draft_close(draft_id=draft.pk, status=DeliveryStatus.DRAFT_EDITED, error="Edited."):
        raise Conflict("This draft was already sent.", field="draft_id")
    message = assignment.message_record_operator(lead=lead, text=text or "", sent_by=user, take_over=False)
    candidates.correction_candidate_create_for_draft(draft=draft, operator_message=message)
    activity_record(
        verb="inbox.draft_edited", lead=lead, actor=user, data={"message_id": draft.pk, "sent": message.pk}
    )
    from agent.inbox.tasks import deliver_operator_message

    enqueue_on_commit(deliver_operator_message, message.pk)
    return message


@transaction.atomic
def inbox_draft_discard(*, draft_id: int, user: Any, lead: Lead | None = None) -> Message:
    _require_operator(user)
    draft = _locked_draft(draft_id=draft_id, lead=lead)
    discarded = assignment.draft_close(
        draft_id=draft.pk, status=DeliveryStatus.DRAFT_DISCARDED, error=f"Discarded by {user.get_username()}."
    )
    if not discarded:
        raise Conflict("This draft was already sent.", field="draft_id")
    activity_record(
        verb="inbox.draft_discarded", lead=draft.conversation.lead, actor=user, data={"message_id": draft.pk}
    )
    draft.refresh_from_db(fields=["delivery_status", "error"])
    return draft


# --- Shadow mode ------------------------------------------------------------------------------------------


def shadow_wanted(*, lead: Lead) -> bool:
    """A person handles the lead and the team wants to see what the bot would have said."""
    return bool(settings.AGENT_SHADOW_MODE and lead.taken_over_at is not None)


def shadow_schedule(*, message_id: int) -> None:
    """Write the shadow draft for a lead's message after commit, off the webhook (a model call)."""
    from agent.inbox.tasks import write_shadow_draft

    enqueue_on_commit(
        write_shadow_draft, message_id, background=True, thread_name=f"inbox-shadow-{message_id}"
    )


def shadow_draft_write(*, message_id: int) -> Message | None:
    """The agent's answer to a lead's message, stored as a shadow draft. Safe to repeat (None)."""
    from agent import attachments, turn

    stored = turn.turn_load(message_id=message_id)
    if stored is None or stored.reply is not None or not shadow_wanted(lead=stored.lead):
        return None
    reservation = turn.turn_budget(stored=stored)  # the agent's daily caps: over one, no shadow draft
    if isinstance(reservation, budget.Refusal):
        logger.info("inbox: no shadow draft for message %s: %s", message_id, reservation.reason)
        return None
    decision = turn.turn_decide(
        lead=stored.model_lead,
        history=stored.model_history,
        text=attachments.model_text(message=stored.message),
        deadline=None,
    )
    turn.turn_budget_settle(reservation=reservation, decision=decision)
    if isinstance(decision, turn.TurnFailure):
        logger.info("inbox: no shadow draft for message %s: %s", message_id, decision.error)
        return None
    result = decision.result
    return assignment.message_record_shadow(
        inbound=stored.message,
        text=decision.reply.reply,
        prompt_version_id=decision.version.pk,
        model=result.model,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        latency_ms=result.latency_ms,
    )
