"""A lead's data deleted on request, and retention: no trace of the lead's words, every figure kept."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from agent.privacy.services import FORGOTTEN, RETAINED, lead_forget, retention_apply
from leads.models import Activity, Message, Notification
from leads.services import activity_record, notification_notify
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
)
from training.models import TrainingExample

pytestmark = pytest.mark.django_db

LEAD_TEXT = "My budget is about 3,400 a month and I live at 12 Calle Serrano"
LEAD_EMAIL = "sofia.marchetti@example.org"
LEAD_PHONE = "+34 611 222 333"


def _every_text_value() -> list[tuple[str, str, str]]:
    """(table, column, value) for every text-like column of every table in the database."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                type_name = str(column.type_code).lower() if connection.vendor == "sqlite" else ""
                if connection.vendor == "postgresql":
                    try:
                        type_name = connection.introspection.get_field_type(column.type_code, column).lower()
                    except KeyError:  # e.g. a generated tsvector: derived from a text column read here too
                        continue
                if not any(t in type_name for t in ("char", "text", "json")):
                    continue
                cursor.execute(f'SELECT "{column.name}" FROM "{table}"')  # noqa: S608 - introspected names
                found.extend((table, column.name, str(value)) for (value,) in cursor.fetchall() if value)
    return found


@pytest.fixture
def lead_with_copies(prompt_version, manager):
    lead = LeadFactory(
        first_name="Sofia",
        last_name="Marchetti",
        username="sofia_bakes",
        email=LEAD_EMAIL,
        phone=LEAD_PHONE,
        manychat_subscriber_id="778899001",
        qualification_data={"budget": "3400", "city": "Madrid"},
    )
    conversation = ConversationFactory(lead=lead)
    asked = MessageFactory(conversation=conversation, text=LEAD_TEXT)
    reply = AgentMessageFactory(
        conversation=conversation,
        in_reply_to=asked,
        prompt_version=prompt_version,
        text="Thanks Sofia Marchetti, a plan for 3,400 works.",
    )
    TrainingExample.objects.create(
        conversation=conversation,
        message=reply,
        submitted_by=manager,
        user_message=LEAD_TEXT,
        ai_response=reply.text,
        feedback="Good",
        example_type="good",
    )
    # A copy made by hand, not tied to the lead: found by the sweep.
    TrainingExample.objects.create(
        submitted_by=manager,
        user_message=f"Quoted from a chat: {LEAD_TEXT}",
        ai_response="Something",
        feedback=f"Lead {LEAD_EMAIL} asked this",
        example_type="good",
    )
    notification_notify(
        recipients=[manager],
        verb="lead.handed_off",
        message="Sofia Marchetti asked for a person",
        target=lead,
    )
    activity_record(verb="lead.handed_off", lead=lead, data={"reason": f"asked to call {LEAD_PHONE}"})
    from agent.rehearsal.models import Scenario
    from leads.models import Note

    Note.objects.create(lead=lead, author=manager, text="Sofia Marchetti prefers calls after 6pm")
    Scenario.objects.create(
        title="Sofia Marchetti, bakery",
        persona="Owner of Sofia Marchetti's bakery in Calle Serrano, budget about 3,400 a month",
        opening_messages=[LEAD_TEXT],
        facts={"budget": "3,400 a month", "street": "Calle Serrano"},
        source_conversation=conversation,
    )
    return lead


def test_lead_forget_leaves_no_trace_and_keeps_counts(lead_with_copies, manager):
    lead = lead_with_copies
    messages_before = Message.objects.count()
    examples_before = TrainingExample.objects.count()
    versions_before = list(Message.objects.values_list("prompt_version_id", "role").order_by("id"))

    report = lead_forget(lead=lead, actor=manager)

    assert report.messages == 2
    needles = [
        LEAD_TEXT,
        LEAD_EMAIL,
        LEAD_PHONE,
        "Sofia Marchetti",
        "sofia_bakes",
        "778899001",
        "Calle Serrano",
    ]
    leftovers = [(t, c, v) for t, c, v in _every_text_value() for n in needles if n in v]
    assert leftovers == []
    # Counts and the facts per-version figures are computed from stay as they were.
    assert Message.objects.count() == messages_before
    assert TrainingExample.objects.count() == examples_before
    assert list(Message.objects.values_list("prompt_version_id", "role").order_by("id")) == versions_before
    lead.refresh_from_db()
    assert lead.qualification_data == {} and lead.email == "" and lead.first_name == ""
    assert set(Message.objects.filter(conversation__lead=lead).values_list("text", flat=True)) == {FORGOTTEN}
    # Who did it is recorded, with no personal data.
    forgotten = Activity.objects.get(verb="lead.forgotten")
    assert forgotten.actor == manager and forgotten.lead_id == lead.pk
    assert Notification.objects.get(verb="lead.handed_off").message == "A lead's data was deleted on request."


def test_lead_forget_command_and_unknown_subscriber(lead_with_copies, capsys):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No lead has the subscriber id 'nobody'"):
        call_command("lead_forget", "nobody", "--yes")
    call_command("lead_forget", "778899001", "--yes")
    assert "2 messages anonymised" in capsys.readouterr().out
    assert not Message.objects.filter(text=LEAD_TEXT).exists()


def test_admin_action_forgets_the_selected_leads(lead_with_copies, admin_client):
    response = admin_client.post(
        "/admin/leads/lead/",
        {"action": "forget_leads", "_selected_action": [lead_with_copies.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert not Message.objects.filter(text=LEAD_TEXT).exists()
    assert Activity.objects.get(verb="lead.forgotten").actor.is_superuser


def test_retention_anonymises_only_old_rows_and_is_idempotent(prompt_version):
    conversation = ConversationFactory()
    old = MessageFactory(conversation=conversation, text="an old message")
    recent = MessageFactory(conversation=conversation, text="a recent message")
    old_reply = AgentMessageFactory(
        conversation=conversation, in_reply_to=old, prompt_version=prompt_version, text="old reply"
    )
    long_ago = timezone.now() - timedelta(days=400)
    Message.objects.filter(pk__in=[old.pk, old_reply.pk]).update(created_at=long_ago)
    activity_record(verb="lead.bot_paused", lead=conversation.lead, data={"reason": "old words", "x": 1})
    Activity.objects.update(created_at=long_ago)

    report = retention_apply(days=365)

    assert report.messages == 2 and report.activities == 1
    assert Message.objects.get(pk=old.pk).text == RETAINED
    assert Message.objects.get(pk=old_reply.pk).prompt_version_id == prompt_version.pk
    assert Message.objects.get(pk=recent.pk).text == "a recent message"
    assert Activity.objects.get().data == {"reason": "", "x": 1}
    assert retention_apply(days=365).messages == 0
    assert retention_apply(days=0).messages == 0


def test_lead_forget_drops_the_vectors_derived_from_the_lead_words(lead_with_copies, manager, settings):
    """The stored vectors of examples made from the lead's words and the cached vectors of its messages go;
    another example's vector stays."""
    from django.core.cache import cache

    from training.retrieval.models import ExampleEmbedding
    from training.retrieval.vectors import query_cache_key

    settings.OPENAI_EMBEDDINGS_MODEL = "text-embedding-3-small"
    other = TrainingExample.objects.create(
        submitted_by=manager,
        user_message="How long is the course?",
        ai_response="Six weeks",
        feedback="Right",
        example_type="good",
    )
    for example in TrainingExample.objects.all():
        ExampleEmbedding.objects.create(
            example=example, model="text-embedding-3-small", dims=2, vector=b"\0" * 8
        )
    cache.set(query_cache_key(text=LEAD_TEXT), b"\0" * 8)
    cache.set(query_cache_key(text="How long is the course?"), b"\0" * 8)

    report = lead_forget(lead=lead_with_copies, actor=manager)

    assert list(ExampleEmbedding.objects.values_list("example_id", flat=True)) == [other.pk]
    # The lead's example and the hand-made copy that quoted it.
    assert report.rows_rewritten["training.ExampleEmbedding"] == 2
    assert cache.get(query_cache_key(text=LEAD_TEXT)) is None
    assert cache.get(query_cache_key(text="How long is the course?")) is not None
