"""Submitting from a conversation: the lead type-ahead, no preselected type, back to the conversation with
the next reply ready, and the submitter's own examples (status, reviewer's note) on the training page."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from leads.models import Lead
from tests.factories import LeadFactory, TrainingExampleFactory
from training.models import TrainingExample

pytestmark = pytest.mark.django_db
SEARCH = "/dashboard/training/submit/leads/"


def _submit(client, lead, reply, **extra):
    data = {
        "mode": "conversation",
        "conv-lead": lead.pk,
        "conv-message_id": reply.pk,
        "conv-example_type": "bad",
        "conv-feedback": "Too pushy",
    }
    data.update(extra)
    return client.post(reverse("dashboard:training_submit"), data)


def test_the_type_ahead_finds_any_lead_not_only_the_newest_200(client, operator):
    Lead.objects.bulk_create(
        Lead(manychat_subscriber_id=f"bulk{n}", first_name=f"Bulk{n}", channel="instagram")
        for n in range(230)
    )
    oldest = Lead.objects.order_by("id").first()
    oldest.first_name, oldest.username = "Zuleika", "zuleika.q"
    oldest.save(update_fields=["first_name", "username"])
    client.force_login(operator)
    body = client.get(SEARCH, {"q": "zuleika"}).json()
    assert [row["id"] for row in body["results"]] == [oldest.pk]
    assert body["results"][0]["username"] == "zuleika.q" and body["results"][0]["status"] == "New"
    # An empty query lists the most recent leads, at most 20.
    assert len(client.get(SEARCH).json()["results"]) == 20
    # The page no longer renders a select of leads at all: no cap to fall under.
    html = client.get(reverse("dashboard:training_submit")).content.decode()
    assert 'role="combobox"' in html and 'aria-controls="lead-options"' in html and "<select" not in html
    assert "js/combobox.js" in html and "<script>" not in html


@pytest.mark.parametrize(
    ("who", "params", "status"),
    [("viewer", {"q": "a"}, 403), (None, {"q": "a"}, 403), ("operator", {"q": "x" * 101}, 400)],
)
def test_the_type_ahead_refuses_bad_requests(client, make_user, who, params, status):
    if who:
        client.force_login(make_user(who))
    assert client.get(SEARCH, params).status_code == status


def test_without_javascript_the_picker_is_a_search_with_linked_matches(client, operator):
    ana = LeadFactory(first_name="Anabel", last_name="Ruiz")
    LeadFactory(first_name="Other", last_name="Person")
    client.force_login(operator)
    html = client.get(reverse("dashboard:training_submit"), {"lead_q": "anabel"}).content.decode()
    assert f'href="?lead={ana.pk}"' in html and "Other Person" not in html
    html = client.get(reverse("dashboard:training_submit"), {"lead_q": "nobody-like-this"}).content.decode()
    assert "No lead matches" in html


def test_no_type_is_preselected_and_submitting_without_one_says_so(client, operator, make_conversation):
    conversation, replies = make_conversation(1)
    client.force_login(operator)
    html = client.get(
        reverse("dashboard:training_submit"), {"lead": conversation.lead_id, "message": replies[0].pk}
    ).content.decode()
    radios = re.findall(r'<input type="radio" name="conv-example_type"[^>]*>', html)
    assert len(radios) == 3 and not any("checked" in radio for radio in radios)
    response = _submit(client, conversation.lead, replies[0], **{"conv-example_type": ""})
    assert response.status_code == 200
    assert "Choose whether this response is good, bad or needs a correction." in response.content.decode()
    assert not TrainingExample.objects.exists()


def test_after_a_submit_the_next_unflagged_reply_is_ready(client, operator, make_conversation):
    conversation, replies = make_conversation(4)
    lead = conversation.lead
    TrainingExampleFactory(conversation=conversation, message=replies[1], submitted_by=operator)
    client.force_login(operator)
    response = _submit(client, lead, replies[0])
    # replies[1] is flagged already: the next one to look at is replies[2].
    assert response.status_code == 302
    assert response["Location"] == f"/dashboard/training/submit/?lead={lead.pk}&message={replies[2].pk}"
    page = client.get(response["Location"])
    assert page.context["selected"].pk == replies[2].pk
    html = page.content.decode()
    assert "The next reply is selected." in html
    # On a phone the form is below the transcript: a bar jumps to it once a reply is chosen.
    assert 'href="#flag-panel" data-submit-jump >' in html and 'id="flag-panel"' in html
    # The last reply: back to the lead's page, at that reply.
    response = _submit(client, lead, replies[3])
    assert response["Location"] == f"/dashboard/leads/{lead.pk}/#message-{replies[3].pk}"


def test_the_training_page_shows_my_examples_with_status_and_the_reviewers_note(client, operator, manager):
    rejected = TrainingExampleFactory(
        submitted_by=operator,
        status="rejected",
        decided_by=manager,
        decided_at=timezone.now(),
        review_note="Prices changed in May.",
    )
    pending = TrainingExampleFactory(submitted_by=operator)
    TrainingExampleFactory(submitted_by=manager, review_note="not mine")
    client.force_login(operator)
    response = client.get(reverse("dashboard:training_home"))
    assert [e.pk for e in response.context["mine"]] == [pending.pk, rejected.pk]
    html = response.content.decode()
    section = html[html.index('data-testid="my-examples"') :]
    assert "Prices changed in May." in section and "not mine" not in section
    assert f'href="/dashboard/training/library/{rejected.pk}/"' in section
    assert "Rejected by" in section and "Pending" in section
