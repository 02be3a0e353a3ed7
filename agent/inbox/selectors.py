"""The inbox's reads: work queues with their counts, filters, sort and search; a lead's thread."""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.db.models import (
    Count,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)

from leads import roles
from leads.models import DRAFT_STATUSES, DeliveryStatus, Lead, LeadStatus, Message, MessageRole, Note
from leads.search import lead_ids_by_identity, lead_ids_by_message_words
from leads.selectors import users_with_permission
from prompts.models import PromptVersion


class Queue(StrEnum):
    NEEDS_PERSON = "needs_person"
    MINE = "mine"
    UNASSIGNED = "unassigned"
    OPEN = "open"


QUEUE_LABELS = {
    Queue.NEEDS_PERSON: "Needs a person",
    Queue.MINE: "Mine",
    Queue.UNASSIGNED: "Unassigned",
    Queue.OPEN: "All open",
}


class BotState(StrEnum):
    ANSWERING = "answering"
    HANDED_OFF = "handed_off"
    PAUSED = "paused"
    TAKEN_OVER = "taken_over"


BOT_STATE_LABELS = {
    BotState.ANSWERING: "Bot answering",
    BotState.HANDED_OFF: "Handed off",
    BotState.PAUSED: "Bot paused",
    BotState.TAKEN_OVER: "A person handles it",
}

# sort key -> ORDER BY; the queue's default comes first. Ties break on id so pages are stable.
SORTS = {
    "waiting": (F("waiting_since").asc(nulls_last=True), "id"),
    "-waiting": (F("waiting_since").desc(nulls_last=True), "-id"),
    "last": (F("last_message_at").asc(nulls_last=True), "id"),
    "-last": (F("last_message_at").desc(nulls_last=True), "-id"),
    "name": ("first_name", "last_name", "id"),
    "-name": ("-first_name", "-last_name", "-id"),
    "status": ("status", "-id"),
    "-status": ("-status", "-id"),
    "assignee": (F("assignee__username").asc(nulls_first=True), "-id"),
    "-assignee": (F("assignee__username").desc(nulls_last=True), "-id"),
}
DEFAULT_SORT = {Queue.NEEDS_PERSON: "waiting"}
CLOSED_STATUSES = (LeadStatus.CONVERTED, LeadStatus.LOST)


@dataclass(frozen=True)
class InboxFilters:
    channel: str = ""
    bot: str = ""
    status: str = ""
    assignee: str = ""  # "", "none", or a user id
    version: int | None = None  # the prompt version that wrote the lead's last agent reply
    search: str = ""
    sort: str = ""


def _queue_condition(*, queue: Queue, user: Any) -> Q:
    open_ = ~Q(status__in=CLOSED_STATUSES)
    if queue == Queue.NEEDS_PERSON:
        return Q(waiting_since__isnull=False)
    if queue == Queue.MINE:
        return open_ & Q(assignee_id=user.pk)
    if queue == Queue.UNASSIGNED:
        return open_ & Q(assignee__isnull=True)
    return open_


def _bot_condition(bot: str) -> Q:
    return {
        BotState.TAKEN_OVER: Q(taken_over_at__isnull=False),
        BotState.HANDED_OFF: Q(needs_human=True, taken_over_at__isnull=True),
        BotState.PAUSED: Q(bot_paused=True, needs_human=False, taken_over_at__isnull=True),
        BotState.ANSWERING: Q(bot_paused=False, needs_human=False, taken_over_at__isnull=True),
    }.get(BotState(bot), Q())


def _last_version_subquery() -> Subquery:
    latest = (
        Message.objects.filter(conversation__lead_id=OuterRef("pk"), role=MessageRole.AGENT)
        .exclude(prompt_version__isnull=True)
        .order_by("-created_at", "-id")
        .values("prompt_version__version")[:1]
    )
    return Subquery(latest)


def _search_condition(search: str) -> Q:
    """Leads found by who they are (the trigram index) or, unless the term names a lead, by their words.

    Each part is an id subquery on its own index (leads.search); PostgreSQL hashes both and checks the
    leads of the queue against them, in the queue's index order.
    """
    term = " ".join(search.split())
    condition = Q(pk__in=lead_ids_by_identity(term=term))
    if not _looks_like_an_identifier(term):
        condition |= Q(pk__in=lead_ids_by_message_words(term=term))
    return condition


def _looks_like_an_identifier(term: str) -> bool:
    """An @handle, an email address or a number (phone, subscriber id) names a lead, not message words."""
    if term.startswith("@") or (" " not in term and "@" in term.strip("@")):
        return True
    return sum(ch.isdigit() for ch in term) >= 4 and not any(ch.isalpha() for ch in term)


def inbox_queue(*, queue: Queue, user: Any, filters: InboxFilters | None = None) -> QuerySet[Lead]:
    """The leads of one queue, filtered, searched and sorted, with the assignee and last prompt version.

    Needs a person: leads waiting for a person, oldest waiting first. Mine / unassigned / all open: leads
    not converted or lost, by assignee. The annotation is computed only for the rows of a page.
    """
    filters = filters or InboxFilters()
    queryset = Lead.objects.select_related("assignee", "taken_over_by").filter(
        _queue_condition(queue=queue, user=user)
    )
    if filters.channel:
        queryset = queryset.filter(channel=filters.channel)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.bot:
        queryset = queryset.filter(_bot_condition(filters.bot))
    if filters.assignee == "none":
        queryset = queryset.filter(assignee__isnull=True)
    elif filters.assignee:
        queryset = queryset.filter(assignee_id=int(filters.assignee))
    queryset = queryset.annotate(last_version=_last_version_subquery())
    if filters.version is not None:
        queryset = queryset.filter(last_version=filters.version)
    if filters.search.strip():
        queryset = queryset.filter(_search_condition(filters.search))
    sort = filters.sort if filters.sort in SORTS else DEFAULT_SORT.get(queue, "-last")
    return queryset.order_by(*SORTS[sort])


def inbox_counts(*, user: Any) -> dict[str, int]:
    """The number of leads in each queue, in one query of two parts joined by UNION ALL: the waiting
    leads (the partial index lead_waiting_idx) and one pass over the open leads for "mine", "unassigned"
    and "all open" (an index-only scan of the partial index lead_open_assignee_idx on PostgreSQL), never
    a pass over every lead."""
    zero = Value(0)
    waiting = (
        Lead.objects.filter(_queue_condition(queue=Queue.NEEDS_PERSON, user=user))
        .order_by()
        .values(k=zero)
        .annotate(a=Count("*"), b=zero, c=zero, d=zero)
        .values_list("a", "b", "c", "d")
    )
    open_leads = (
        Lead.objects.filter(_queue_condition(queue=Queue.OPEN, user=user))
        .order_by()
        .values(k=zero)
        .annotate(
            a=zero,
            b=Count("id", filter=Q(assignee_id=user.pk)),
            c=Count("id", filter=Q(assignee__isnull=True)),
            d=Count("*"),
        )
        .values_list("a", "b", "c", "d")
    )
    totals = [0, 0, 0, 0]
    for row in waiting.union(open_leads, all=True):
        totals = [total + value for total, value in zip(totals, row, strict=True)]
    needs_person, mine, unassigned, open_ = totals
    return {
        Queue.NEEDS_PERSON.value: needs_person,
        Queue.MINE.value: mine,
        Queue.UNASSIGNED.value: unassigned,
        Queue.OPEN.value: open_,
    }


def inbox_filter_choices() -> dict[str, list[Any]]:
    """People who may work leads (the assignee filter and picker) and the prompt versions, two queries."""
    people = list(
        users_with_permission(perm=roles.PERM_CHANGE_LEAD)
        .order_by("username")
        .only("id", "username", "first_name", "last_name")
    )
    versions = list(PromptVersion.objects.order_by("-version").values_list("version", flat=True)[:50])
    return {"people": people, "versions": versions}


@dataclass
class ThreadItem:
    """One line of the conversation view: a message to or from the lead, or an internal note."""

    kind: str  # "message" or "note"
    id: int
    created_at: datetime
    message: Message | None = None
    note: Note | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def lead_thread(*, lead: Lead, after: datetime | None = None) -> list[ThreadItem]:
    """Every message of the lead's conversations and its notes, oldest first (two queries)."""
    messages = Message.objects.filter(conversation__lead=lead).select_related("prompt_version", "sent_by")
    notes = Note.objects.filter(lead=lead).select_related("author")
    if after is not None:
        messages, notes = messages.filter(created_at__gt=after), notes.filter(created_at__gt=after)
    items = [
        ThreadItem("message", m.pk, m.created_at, message=m) for m in messages.order_by("created_at", "id")
    ]
    items += [ThreadItem("note", n.pk, n.created_at, note=n) for n in notes.order_by("created_at", "id")]
    items.sort(key=lambda item: (item.created_at, item.kind != "message", item.id))
    return items


def inbox_lead_get(*, lead_id: int) -> Lead | None:
    return Lead.objects.select_related("assignee", "taken_over_by").filter(pk=lead_id).first()


def lead_drafts(*, lead: Lead, statuses: tuple[str, ...] = tuple(DRAFT_STATUSES)) -> QuerySet[Message]:
    """The agent's drafts and shadow drafts for a lead, newest first, with the message each answers."""
    return (
        Message.objects.filter(conversation__lead=lead, role=MessageRole.AGENT, delivery_status__in=statuses)
        .select_related("prompt_version", "in_reply_to")
        .order_by("-created_at", "-id")
    )


def lead_open_drafts(*, lead: Lead) -> QuerySet[Message]:
    return lead_drafts(lead=lead, statuses=(DeliveryStatus.DRAFT,))
