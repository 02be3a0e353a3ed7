"""The second source of suggestions: conversations of leads who booked or bought beside those who did not.

Reads only. Texts leave here with contact details replaced (emails, phone numbers, links, @handles), so
nothing that identifies a lead reaches the model; the message ids stay, for the tactics to cite.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from leads.models import Activity, Lead, LeadStatus, Message, MessageRole
from prompts.catalog.grounding import FactKind, extract_facts

WON = (LeadStatus.BOOKED, LeadStatus.CONVERTED)
OPEN = (LeadStatus.NEW, LeadStatus.ENGAGED, LeadStatus.QUALIFIED)
MAX_MESSAGE_CHARS = 400

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_URL = re.compile(
    r"(?:https?://|www\.)\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|net|org|io|co|me|ly|app|link|shop|store|es|fr|de|"
    r"it|uk|mx|ar|br|info|biz|page|site|online)\b(?:/\S*)?",
    re.IGNORECASE,
)
_HANDLE = re.compile(r"(?<![\w@])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")
_PHONE = re.compile(r"\+?\(?\d[\d\s().\-/]{6,}\d")


def contact_details_strip(text: str) -> str:
    """The text with emails, links, @handles and phone numbers (8+ digits) replaced by a placeholder."""
    text = _EMAIL.sub("[email]", text or "")
    text = _URL.sub("[link]", text)
    text = _HANDLE.sub("[handle]", text)
    text = _PHONE.sub(lambda m: "[phone]" if sum(c.isdigit() for c in m.group()) >= 8 else m.group(), text)
    # The catalog's own extractor as a second net (other URL and phone spellings).
    for fact in extract_facts(text):
        if fact.kind in (FactKind.URL, FactKind.PHONE):
            text = text.replace(fact.text, "[link]" if fact.kind is FactKind.URL else "[phone]")
    return text


@dataclass
class Transcript:
    lead_id: int
    outcome: str  # "booked", "converted", "lost", "stalled"
    step_source: str = ""  # who moved the lead to its outcome (leads.StepSource), when recorded
    messages: list[dict[str, object]] = field(default_factory=list)  # {"id", "role", "text"} stripped


@dataclass
class OutcomeSet:
    won: list[Transcript]
    lost: list[Transcript]
    won_total: int
    lost_total: int

    def message_ids(self) -> set[int]:
        return {int(m["id"]) for t in [*self.won, *self.lost] for m in t.messages}  # type: ignore[call-overload]


def _not_won() -> Q:
    stalled_before = timezone.now() - timedelta(days=settings.TACTICS_STALLED_DAYS)
    return Q(status=LeadStatus.LOST) | Q(status__in=OPEN, last_message_at__lt=stalled_before)


def _talked() -> Exists:
    return Exists(Message.objects.filter(conversation__lead_id=OuterRef("pk"), role=MessageRole.LEAD))


def outcome_counts() -> tuple[int, int]:
    """(leads who booked or bought, leads who did not: lost, or silent for TACTICS_STALLED_DAYS) with
    at least one message from the lead."""
    won = Lead.objects.filter(_talked(), status__in=WON).count()
    lost = Lead.objects.filter(_talked(), _not_won()).count()
    return won, lost


def _transcripts(*, lead_ids: list[int], outcomes: dict[int, str], per_conversation: int) -> list[Transcript]:
    sources: dict[int, str] = {}
    activities = (
        Activity.objects.filter(lead_id__in=lead_ids, verb="lead.status_changed")
        .order_by("lead_id", "created_at", "id")
        .values_list("lead_id", "data")
    )
    for lead_id, data in activities:
        if isinstance(data, dict) and data.get("to") == outcomes.get(lead_id) and data.get("source"):
            sources[lead_id] = str(data["source"])
    rows = (
        Message.objects.filter(
            conversation__lead_id__in=lead_ids, role__in=[MessageRole.LEAD, MessageRole.AGENT]
        )
        .order_by("conversation__lead_id", "created_at", "id")
        .values_list("id", "conversation__lead_id", "role", "text")
    )
    by_lead: dict[int, list[dict[str, object]]] = {pk: [] for pk in lead_ids}
    for message_id, lead_id, role, text in rows.iterator(chunk_size=2000):
        by_lead[lead_id].append(
            {"id": message_id, "role": role, "text": contact_details_strip(text)[:MAX_MESSAGE_CHARS]}
        )
    return [
        Transcript(
            lead_id=pk,
            outcome=outcomes[pk],
            step_source=sources.get(pk, ""),
            messages=by_lead[pk][:per_conversation],  # how it went up to the outcome
        )
        for pk in lead_ids
        if by_lead[pk]
    ]


def outcome_set(*, per_side: int, per_conversation: int) -> OutcomeSet:
    """The most recently active `per_side` leads of each side with their first `per_conversation` messages."""
    won_total, lost_total = outcome_counts()
    won = list(
        Lead.objects.filter(_talked(), status__in=WON)
        .order_by("-last_message_at", "-id")
        .values_list("id", "status")[:per_side]
    )
    lost = list(
        Lead.objects.filter(_talked(), _not_won())
        .order_by("-last_message_at", "-id")
        .values_list("id", "status")[:per_side]
    )
    lost_outcomes = {pk: ("lost" if status == LeadStatus.LOST else "stalled") for pk, status in lost}
    return OutcomeSet(
        won=_transcripts(
            lead_ids=[pk for pk, _ in won], outcomes=dict(won), per_conversation=per_conversation
        ),
        lost=_transcripts(
            lead_ids=[pk for pk, _ in lost], outcomes=lost_outcomes, per_conversation=per_conversation
        ),
        won_total=won_total,
        lost_total=lost_total,
    )
