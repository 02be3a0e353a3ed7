"""A lead's data deleted on request, and old data anonymised by retention.

Both anonymise rather than delete rows: a message stays a message (so every count, every per-version figure
and every credit stays as it was), only what identifies a person or what they wrote goes. This lives in
`agent`, the layer that knows every app, because a lead's words are copied beyond `leads`: into training
examples and correction candidates, evaluation results, rehearsal scenarios, notifications and activity
details.

`lead_forget` works in two passes in one transaction:
1. the rows tied to the lead by a foreign key (its messages, its conversations' examples, its notifications
   and activities) are rewritten;
2. every text and JSON column of every model of the project's apps is then searched for the lead's distinctive
   strings (each message text, full name, handle, phone, email, subscriber id, at least
   `MIN_NEEDLE_LENGTH` characters so a short first name does not wipe unrelated rows) and each occurrence is
   replaced, so a copy made by hand or by a feature added later is found too.
Exports are made from the database on demand and our logs carry ids, never text (config/logs.py), so neither
keeps a copy.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Cast
from django.utils import timezone

from leads.models import Activity, Lead, Message, MessageRole, Notification
from leads.services import activity_record
from training.models import TrainingExample
from training.retrieval.services import example_vectors_forget

FORGOTTEN = "[forgotten]"
RETAINED = "[removed by retention]"
MIN_NEEDLE_LENGTH = 6
PROJECT_APPS = ("leads", "prompts", "training", "agent")
# Activity details that may hold free text a person wrote (reasons, notes, errors quoting a reply).
FREE_TEXT_KEYS = ("reason", "note", "error", "text", "message", "feedback")


@dataclass
class ForgetReport:
    lead_id: int
    messages: int = 0
    rows_rewritten: dict[str, int] = field(default_factory=dict)

    def count(self, label: str, n: int = 1) -> None:
        if n:
            self.rows_rewritten[label] = self.rows_rewritten.get(label, 0) + n


def _needles(lead: Lead) -> list[str]:
    texts = list(
        Message.objects.filter(conversation__lead=lead).exclude(text=FORGOTTEN).values_list("text", flat=True)
    )
    full_name = f"{lead.first_name} {lead.last_name}".strip()
    candidates = [
        *texts,
        full_name,
        lead.username,
        f"@{lead.username}" if lead.username else "",
        lead.phone,
        lead.email,
        lead.manychat_subscriber_id,
    ]
    seen: set[str] = set()
    needles = []
    # Longest first, so a message quoting the full name is replaced whole before the name alone.
    for needle in sorted((c.strip() for c in candidates), key=len, reverse=True):
        if len(needle) >= MIN_NEEDLE_LENGTH and needle not in seen:
            seen.add(needle)
            needles.append(needle)
    return needles


def _scrub_value(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            if needle in value:
                value = value.replace(needle, FORGOTTEN)
        return value
    if isinstance(value, list):
        return [_scrub_value(item, needles) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item, needles) for key, item in value.items()}
    return value


def _text_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.primary_key
    ]


def _sweep_copies(
    *,
    needles: list[str],
    report: ForgetReport,
    skip: set[type[models.Model]],
    rewritten: dict[str, set[Any]] | None = None,
) -> None:
    """Replace every occurrence of the lead's strings in every text/JSON column of the project's models;
    `rewritten` collects the primary keys of the rows changed, per model label."""
    if not needles:
        return
    for app_label in PROJECT_APPS:
        for model in apps.get_app_config(app_label).get_models():
            if model in skip or model._meta.proxy or not model._meta.managed:
                continue
            text_fields = _text_fields(model)
            if not text_fields:
                continue
            annotations: dict[str, Any] = {}
            condition = Q()
            for f in text_fields:
                name = f.name
                if isinstance(f, models.JSONField):
                    name = f"_forget_{f.name}"
                    annotations[name] = Cast(f.name, models.TextField())
                for needle in needles:
                    probe = json.dumps(needle)[1:-1] if isinstance(f, models.JSONField) else needle
                    condition |= Q(**{f"{name}__contains": probe})
            queryset = model._default_manager.annotate(**annotations).filter(condition)
            for row in queryset.iterator(chunk_size=500):
                changed = []
                for f in text_fields:
                    before = getattr(row, f.attname)
                    after = _scrub_value(before, needles)
                    if after != before:
                        if isinstance(f, models.CharField) and f.max_length:
                            after = after[: f.max_length]
                        setattr(row, f.attname, after)
                        changed.append(f.attname)
                if changed:
                    row.save(update_fields=changed)
                    report.count(f"{model._meta.label} (copies)")
                    if rewritten is not None:
                        rewritten.setdefault(model._meta.label, set()).add(row.pk)


@transaction.atomic
def lead_forget(*, lead: Lead, actor: Any = None) -> ForgetReport:
    """Anonymise a lead everywhere we keep a copy; rows, counts and per-version figures stay."""
    lead = Lead.objects.select_for_update().get(pk=lead.pk)
    report = ForgetReport(lead_id=lead.pk)
    needles = _needles(lead)

    # What the lead wrote, before it goes: the vectors cached for these texts are dropped below.
    lead_texts = list(
        Message.objects.filter(conversation__lead=lead, role=MessageRole.LEAD).values_list("text", flat=True)
    )
    example_ids = set(TrainingExample.objects.filter(conversation__lead=lead).values_list("pk", flat=True))
    # The dedupe key is a digest of the subscriber and the text: it would confirm a guess, so it goes too.
    report.messages = Message.objects.filter(conversation__lead=lead).update(
        text=FORGOTTEN, error="", dedupe_key=None
    )
    # Examples and candidates built from the lead's conversations carry its words (and a person's reply to
    # them, which quotes or answers the lead): the whole texts go, the decisions and counts stay.
    for model_label in ("training.TrainingExample", "training.CorrectionCandidate"):
        try:
            model = apps.get_model(model_label)
        except LookupError:
            continue
        values = {
            f.attname: FORGOTTEN
            for f in _text_fields(model)
            if f.name in ("user_message", "ai_response", "expected_response", "feedback")
        }
        if values:
            report.count(model_label, model._default_manager.filter(conversation__lead=lead).update(**values))

    _forget_notes_and_scenarios(lead=lead, report=report)

    lead_type = ContentType.objects.get_for_model(Lead)
    report.count(
        "leads.Notification",
        Notification.objects.filter(target_content_type=lead_type, target_object_id=str(lead.pk)).update(
            message="A lead's data was deleted on request."
        ),
    )
    for activity in Activity.objects.filter(lead=lead).iterator(chunk_size=500):
        data = dict(activity.data or {})
        scrubbed = {
            key: ("" if key in FREE_TEXT_KEYS and isinstance(v, str) else v) for key, v in data.items()
        }
        if scrubbed != data:
            activity.data = scrubbed
            activity.save(update_fields=["data"])
            report.count("leads.Activity")

    rewritten: dict[str, set[Any]] = {}
    _sweep_copies(needles=needles, report=report, skip={Message}, rewritten=rewritten)
    # An example's vector is derived from its lead message: those made from the lead's words go too.
    example_ids |= rewritten.get(TrainingExample._meta.label, set())
    report.count(
        "training.ExampleEmbedding",
        example_vectors_forget(example_ids=example_ids, texts=lead_texts),
    )

    token = secrets.token_hex(8)
    lead.manychat_subscriber_id = f"forgotten-{token}"
    for name in ("first_name", "last_name", "username", "phone", "email", "handoff_reason"):
        setattr(lead, name, "")
    lead.qualification_data = {}
    update_fields = [
        "manychat_subscriber_id",
        "first_name",
        "last_name",
        "username",
        "phone",
        "email",
        "handoff_reason",
        "qualification_data",
    ]
    for optional in ("live_chat_url", "manychat_token_hash", "timezone"):
        if hasattr(lead, optional) and isinstance(getattr(lead, optional), str):
            setattr(lead, optional, "")
            update_fields.append(optional)
    lead.save(update_fields=update_fields)
    activity_record(
        verb="lead.forgotten",
        lead=lead,
        actor=actor,
        data={"messages": report.messages, "by": getattr(actor, "username", "") or "command"},
    )
    return report


def _forget_notes_and_scenarios(*, lead: Lead, report: ForgetReport) -> None:
    """Notes the team wrote about the lead, and rehearsal scenarios drafted from its conversations (their
    persona, opening and facts retell the lead's words), with the transcripts played from them."""
    try:
        note_model = apps.get_model("leads", "Note")
    except LookupError:
        note_model = None
    if note_model is not None:
        report.count("leads.Note", note_model._default_manager.filter(lead=lead).update(text=FORGOTTEN))
    try:
        scenario_model = apps.get_model("agent", "Scenario")
        play_model = apps.get_model("agent", "RehearsalPlay")
    except LookupError:
        return
    scenarios = scenario_model._default_manager.filter(source_conversation__lead=lead)
    for scenario in scenarios:
        scenario.title = "A forgotten lead's conversation"
        scenario.persona = FORGOTTEN
        scenario.goal = FORGOTTEN if scenario.goal else ""
        scenario.opening_messages = [FORGOTTEN for _ in scenario.opening_messages or [FORGOTTEN]]
        scenario.facts = dict.fromkeys(scenario.facts or {}, FORGOTTEN)
        scenario.save(update_fields=["title", "persona", "goal", "opening_messages", "facts"])
        report.count("agent.Scenario")
    for play in play_model._default_manager.filter(scenario__in=scenarios).only("pk", "transcript"):
        play.transcript = [
            {**row, "text": FORGOTTEN} for row in play.transcript or [] if isinstance(row, dict)
        ]
        play.save(update_fields=["transcript"])
        report.count("agent.RehearsalPlay")


@dataclass(frozen=True)
class RetentionReport:
    cutoff: str
    messages: int
    activities: int


def retention_apply(
    *, days: int, now: Any = None, batch_size: int = 2000, lookback_days: int | None = None
) -> RetentionReport:
    """Anonymise message texts and free-text activity details older than `days`; idempotent, batched.

    `lookback_days` bounds the activity scan to the days just past the cutoff (the daily task's share);
    None scans everything older than the cutoff (the command's first run).
    """
    if days <= 0:
        return RetentionReport(cutoff="", messages=0, activities=0)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    messages = 0
    old = Message.objects.filter(created_at__lt=cutoff).exclude(text__in=[RETAINED, FORGOTTEN])
    while True:
        ids = list(old.values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        with transaction.atomic():
            messages += Message.objects.filter(pk__in=ids).update(text=RETAINED, error="")
    activities = 0
    free_text = Q()
    for key in FREE_TEXT_KEYS:
        free_text |= Q(data__has_key=key)
    old_activities = Activity.objects.filter(free_text, created_at__lt=cutoff)
    if lookback_days is not None:
        old_activities = old_activities.filter(created_at__gte=cutoff - timedelta(days=lookback_days))
    for activity in old_activities.iterator(chunk_size=batch_size):
        data = dict(activity.data)
        scrubbed = {
            key: ("" if key in FREE_TEXT_KEYS and isinstance(v, str) else v) for key, v in data.items()
        }
        if scrubbed != data:
            activity.data = scrubbed
            activity.save(update_fields=["data"])
            activities += 1
    return RetentionReport(cutoff=cutoff.isoformat(), messages=messages, activities=activities)
