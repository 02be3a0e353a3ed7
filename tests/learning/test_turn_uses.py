"""The examples the model saw are recorded with each reply and shown in the lead's conversation."""

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Message, MessageRole
from tests.factories import PromptVersionFactory, TrainingExampleFactory
from training.retrieval.models import ExampleUse
from training.review.fields import DECIDED_AT

pytestmark = pytest.mark.django_db


def test_a_turn_records_the_examples_shown_and_the_lead_page_lists_them(
    client, fake_openai, settings, operator
):
    settings.MANYCHAT_WEBHOOK_SECRET = "s3cret"
    settings.AGENT_ASYNC_MODE = False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    PromptVersionFactory(is_active=True, content="You are Ava.")
    relevant = TrainingExampleFactory(
        status="approved",
        **{DECIDED_AT: timezone.now()},
        user_message="Do you offer refunds?",
        ai_response="Yes, within 14 days.",
        feedback="Right.",
    )
    other = TrainingExampleFactory(
        status="approved",
        **{DECIDED_AT: timezone.now()},
        user_message="Where is the gym?",
        ai_response="Main street 5.",
        feedback="Right.",
    )
    body = {
        "subscriber_id": "777",
        "text": "Can I get refunded?",
        "channel": "instagram",
        "first_name": "Mia",
    }
    response = client.post(
        reverse("webhooks:manychat"),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_WEBHOOK_SECRET="s3cret",
    )
    assert response.status_code == 200
    reply = Message.objects.get(role=MessageRole.AGENT)
    uses = list(ExampleUse.objects.filter(message=reply).order_by("rank"))
    assert [u.example_id for u in uses] == [relevant.pk, other.pk]
    assert uses[0].score > 0 and uses[0].method in ("fulltext", "words") and uses[1].method == "recent"
    system = fake_openai.last_messages()[0]["content"]
    assert system.index("Do you offer refunds?") < system.index("Where is the gym?")

    client.force_login(operator)
    page = client.get(reverse("dashboard:lead_detail", args=[reply.conversation.lead_id])).content.decode()
    assert "2 examples seen" in page and f"/dashboard/training/library/{relevant.pk}/" in page
