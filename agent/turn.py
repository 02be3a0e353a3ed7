"""The agent's turn: a lead's message becomes a stored reply, a delivery and a performance credit.

One pipeline, read top to bottom:

    receive → store → gate → choose the version → build the model input → call the model → guard
            → decide → apply → deliver → credit

It runs in one of two places, which differ only in where the answer goes (DeliveryChannel):

* the webhook (`turn_run_in_webhook`, sync mode), against a deadline (AGENT_REPLY_DEADLINE_SECONDS after
  the request arrived, config/arrival.py; with less than AGENT_MIN_MODEL_SECONDS left it defers at once):
  the answer is returned in the Dynamic Block body (DYNAMIC_BLOCK);
* the Celery task `agent.complete_turn` (`turn_complete`: async mode, a webhook that ran out of time, the
  retry sweep), without a deadline: the answer is pushed through ManyChat's sendContent (SEND_CONTENT).

The lead's message is committed before any model call, and each inbound message gets at most one agent
reply (a partial unique index), so a turn may be retried or raced safely. Side effects on other apps (the
prompt version's credit) are queued on commit at the end, by this module and nowhere else.

Where later steps go: a gate before the model call (`turn_gate`: takeover lock, message-burst debounce),
the version choice (`turn_prompt_version`: sticky A/B assignment), checks beside the guard (`turn_guard`:
catalog grounding), and metrics around `turn_decide` / `turn_deliver`.
"""

import hashlib
import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agent import (
    attachments,
    budget,
    contact_token,
    contract,
    credit_once,
    dedupe,
    guard,
    llm,
    manychat,
    manychat_delivery,
)
from agent.catalog.services import reply_ground
from agent.followups.rules import is_opt_out
from agent.inbox import drafts as inbox_drafts
from agent.llm import LlmError, LlmErrorKind, LlmResult
from agent.model_input import ChatMessage, model_input_build
from agent.outcomes.bookings import booking_link_for
from agent.payloads import InboundMessage
from config import metrics
from config.enqueue import enqueue_on_commit
from leads import assignment as lead_assignment
from leads import roles
from leads import selectors as lead_selectors
from leads import services as lead_services
from leads.models import (
    NEVER_SENT_STATUSES,
    Conversation,
    DeliveryStatus,
    Lead,
    LeadStatus,
    Message,
    MessageRole,
)
from prompts import tasks as prompt_tasks
from prompts.catalog.grounding import REFUSAL_NOTE_PREFIX
from prompts.catalog.selectors import catalog_version_for
from prompts.models import PromptVersion
from prompts.releases import selectors as release_selectors
from prompts.releases import services as release_services
from training.retrieval.services import example_uses_record

logger = logging.getLogger(__name__)

ManyChatBody = dict[str, Any]  # a Dynamic Block v2 body (agent.manychat builds it)
ManyChatActions = list[dict[str, Any]]


class DeliveryChannel(StrEnum):
    """Where a turn's answer goes."""

    DYNAMIC_BLOCK = "dynamic_block"  # returned in the webhook's response body
    SEND_CONTENT = "send_content"  # pushed through ManyChat's sendContent API (the task)


class TurnState(StrEnum):
    """How a turn ended (logs, tests, the task's return value)."""

    ANSWERED = "answered"  # webhook: the reply is in the response body
    DELIVERED = "delivered"  # task: sendContent accepted the reply
    REPLAYED = "replayed"  # webhook: a repeated delivery got the reply returned before
    DEFERRED = "deferred"  # webhook: handed to the task (async mode, or out of time)
    IN_PROGRESS = "in_progress"  # webhook: another attempt holds this turn
    SKIPPED = "skipped"  # the bot is paused for this lead
    SUPERSEDED = "superseded"  # a person took the lead over while the model wrote: kept, never sent
    ABSORBED = "absorbed"  # a later message of the same burst answers this one too
    BUDGET_HANDOFF = "budget_handoff"  # a daily spend cap is reached: no model call, a person takes it
    DRAFTED = "drafted"  # draft mode: the reply waits for a person in the inbox (agent/inbox/drafts.py)
    FAILED = "failed"  # the model failed: the fallback line went out (first failure only)
    UNDELIVERABLE = "undeliverable"  # ManyChat refused the reply for good
    ALREADY_DONE = "already_done"  # nothing left to do (or another worker is doing it)
    GAVE_UP = "gave_up"  # AGENT_MAX_TURN_ATTEMPTS reached
    MISSING = "missing"  # no such lead message


class TurnGate(StrEnum):
    """What the gate lets through before any model call."""

    PROCEED = "proceed"
    REPLAY = "replay"  # webhook: a repeat of a stored message
    REDELIVER = "redeliver"  # task: the reply is stored but still waits for delivery
    DEFER = "defer"  # webhook in async mode
    SKIP_PAUSED = "skip_paused"
    ALREADY_DONE = "already_done"
    GAVE_UP = "gave_up"


# --- What flows between the steps ---------------------------------------------------------------------


@dataclass(frozen=True)
class StoredInbound:
    """A lead's message as stored, with what the turn needs to answer it."""

    lead: Lead
    conversation: Conversation
    message: Message
    created: bool  # False for a repeated delivery of a message already stored
    history: Sequence[Message]  # the conversation before this message, oldest first
    reply: Message | None = None  # the reply already stored for this message, if any
    custom_fields: dict[str, Any] = field(default_factory=dict)
    # The request named this lead without its contact token (agent/contact_token.py): answered from its
    # own message alone, with no history and no known facts.
    restricted: bool = False

    @property
    def model_lead(self) -> Lead:
        return contact_token.lead_stranger(lead=self.lead) if self.restricted else self.lead

    @property
    def model_history(self) -> Sequence[Message]:
        return () if self.restricted else self.history


@dataclass(frozen=True)
class TurnDecision:
    """What the model decided, guarded, and the version that decided it."""

    version: PromptVersion
    result: LlmResult
    examples: tuple[dict[str, Any], ...] = ()  # the approved examples the model saw (training.retrieval)
    note: str = ""  # what a check refused in the model's answer, kept on the stored reply (e.g. grounding)

    @property
    def reply(self) -> contract.ModelReply:
        return self.result.decision


@dataclass(frozen=True)
class TurnFailure:
    """Why no decision came back."""

    kind: LlmErrorKind
    error: str


@dataclass(frozen=True)
class AppliedTurn:
    """The stored reply and what applying the decision changed."""

    reply: Message
    created: bool  # False when another attempt stored the reply first
    version_id: int | None
    lead_id: int
    actions: ManyChatActions
    qualified_at: datetime | None = None  # set when this turn qualified the lead
    learned: bool = False  # the turn stored lead facts or qualified the lead (ManyChat fields to write)


@dataclass(frozen=True)
class TurnOutcome:
    """How the turn ended and, for the webhook, the body to answer with."""

    state: TurnState
    body: ManyChatBody = field(default_factory=manychat.dynamic_block_empty)
    reply: Message | None = None
    # The body carries `reply`, claimed for this response: RETURNED once written (reply_confirm_returned).
    confirm: bool = False


# --- 1. Receive and 2. store ---------------------------------------------------------------------------


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _dedupe_key(*, inbound: InboundMessage, at: datetime, history: Sequence[Message] = ()) -> str:
    if inbound.message_id:
        return f"mid:{_digest(inbound.subscriber_id, inbound.message_id)}"
    # Keyed on the last reply the lead was given too: the same words after a new question are a new
    # message (agent/dedupe.py).
    return dedupe.text_dedupe_key(
        subscriber_id=inbound.subscriber_id,
        text=inbound.text,
        attachment_url=inbound.attachment_url,
        history=history,
        at=at,
    )


def inbound_store(*, inbound: InboundMessage) -> StoredInbound:
    """Write the lead, its open conversation and the message in one transaction (the lead is race-safe).

    A repeat delivery (same message_id, or same subscriber and text within AGENT_DEDUPE_WINDOW_SECONDS)
    stores nothing new and comes back with created=False and the reply already stored, if any.
    """
    at = timezone.now()
    try:
        return _inbound_store(inbound=inbound, at=at, savepoint=False)
    except IntegrityError:
        # A concurrent delivery of the same message committed first and our transaction rolled back;
        # the second pass finds that message (with the same `at`, hence the same dedupe key).
        return _inbound_store(inbound=inbound, at=at, savepoint=True)


def _inbound_store(*, inbound: InboundMessage, at: datetime, savepoint: bool) -> StoredInbound:
    with transaction.atomic():
        conversation = lead_selectors.conversation_open_for_subscriber(subscriber_id=inbound.subscriber_id)
        lead = lead_services.lead_upsert_from_manychat(
            subscriber_id=inbound.subscriber_id,
            channel=inbound.channel,
            profile=inbound.profile(),
            at=at,
            existing=conversation.lead if conversation is not None else None,
            custom_fields=inbound.custom_fields,
            defer_touch=True,
        )
        conversation = lead_services.conversation_open_or_create(
            lead=lead, channel=lead.channel, at=at, existing=conversation, defer_touch=True
        )
        conversation.lead = lead
        # Stamped with the message's insert (one statement on PostgreSQL), not by two updates of their own.
        touch = lead_services.Touch(lead_id=lead.pk, conversation_id=conversation.pk, at=at)
        history = lead_selectors.message_history(
            conversation_id=conversation.pk, limit=settings.AGENT_MAX_HISTORY_MESSAGES
        )
        if not inbound.message_id:
            earlier = dedupe.repeat_of(
                history=history, text=inbound.text, attachment_url=inbound.attachment_url, at=at
            )
            if earlier is not None:
                lead_services.inbound_touch(touch=touch)
                reply = next((m for m in history if m.in_reply_to_id == earlier.pk), None)
                return StoredInbound(lead, conversation, earlier, False, history, reply)
        message, created = lead_services.message_record_inbound(
            conversation=conversation,
            text=inbound.text,
            dedupe_key=_dedupe_key(inbound=inbound, at=at, history=history),
            savepoint=savepoint,
            attachment_url=inbound.attachment_url,
            attachment_kind=inbound.attachment_kind,
            touch=touch,
        )
        reply = None if created else lead_selectors.message_agent_reply(inbound_id=message.pk)
        if created and is_opt_out(text=inbound.text, words=settings.FOLLOWUP_OPT_OUT_WORDS):
            # "stop": no follow-up ever again (agent/followups); a write only for such a message.
            lead_services.lead_record_followup_opt_out(lead_id=lead.pk, message_id=message.pk, at=at)
        restricted = contact_token.contact_token_turn(
            lead=lead, presented=inbound.contact_token, message=message
        )
    return StoredInbound(lead, conversation, message, created, history, reply, restricted=restricted)


def turn_load(*, message_id: int) -> StoredInbound | None:
    """The task's receive: a stored lead message with its history and the reply stored for it, if any."""
    message = lead_selectors.message_get_inbound(message_id=message_id)
    if message is None:
        return None
    history = lead_selectors.message_history(
        conversation_id=message.conversation_id,
        limit=settings.AGENT_MAX_HISTORY_MESSAGES,
        before_id=message.pk,
    )
    return StoredInbound(
        lead=message.conversation.lead,
        conversation=message.conversation,
        message=message,
        created=False,
        history=history,
        reply=lead_selectors.message_agent_reply(inbound_id=message.pk),
        restricted=contact_token.contact_token_refused_for(
            lead=message.conversation.lead, message_id=message.pk
        ),
    )


# --- 3. Gate -------------------------------------------------------------------------------------------


def turn_gate(*, stored: StoredInbound, channel: DeliveryChannel) -> TurnGate:
    """Whether this turn goes to the model. Later gates (takeover lock, burst debounce) go here."""
    if channel is DeliveryChannel.DYNAMIC_BLOCK:
        if not stored.created:
            return TurnGate.REPLAY
    else:
        if stored.reply is not None:
            pending = stored.reply.delivery_status == DeliveryStatus.PENDING
            return TurnGate.REDELIVER if pending else TurnGate.ALREADY_DONE
        if stored.message.delivery_status in (DeliveryStatus.ANSWERED, DeliveryStatus.SKIPPED):
            return TurnGate.ALREADY_DONE
        if stored.message.attempts >= settings.AGENT_MAX_TURN_ATTEMPTS:
            return TurnGate.GAVE_UP
    if stored.lead.bot_paused:
        return TurnGate.SKIP_PAUSED
    if channel is DeliveryChannel.DYNAMIC_BLOCK and settings.AGENT_ASYNC_MODE:
        return TurnGate.DEFER
    return TurnGate.PROCEED


def turn_skip_flood(*, stored: StoredInbound) -> None:
    """Past AGENT_WEBHOOK_RATE_LIMIT (red team D12): the message is stored and stays in the conversation,
    where the next turn reads it, but gets no model call of its own."""
    lead_services.message_set_delivery(
        message_id=stored.message.pk,
        status=DeliveryStatus.SKIPPED,
        error="Over AGENT_WEBHOOK_RATE_LIMIT: kept in the conversation, not answered on its own.",
    )


def turn_skip_paused(*, inbound: Message, lead: Lead) -> None:
    """The bot is paused: record it, and tell the people who handle the lead that the lead wrote."""
    lead_services.message_set_delivery(
        message_id=inbound.pk, status=DeliveryStatus.SKIPPED, error="The bot is paused for this lead."
    )
    if inbox_drafts.shadow_wanted(lead=lead):
        inbox_drafts.shadow_schedule(message_id=inbound.pk)  # what the bot would have said, never sent
    with transaction.atomic():
        lead_services.activity_record(
            verb="agent.skipped_paused",
            lead=lead,
            data={"message_id": inbound.pk, "reason": lead.handoff_reason},
        )
        # The inbox: the lead waits for a person from this message; people are told once per wait.
        if not lead_assignment.lead_mark_waiting(lead_id=lead.pk, at=inbound.created_at):
            return
        lead_services.notification_notify(
            recipients=lead_selectors.users_with_permission(perm=roles.PERM_CHANGE_LEAD),
            verb="lead.message_while_paused",
            message=f"{lead.display_name} wrote while the bot is paused: {inbound.text}"[:500],
            target=lead,
            url=f"/dashboard/leads/{lead.pk}/",
        )


# --- 3a. Spend caps (agent/budget.py) -------------------------------------------------------------------


def turn_budget(*, stored: StoredInbound) -> budget.Reservation | budget.Refusal:
    """Reserve the model call's estimate on today's caps (overall and this lead's): cache counters, no SQL
    statement once the day's counters exist. A Refusal names the cap reached."""
    try:
        return budget.budget_reserve(purpose=budget.Purpose.AGENT, lead_id=stored.lead.pk)
    except budget.BudgetExceeded as exc:
        return exc.refusal


def turn_budget_settle(*, reservation: budget.Reservation, decision: "TurnDecision | TurnFailure") -> None:
    """The reservation becomes what the call used (given back when the model did not answer)."""
    if isinstance(decision, TurnDecision):
        result = decision.result
        budget.budget_settle(
            reservation=reservation,
            model=result.model,
            prompt_tokens=result.prompt_tokens or 0,
            completion_tokens=result.completion_tokens or 0,
        )
    else:
        budget.budget_release(reservation=reservation)


def turn_budget_handoff(
    *, stored: StoredInbound, refusal: budget.Refusal, channel: DeliveryChannel
) -> TurnOutcome:
    """A daily cap is reached: no model call. The lead is handed to a person with the cap as the reason (the
    bot paused, the lead waiting, the people who handle leads notified) and gets AGENT_BUDGET_HANDOFF_TEXT:
    in the webhook's body, or through sendContent from the task."""
    inbound, lead, reason = stored.message, stored.lead, refusal.reason
    lead_services.message_set_delivery(
        message_id=inbound.pk, status=DeliveryStatus.SKIPPED, error=reason[:500]
    )
    with transaction.atomic():
        lead_services.activity_record(
            verb="agent.budget_cap",
            lead=lead,
            data={"message_id": inbound.pk, "reason": reason, "cap": refusal.cap.setting},
        )
        lead_services.lead_flag_for_human(
            lead=lead, reason=reason, pause_bot=True, verb="agent.budget_handoff"
        )
        lead_assignment.lead_mark_waiting(lead_id=lead.pk, at=inbound.created_at)
    metrics.record_handoff(reason="budget_cap")
    logger.warning("agent: %s (message %s handed to a person)", reason, inbound.pk)
    return turn_deliver_line(
        stored=stored,
        text=settings.AGENT_BUDGET_HANDOFF_TEXT,
        channel=channel,
        model="budget",
        state=TurnState.BUDGET_HANDOFF,
    )


# --- 3b. Message bursts ------------------------------------------------------------------------------


def turn_burst_wait(*, stored: StoredInbound, window: float) -> StoredInbound | None:
    """Wait out the burst window (AGENT_BURST_WINDOW_SECONDS after this message arrived).

    None when a later message from the lead arrived meanwhile: this one is marked answered and the
    later message's turn answers all of them with one model call. Otherwise the stored turn with its
    history read again, so it holds every message of the burst in order. The window is read from the
    message rows, so it holds across processes and workers. A window of 0 skips the step.
    """
    if window <= 0:
        return stored
    message = stored.message
    until = message.created_at + timedelta(seconds=window)
    while True:
        if lead_assignment.message_newer_inbound_exists(
            message_id=message.pk, conversation_id=message.conversation_id
        ):
            lead_assignment.message_absorb_into_burst(message_id=message.pk)
            return None
        remaining = (until - timezone.now()).total_seconds()
        if remaining <= 0:
            break
        time.sleep(min(remaining, 0.2))
    history = lead_selectors.message_history(
        conversation_id=message.conversation_id,
        limit=settings.AGENT_MAX_HISTORY_MESSAGES,
        before_id=message.pk,
    )
    return replace(stored, history=history)


# --- 4. Choose the version ---------------------------------------------------------------------------


def turn_prompt_version(*, lead: Lead) -> PromptVersion | None:
    """The prompt version that answers this lead: the active one, or, while an experiment runs
    (prompts.releases), the arm a hash of the lead and the experiment puts it in: the same version for the
    whole thread, on every worker and after a restart (its one write is the lead's assignment fact row).

    None when no version is active: the agent never guesses.
    """
    return release_services.release_version_for_lead(lead_id=lead.pk, lead_key=lead.manychat_subscriber_id)


# --- 5. Build the model input, 6. call the model, 7. guard, 8. decide -------------------------------------


def turn_model_input(
    *,
    version: PromptVersion,
    lead: Lead,
    history: Sequence[Message],
    text: str,
    examples_out: list[dict[str, Any]] | None = None,
) -> list[ChatMessage]:
    return model_input_build(
        prompt=version.content,
        lead=lead,
        history=history,
        text=text,
        examples_out=examples_out,
        catalog_version=catalog_version_for(prompt_version=version),
    )


def _connection_release() -> None:
    """While the model writes (seconds), the thread's database connection goes back to the pool (the next
    statement takes one again). A web thread then holds a connection for milliseconds, not for the whole
    model call, so hundreds of threads waiting on the model share a pool of a few dozen connections
    (config/gunicorn.conf.py). Not inside a transaction, and not without a pool (it would reconnect)."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


def turn_call(
    *, messages: list[ChatMessage], deadline: float | None, version: PromptVersion | None = None
) -> LlmResult:
    """One model call within the deadline (a time.monotonic() instant) with the version's model settings;
    raises LlmError. A parameter the model rejected is flagged on the version, so later calls skip it."""
    if version is None:
        return llm.llm_complete(messages=messages, deadline=deadline)
    model = release_selectors.version_model_settings(version=version)
    _connection_release()
    started = time.monotonic()
    try:
        result = llm.llm_complete(
            messages=messages, deadline=deadline, model=model.model, params=model.params()
        )
    except LlmError as exc:
        metrics.record_model_call(model=model.model, seconds=time.monotonic() - started, error_kind=exc.kind)
        raise
    metrics.record_model_call(model=result.model or model.model, seconds=time.monotonic() - started)
    if result.dropped_params:
        release_services.version_flag_unsupported_params(
            version_id=version.pk, params=list(result.dropped_params)
        )
    return result


def turn_guard(*, result: LlmResult, version: PromptVersion) -> LlmResult:
    """The output filter: a reply that leaks is refused. Other checks on the answer go beside it."""
    return guard.result_guard(result=result, prompt=version.content)


def turn_ground(
    *, result: LlmResult, version: PromptVersion, history: Sequence[Message], text: str
) -> tuple[LlmResult, str]:
    """Every price, amount, date, link and phone in the reply must be in the version's catalog (or be the
    lead's own words repeated back). Otherwise the lead gets the safe line and a person, and the returned
    note names what was refused; ("", "") means nothing to refuse."""
    lead_words = [m.text for m in history if m.role == MessageRole.LEAD][-10:] + [text]
    grounding = reply_ground(reply=result.decision.reply, prompt_version=version, context_texts=lead_words)
    if grounding.ok:
        return result, ""
    note = f"{REFUSAL_NOTE_PREFIX}{grounding.describe()}"[:500]
    logger.warning("agent: refused a reply with %s ungrounded fact(s)", len(grounding.ungrounded))
    refused = contract.ModelReply(
        reply=settings.AGENT_GROUNDING_SAFE_TEXT,
        handoff=True,
        handoff_reason=f"The agent's reply stated facts not in the catalog: {grounding.describe()}",
    )
    return replace(result, decision=refused), note


def turn_decide(
    *,
    lead: Lead,
    history: Sequence[Message],
    text: str,
    deadline: float | None,
    version: PromptVersion | None = None,
) -> TurnDecision | TurnFailure:
    """Steps 4 to 8, with no write: the version, its model input, the call and the guard.

    Anything that needs the agent's answer to a transcript without storing it (the evaluation, a
    rehearsal) calls this; a rehearsal passes the `version` under test instead of the lead's own.
    """
    version = version or turn_prompt_version(lead=lead)
    if version is None:
        return TurnFailure(kind=LlmErrorKind.NO_PROMPT, error="no prompt version is active")
    shown: list[dict[str, Any]] = []
    messages = turn_model_input(version=version, lead=lead, history=history, text=text, examples_out=shown)
    try:
        result = turn_call(messages=messages, deadline=deadline, version=version)
    except LlmError as exc:
        return TurnFailure(kind=exc.kind, error=str(exc))
    result, grounding_note = turn_ground(
        result=turn_guard(result=result, version=version), version=version, history=history, text=text
    )
    return TurnDecision(version=version, result=result, examples=tuple(shown), note=grounding_note)


# --- 9. Apply --------------------------------------------------------------------------------------------


def _qualifies(*, decision: contract.ModelReply, lead: Lead) -> bool:
    return decision.qualified and lead.status in (LeadStatus.NEW, LeadStatus.ENGAGED)


def turn_engages(*, lead: Lead, history: Sequence[Message]) -> bool:
    """The funnel's first step: a new lead who writes again after the agent answered it is engaged (once;
    credited like every step to the version whose reply came just before, prompts.funnel)."""
    return lead.status == LeadStatus.NEW and any(
        m.role == MessageRole.AGENT and m.delivery_status not in NEVER_SENT_STATUSES for m in history
    )


def _reply_text(*, answer: contract.ModelReply, lead: Lead) -> str:
    """The reply, with the team's booking link (carrying the subscriber) when this turn qualifies the lead."""
    link = (
        booking_link_for(subscriber_id=lead.manychat_subscriber_id)
        if _qualifies(decision=answer, lead=lead)
        else ""
    )
    if not link or link in answer.reply:
        return answer.reply
    return f"{answer.reply}\n\n{settings.AGENT_BOOKING_TEXT.format(link=link)}".strip()


def turn_apply(
    *,
    inbound: Message,
    lead: Lead,
    decision: TurnDecision,
    channel: DeliveryChannel,
    engaged: bool = False,
) -> AppliedTurn:
    """Store the reply and what the model decided (qualified, facts, handoff) together; `engaged` moves a new
    lead to engaged in the same transaction (turn_engages)."""
    answer, result = decision.reply, decision.result
    # Pending in both places: a reply returned in the webhook body becomes RETURNED only once the server has
    # written it to ManyChat (reply_confirm_returned, config.confirm); until then the sweep may send it.
    status = DeliveryStatus.DRAFT if lead_assignment.lead_draft_mode(lead=lead) else DeliveryStatus.PENDING
    qualified_at = None
    qualifies = _qualifies(decision=answer, lead=lead)
    has_effects = bool(answer.lead_fields) or answer.handoff or qualifies or engaged
    # The webhook carries a plain reply in its own body: stored already claimed for it (or superseded if a
    # person took the lead over meanwhile), in the insert's statement: no claim and no takeover check after.
    born_claimed = (
        channel is DeliveryChannel.DYNAMIC_BLOCK and status == DeliveryStatus.PENDING and not has_effects
    )
    # Without effects the reply's own insert is the whole write: no outer transaction (two statements less).
    with transaction.atomic() if has_effects else nullcontext():
        reply, created = lead_services.message_record_agent_reply(
            inbound=inbound,
            text=_reply_text(answer=answer, lead=lead),
            prompt_version_id=decision.version.pk,
            delivery_status=status,
            model=result.model,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_ms,
            error=decision.note,
            claim_for_lead_id=lead.pk if born_claimed else None,
        )
        if not created:
            return AppliedTurn(reply=reply, created=False, version_id=None, lead_id=lead.pk, actions=[])
        try:
            example_uses_record(message_id=reply.pk, examples=decision.examples)
        except Exception:
            if born_claimed:  # this body will not carry it: pending again, so the sweep delivers it
                reply_release(message_id=reply.pk)
            raise
        metrics.record_tokens(
            model=result.model,
            prompt_version=decision.version.version,
            prompt_tokens=result.prompt_tokens or 0,
            completion_tokens=result.completion_tokens or 0,
        )
        if answer.lead_fields:
            lead_services.lead_merge_qualification_data(lead=lead, fields=dict(answer.lead_fields))
        if engaged and not qualifies:  # a qualification passes the engaged step at the same moment
            updated = lead_services.lead_set_status(
                lead=lead, status=LeadStatus.ENGAGED, reason="The lead wrote back after the agent's reply."
            )
            lead.status = updated.status
        if qualifies:
            updated = lead_services.lead_set_status(
                lead=lead, status=LeadStatus.QUALIFIED, reason="The agent found the lead qualified."
            )
            lead.status = updated.status
            qualified_at = timezone.now()
        if answer.handoff:
            lead_services.lead_flag_for_human(
                lead=lead, reason=answer.handoff_reason or "The agent asked for a person.", pause_bot=True
            )
            metrics.record_handoff(reason="refused_fact" if decision.note else "agent")
    return AppliedTurn(
        reply=reply,
        created=True,
        version_id=decision.version.pk,
        lead_id=lead.pk,
        actions=manychat.actions_for_turn(qualified=answer.qualified, handoff=answer.handoff),
        qualified_at=qualified_at,
        learned=bool(answer.lead_fields) or qualified_at is not None,
    )


def turn_fail(*, stored: StoredInbound, failure: TurnFailure) -> str:
    """Record a failed turn, flag the lead; returns the fallback line to send (first failure only) or ''."""
    inbound, lead = stored.message, stored.lead
    attempts = lead_services.message_record_turn_failure(message_id=inbound.pk, error=failure.error)
    lead_services.activity_record(
        verb="agent.turn_failed",
        lead=lead,
        data={"message_id": inbound.pk, "error": failure.error[:500], "attempt": attempts},
    )
    lead_services.lead_flag_for_human(
        lead=lead,
        reason=f"The agent could not answer: {failure.error}"[:500],
        pause_bot=False,
        verb="agent.needs_human",
    )
    logger.warning("agent turn failed for message %s (attempt %s): %s", inbound.pk, attempts, failure.error)
    return settings.AGENT_FALLBACK_TEXT if attempts == 1 else ""


# --- 9b. Takeover lock -------------------------------------------------------------------------------------


def turn_supersede(*, applied: AppliedTurn, decision: TurnDecision) -> bool:
    """A person took the lead over while the model was writing: the reply is kept, marked, never sent.

    A handoff decided by this very turn pauses the bot but takes nothing over, so its reply still goes out.
    """
    if not applied.created or decision.reply.handoff:
        return False
    if applied.reply.delivery_status in (DeliveryStatus.UNKNOWN, DeliveryStatus.SUPERSEDED):
        # Stored claimed for the webhook's body: the takeover was checked by the insert itself (turn_apply).
        return applied.reply.delivery_status == DeliveryStatus.SUPERSEDED
    return lead_assignment.message_supersede_if_taken_over(
        message_id=applied.reply.pk, lead_id=applied.lead_id
    )


# --- 10. Deliver -----------------------------------------------------------------------------------------


class DeliveryRetryable(Exception):
    """sendContent failed in a way worth retrying (429, 5xx, network); the reply stays pending."""


def turn_defer(*, message_id: int) -> None:
    """Hand a turn to the `agent.complete_turn` task once the current transaction commits.

    Without a broker it runs in a background thread (a turn in the request would blow ManyChat's 10 s
    window); if the process dies first, the retry sweep (`agent.retry_incomplete_turns`) picks it up. A
    broker outage is not raised: the webhook would send the fallback line too and answer the lead twice.
    """
    from agent.tasks import complete_turn

    enqueue_on_commit(complete_turn, message_id, background=True, thread_name=f"agent-turn-{message_id}")


def _holding_body(*, stored: StoredInbound) -> ManyChatBody:
    text = settings.AGENT_HOLDING_TEXT
    if not text:
        return manychat.dynamic_block_empty()
    lead_services.message_record_outbound(
        conversation_id=stored.conversation.pk,
        text=text,
        delivery_status=DeliveryStatus.RETURNED,
        model="holding",
    )
    return manychat.dynamic_block_build(channel=stored.lead.channel, text=text)


def _reply_wait(*, stored: StoredInbound, until: float) -> Message | None:
    """The inbound message's agent reply, waiting until `until` (monotonic) for an attempt still running."""
    while True:
        reply = Message.objects.filter(in_reply_to_id=stored.message.pk, role=MessageRole.AGENT).first()
        in_flight = reply is not None and reply.delivery_status == DeliveryStatus.UNKNOWN
        if (reply is not None and not in_flight) or time.monotonic() >= until:
            return reply
        time.sleep(0.2)


def turn_replay(*, stored: StoredInbound, until: float | None = None) -> TurnOutcome:
    """A repeated delivery (ManyChat gave up on an attempt and asked again).

    A reply already written to ManyChat is replayed. Otherwise wait (until `until`) for the attempt still
    running, and carry its reply in this response if this response wins the reply's delivery claim (the
    first attempt, the task and the sweep claim it too, so only one of them sends it). Silent when another
    one holds it or the turn went to the task: they deliver it.
    """
    reply = stored.reply
    if until is not None and (reply is None or reply.delivery_status == DeliveryStatus.UNKNOWN):
        reply = _reply_wait(stored=stored, until=until)
    if reply is not None and reply.delivery_status == DeliveryStatus.RETURNED:
        body = manychat.dynamic_block_build(channel=stored.lead.channel, text=reply.text)
        return TurnOutcome(state=TurnState.REPLAYED, body=body, reply=reply)
    if (
        reply is not None
        and reply.delivery_status == DeliveryStatus.PENDING
        and lead_services.message_claim_delivery(message_id=reply.pk, attempts=reply.attempts)
    ):
        body = manychat.dynamic_block_build(channel=stored.lead.channel, text=reply.text)
        return TurnOutcome(state=TurnState.REPLAYED, body=body, reply=reply, confirm=True)
    return TurnOutcome(state=TurnState.IN_PROGRESS, reply=reply)


def reply_confirm_returned(*, message_id: int) -> bool:
    """The server wrote the webhook body carrying this (claimed) reply: it reached ManyChat."""
    confirmed = Message.objects.filter(
        pk=message_id, delivery_status__in=[DeliveryStatus.UNKNOWN, DeliveryStatus.PENDING]
    ).update(delivery_status=DeliveryStatus.RETURNED)
    return bool(confirmed)


def reply_release(*, message_id: int) -> bool:
    """The webhook body carrying this claimed reply was not written (ManyChat had gone): pending again, so
    a retry of the message or the sweep (through sendContent) delivers it."""
    released = Message.objects.filter(pk=message_id, delivery_status=DeliveryStatus.UNKNOWN).update(
        delivery_status=DeliveryStatus.PENDING
    )
    return bool(released)


def reply_deliver(*, reply: Message, lead: Lead, actions: ManyChatActions | None = None) -> DeliveryStatus:
    """Push a stored, pending reply through sendContent. Returns the reply's delivery status afterwards.

    The attempt is claimed first, so two tasks racing on one reply (a retry and the sweep) send it once.
    """
    if not lead_services.message_claim_delivery(message_id=reply.pk, attempts=reply.attempts):
        return DeliveryStatus.PENDING  # another worker holds this attempt
    data = manychat.dynamic_block_build(channel=lead.channel, text=reply.text, actions=actions)
    try:
        manychat.manychat_send_content(subscriber_id=lead.manychat_subscriber_id, data=data)
    except manychat.ManyChatError as exc:
        # Refused (token, window, 3021/3031, 304X, error with 200): undeliverable, the lead flagged, admins
        # alerted once per cause. No answer after sending: "unknown", never resent. Else pending, retried.
        status = manychat_delivery.delivery_failure_record(message_id=reply.pk, lead=lead, error=exc)
        if status == DeliveryStatus.PENDING:
            raise DeliveryRetryable(str(exc)) from exc
        return status
    lead_services.message_set_delivery(message_id=reply.pk, status=DeliveryStatus.SENT)
    return DeliveryStatus.SENT


def _sent_state(status: DeliveryStatus) -> TurnState:
    if status == DeliveryStatus.SENT:
        return TurnState.DELIVERED
    if status == DeliveryStatus.PENDING:
        return TurnState.ALREADY_DONE  # another worker holds the attempt
    return TurnState.UNDELIVERABLE


def turn_deliver(*, applied: AppliedTurn, lead: Lead, channel: DeliveryChannel) -> TurnOutcome:
    """The one step where the two places differ: the answer goes back in the body, or out by sendContent."""
    if applied.created and applied.reply.delivery_status == DeliveryStatus.DRAFT:
        # Draft mode: a person sends, edits or discards it in the inbox; ManyChat gets an empty answer.
        inbox_drafts.draft_waiting(lead=lead, draft=applied.reply)
        return TurnOutcome(state=TurnState.DRAFTED, reply=applied.reply)
    if channel is DeliveryChannel.DYNAMIC_BLOCK:
        if not applied.created:
            # The retry sweep answered first (a very slow request); it delivers its own reply.
            return TurnOutcome(state=TurnState.IN_PROGRESS, reply=applied.reply)
        born_claimed = applied.reply.delivery_status == DeliveryStatus.UNKNOWN  # by turn_apply, for this body
        if not born_claimed and not lead_services.message_claim_delivery(
            message_id=applied.reply.pk, attempts=applied.reply.attempts
        ):
            # A retry of this message already carries it (turn_replay).
            return TurnOutcome(state=TurnState.IN_PROGRESS, reply=applied.reply)
        body = manychat.dynamic_block_build(
            channel=lead.channel, text=applied.reply.text, actions=applied.actions
        )
        metrics.record_delivery(status=DeliveryStatus.RETURNED)
        return TurnOutcome(state=TurnState.ANSWERED, body=body, reply=applied.reply, confirm=True)
    if not applied.created and applied.reply.delivery_status != DeliveryStatus.PENDING:
        return TurnOutcome(state=TurnState.ALREADY_DONE, reply=applied.reply)
    status = reply_deliver(reply=applied.reply, lead=lead, actions=applied.actions)
    metrics.record_delivery(status=status)
    return TurnOutcome(state=_sent_state(status), reply=applied.reply)


def turn_deliver_line(
    *, stored: StoredInbound, text: str, channel: DeliveryChannel, model: str, state: TurnState
) -> TurnOutcome:
    """A fixed line instead of the model's reply (a failure's fallback, a budget handoff; nothing when
    empty), stored as an outbound message marked with `model` and sent through the turn's channel."""
    lead = stored.lead
    if channel is DeliveryChannel.DYNAMIC_BLOCK:
        if text:
            lead_services.message_record_outbound(
                conversation_id=stored.conversation.pk,
                text=text,
                delivery_status=DeliveryStatus.RETURNED,
                model=model,
            )
        body = manychat.dynamic_block_build(channel=lead.channel, text=text)
        return TurnOutcome(state=state, body=body)
    if text:
        outbound = lead_services.message_record_outbound(
            conversation_id=stored.conversation.pk,
            text=text,
            delivery_status=DeliveryStatus.PENDING,
            model=model,
        )
        try:
            reply_deliver(reply=outbound, lead=lead)
        except DeliveryRetryable:
            # The line is a courtesy; a failed turn itself is retried by the sweep.
            lead_services.message_set_delivery(message_id=outbound.pk, status=DeliveryStatus.UNDELIVERABLE)
    return TurnOutcome(state=state)


def turn_deliver_fallback(*, stored: StoredInbound, text: str, channel: DeliveryChannel) -> TurnOutcome:
    """A failed turn's fallback line (empty after the first failure), through the turn's channel."""
    return turn_deliver_line(
        stored=stored, text=text, channel=channel, model="fallback", state=TurnState.FAILED
    )


def webhook_fallback_body(*, channel: str) -> ManyChatBody:
    """What the webhook answers when something broke after the message was stored."""
    return manychat.dynamic_block_build(channel=channel, text=settings.AGENT_FALLBACK_TEXT)


# --- 11. Credit --------------------------------------------------------------------------------------------


def turn_credit(*, applied: AppliedTurn) -> None:
    """Credit the version that wrote the reply (and the qualification it made), once the reply commits.

    The prompts tasks are idempotent and the beat's reconcile credits whatever a lost task missed;
    qualifications made by hand (dashboard, API) are pulled by that reconcile from leads' selectors.
    """
    if not applied.created or applied.version_id is None:
        return
    # Once per (version, conversation) and release in this process: later replies add nothing the figures
    # read, and skip the broker round trip (agent/credit_once.py).
    if credit_once.credit_needed(
        version_id=applied.version_id, conversation_id=applied.reply.conversation_id
    ):
        enqueue_on_commit(prompt_tasks.record_reply, applied.reply.pk)
    if applied.learned:
        manychat_delivery.lead_learned_sync(
            lead_id=applied.lead_id, qualified=applied.qualified_at is not None
        )
    if applied.qualified_at is not None:
        enqueue_on_commit(
            prompt_tasks.record_qualification, applied.lead_id, applied.qualified_at.isoformat()
        )


def turn_credit_sent_draft(*, reply_id: int) -> None:
    """A draft sent as written is credited to the version that wrote it now that the lead gets it (drafts and
    shadow drafts are not credited before: prompts.services); on commit, like every credit."""
    enqueue_on_commit(prompt_tasks.record_reply, reply_id)


def turn_voice_fallback(
    *, stored: StoredInbound, step: attachments.AttachmentStep, channel: DeliveryChannel
) -> TurnOutcome:
    """A voice note the agent cannot hear: ask for text (AGENT_VOICE_ASK_TEXT) or hand it to a person."""
    returned = channel is DeliveryChannel.DYNAMIC_BLOCK
    status = DeliveryStatus.RETURNED if returned else DeliveryStatus.PENDING
    asked = attachments.voice_fallback(
        message=stored.message, lead=stored.lead, step=step, delivery_status=status
    )
    if asked is None:
        return TurnOutcome(state=TurnState.SKIPPED)
    if returned:
        body = manychat.dynamic_block_build(channel=stored.lead.channel, text=asked.text)
        return TurnOutcome(state=TurnState.ANSWERED, body=body, reply=asked)
    return TurnOutcome(state=_sent_state(reply_deliver(reply=asked, lead=stored.lead)), reply=asked)


# --- The two places a turn runs ----------------------------------------------------------------------------


def turn_run_in_webhook(*, stored: StoredInbound, started: float) -> TurnOutcome:
    """The webhook's turn: answer within the deadline in the body, or defer to the task."""
    channel = DeliveryChannel.DYNAMIC_BLOCK
    gate = turn_gate(stored=stored, channel=channel)
    if gate is TurnGate.REPLAY:
        return turn_replay(stored=stored, until=started + settings.AGENT_REPLY_DEADLINE_SECONDS)
    if gate is TurnGate.SKIP_PAUSED:
        turn_skip_paused(inbound=stored.message, lead=stored.lead)
        return TurnOutcome(state=TurnState.SKIPPED)
    if gate is TurnGate.DEFER:
        body = _holding_body(stored=stored)  # written before the task may start on the same rows
        turn_defer(message_id=stored.message.pk)
        return TurnOutcome(state=TurnState.DEFERRED, body=body)
    burst = turn_burst_wait(stored=stored, window=settings.AGENT_BURST_WINDOW_SECONDS)
    if burst is None:
        return TurnOutcome(state=TurnState.ABSORBED)  # a valid, silent body: the next message answers
    stored = burst

    step = attachments.attachment_step(message=stored.message)
    if step is attachments.AttachmentStep.TRANSCRIBE:  # never inside ManyChat's 10 s window
        body = _holding_body(stored=stored)
        turn_defer(message_id=stored.message.pk)
        return TurnOutcome(state=TurnState.DEFERRED, body=body)
    if step is not attachments.AttachmentStep.NONE:
        return turn_voice_fallback(stored=stored, step=step, channel=channel)

    deadline = started + settings.AGENT_REPLY_DEADLINE_SECONDS
    if deadline - time.monotonic() < settings.AGENT_MIN_MODEL_SECONDS:
        # The request waited (proxy, accept queue, a busy worker) until too little of ManyChat's window is
        # left for a model call: the task answers it through sendContent, at once (config/arrival.py).
        body = _holding_body(stored=stored)
        turn_defer(message_id=stored.message.pk)
        return TurnOutcome(state=TurnState.DEFERRED, body=body)
    reservation = turn_budget(stored=stored)
    if isinstance(reservation, budget.Refusal):
        return turn_budget_handoff(stored=stored, refusal=reservation, channel=channel)
    decision = turn_decide(
        lead=stored.model_lead,
        history=stored.model_history,
        text=attachments.model_text(message=stored.message),
        deadline=deadline,
    )
    turn_budget_settle(reservation=reservation, decision=decision)
    if isinstance(decision, TurnFailure):
        if decision.kind is LlmErrorKind.TIMEOUT:
            body = _holding_body(stored=stored)
            turn_defer(message_id=stored.message.pk)
            return TurnOutcome(state=TurnState.DEFERRED, body=body)
        fallback = turn_fail(stored=stored, failure=decision)
        return turn_deliver_fallback(stored=stored, text=fallback, channel=channel)

    applied = turn_apply(
        inbound=stored.message,
        lead=stored.lead,
        decision=decision,
        channel=channel,
        engaged=turn_engages(lead=stored.lead, history=stored.history),
    )
    if turn_supersede(applied=applied, decision=decision):
        return TurnOutcome(state=TurnState.SUPERSEDED, reply=applied.reply)
    outcome = turn_deliver(applied=applied, lead=stored.lead, channel=channel)
    turn_credit(applied=applied)
    return outcome


def turn_complete(*, message_id: int) -> TurnState:
    """The task's turn: finish it outside the webhook and deliver through sendContent. Safe to repeat.

    Raises DeliveryRetryable when sendContent should be tried again later.
    """
    channel = DeliveryChannel.SEND_CONTENT
    stored = turn_load(message_id=message_id)
    if stored is None:
        return TurnState.MISSING
    gate = turn_gate(stored=stored, channel=channel)
    if gate is TurnGate.REDELIVER and stored.reply is not None:
        return _sent_state(reply_deliver(reply=stored.reply, lead=stored.lead))
    if gate is TurnGate.ALREADY_DONE:
        return TurnState.ALREADY_DONE
    if gate is TurnGate.GAVE_UP:
        return TurnState.GAVE_UP
    if gate is TurnGate.SKIP_PAUSED:
        turn_skip_paused(inbound=stored.message, lead=stored.lead)
        return TurnState.SKIPPED

    step = attachments.attachment_step(message=stored.message)
    if step is attachments.AttachmentStep.TRANSCRIBE:
        step = attachments.voice_transcribe(message=stored.message)
    if step is not attachments.AttachmentStep.NONE:
        return turn_voice_fallback(stored=stored, step=step, channel=channel).state

    reservation = turn_budget(stored=stored)
    if isinstance(reservation, budget.Refusal):
        return turn_budget_handoff(stored=stored, refusal=reservation, channel=channel).state
    decision = turn_decide(
        lead=stored.model_lead,
        history=stored.model_history,
        text=attachments.model_text(message=stored.message),
        deadline=None,
    )
    turn_budget_settle(reservation=reservation, decision=decision)
    if isinstance(decision, TurnFailure):
        fallback = turn_fail(stored=stored, failure=decision)
        return turn_deliver_fallback(stored=stored, text=fallback, channel=channel).state

    applied = turn_apply(
        inbound=stored.message,
        lead=stored.lead,
        decision=decision,
        channel=channel,
        engaged=turn_engages(lead=stored.lead, history=stored.history),
    )
    if turn_supersede(applied=applied, decision=decision):
        return TurnState.SUPERSEDED
    try:
        outcome = turn_deliver(applied=applied, lead=stored.lead, channel=channel)
    finally:
        turn_credit(applied=applied)  # the reply is stored whether or not ManyChat took it yet
    return outcome.state
