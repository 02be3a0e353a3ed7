"""The follow-ups and scoring page: who may see it, its figures, and a query count that does not grow."""

import pytest
from django.utils import timezone

from agent.followups.models import FollowUp, FollowUpStatus
from agent.scoring.models import ConversationScore, ScoreCheck
from tests.factories import AgentMessageFactory, MessageFactory

pytestmark = pytest.mark.django_db
URL = "/dashboard/followups-scoring/"


def _followed_up(silent_lead, version, *, came_back: bool):
    lead, reply = silent_lead(hours_ago=5, version=version)
    sent = AgentMessageFactory(
        conversation=reply.conversation, prompt_version=version, delivery_status="sent"
    )
    FollowUp.objects.create(
        lead=lead,
        conversation=reply.conversation,
        after_message=reply,
        step=1,
        status=FollowUpStatus.SENT,
        sent_at=timezone.now(),
        message=sent,
        prompt_version=version,
    )
    if came_back:
        MessageFactory(conversation=reply.conversation, text="I'm back")
    return reply


def _scored(reply, *, passed: bool):
    score = ConversationScore.objects.create(
        conversation=reply.conversation,
        through_message=reply,
        prompt_version=reply.prompt_version,
        passed=passed,
        failed_check="" if passed else "Polite",
    )
    ScoreCheck.objects.create(
        score=score, name="Polite", kind="judged", passed=passed, prompt_version=reply.prompt_version
    )


def test_signed_out_goes_to_login_and_a_user_without_the_permission_gets_403(client, make_user):
    assert client.get(URL).status_code == 302
    client.force_login(make_user(username="no-role"))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("rows", [2, 6])
def test_figures_and_a_fixed_query_count(
    client, make_user, silent_lead, active_version, rows, django_assert_num_queries
):
    replies = [_followed_up(silent_lead, active_version, came_back=i % 2 == 0) for i in range(rows)]
    for i, reply in enumerate(replies):
        _scored(reply, passed=i % 3 != 0)
    client.force_login(make_user("viewer"))
    client.get(URL)  # warm the session and content types
    with django_assert_num_queries(13):
        response = client.get(URL)
    assert response.status_code == 200
    comebacks = response.context["comebacks"]
    assert [(r["version"], r["silences"], r["came_back"]) for r in comebacks] == [
        (active_version.version, rows, (rows + 1) // 2)
    ]
    passed = sum(1 for i in range(rows) if i % 3 != 0)
    assert response.context["per_check"][0]["passed"] == passed
    assert response.context["per_check"][0]["judged"] == rows
    body = response.content.decode()
    assert 'data-testid="table-comebacks"' in body and 'id="scoring-data"' in body
