"""Status changes with an undo (and a confirmation for "lost"); notifications grouped per target, linked to
the exact example, and settled when the lead is resumed."""

from datetime import timedelta

import pytest
from django.urls import reverse

from leads import selectors, services
from leads.models import Activity, LeadStatus, Notification
from tests.factories import LeadFactory, NotificationFactory
from training import services as training_services

pytestmark = pytest.mark.django_db


def _act(client, lead, **data):
    return client.post(reverse("dashboard:lead_action", args=[lead.pk]), data)


def test_a_status_change_offers_undo_and_undo_restores_the_previous_status(client, operator):
    lead = LeadFactory(status=LeadStatus.QUALIFIED)
    client.force_login(operator)
    response = _act(client, lead, action="status", status="lost")
    change = Activity.objects.get(lead=lead, verb="lead.status_changed")
    assert response["Location"] == f"/dashboard/leads/{lead.pk}/?undo={change.pk}"
    html = client.get(response["Location"]).content.decode()
    assert 'data-testid="undo-toast"' in html and "Lead marked as Lost." in html
    assert f'name="activity" value="{change.pk}"' in html and "js/lead.js" in html

    response = _act(client, lead, action="undo", activity=change.pk)
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED
    undo = Activity.objects.filter(lead=lead, verb="lead.status_changed").latest("id")
    assert undo.data["undo_of"] == change.pk and undo.actor == operator
    page = client.get(response["Location"]).content.decode()
    assert "Undone: the lead is Qualified again." in page
    assert f"{operator.get_full_name()} undid the status change: the lead is qualified again" in page
    # Twice is refused (the undo is the newer change), and nothing changes.
    response = _act(client, lead, action="undo", activity=change.pk)
    assert (
        "The status has changed since; nothing was undone."
        in client.get(response["Location"]).content.decode()
    )
    lead.refresh_from_db()
    assert lead.status == LeadStatus.QUALIFIED
    assert Activity.objects.filter(lead=lead, verb="lead.status_changed").count() == 2


@pytest.mark.parametrize("case", ["too_late", "changed_since", "someone_else", "unknown"])
def test_undo_is_refused_when_it_would_be_wrong(client, operator, make_user, case):
    lead = LeadFactory(status=LeadStatus.NEW)
    actor = make_user("manager") if case == "someone_else" else operator
    services.lead_set_status(lead=lead, status=LeadStatus.LOST, actor=actor)
    change = Activity.objects.get(lead=lead, verb="lead.status_changed")
    if case == "too_late":
        Activity.objects.filter(pk=change.pk).update(
            created_at=change.created_at - timedelta(seconds=services.STATUS_UNDO_SECONDS + 1)
        )
    if case == "changed_since":
        services.lead_set_status(lead=lead, status=LeadStatus.QUALIFIED, actor=operator)
    activity_id = change.pk if case != "unknown" else change.pk + 999
    client.force_login(operator)
    # The page offers no toast for a change that cannot be undone.
    html = client.get(f"/dashboard/leads/{lead.pk}/?undo={activity_id}").content.decode()
    assert 'data-testid="undo-toast"' not in html
    status_before = lead.__class__.objects.get(pk=lead.pk).status
    response = _act(client, lead, action="undo", activity=activity_id)
    html = client.get(response["Location"]).content.decode()
    expected = {
        "too_late": "Too late to undo",
        "changed_since": "The status has changed since",
        "someone_else": "There is no status change of yours to undo.",
        "unknown": "There is no status change of yours to undo.",
    }[case]
    assert expected in html
    assert lead.__class__.objects.get(pk=lead.pk).status == status_before


def test_an_undone_qualification_is_not_counted(operator):
    lead = LeadFactory(status=LeadStatus.NEW)
    kept = LeadFactory(status=LeadStatus.NEW)
    services.lead_set_status(lead=lead, status=LeadStatus.QUALIFIED, actor=operator)
    services.lead_set_status(lead=kept, status=LeadStatus.QUALIFIED, actor=operator)
    change = Activity.objects.filter(lead=lead, verb="lead.status_changed").get()
    services.lead_status_undo(lead=lead, activity_id=change.pk, actor=operator)
    assert [q.lead_id for q in selectors.lead_qualifications_since()] == [kept.pk]


def test_marking_a_lead_lost_asks_for_confirmation(client, operator):
    lead = LeadFactory(first_name="Ana", last_name="Lima")
    client.force_login(operator)
    html = client.get(reverse("dashboard:lead_detail", args=[lead.pk])).content.decode()
    assert 'data-confirm="Mark Ana Lima as lost?' in html
    assert html.count("data-confirm=") == 1  # only "lost" asks


def test_resuming_the_lead_settles_its_notifications_for_everyone(operator, manager):
    lead = LeadFactory()
    other = LeadFactory()
    services.lead_flag_for_human(lead=lead, reason="Asked for a person", pause_bot=True)
    services.lead_flag_for_human(lead=other, reason="Asked for a person", pause_bot=True)
    assert Notification.objects.filter(read_at__isnull=True).count() == 4  # two leads x (operator, manager)
    services.lead_resume_bot(lead=lead, actor=operator)
    unread = Notification.objects.filter(read_at__isnull=True)
    assert {n.target_object_id for n in unread} == {str(other.pk)} and unread.count() == 2


def test_notifications_are_grouped_per_target_and_open_settles_the_group(client, operator):
    lead = LeadFactory(first_name="Grace")
    for n in range(3):
        NotificationFactory(
            recipient=operator, message=f"Grace wrote {n}", target=lead, url=f"/dashboard/leads/{lead.pk}/"
        )
    NotificationFactory(recipient=operator, message="Standalone one")
    NotificationFactory(recipient=operator, message="Standalone two")
    client.force_login(operator)
    response = client.get(reverse("dashboard:notifications"))
    groups = response.context["groups"]
    assert [g["notification"].message for g in groups] == [
        "Standalone two",
        "Standalone one",
        "Grace wrote 2",
    ]
    assert [g["total"] for g in groups] == [1, 1, 3]
    html = response.content.decode()
    assert "3 notifications about this" in html and "Grace wrote 0" not in html
    latest = groups[2]["notification"]
    response = client.post(reverse("dashboard:notifications"), {"notification_id": latest.pk, "open": "1"})
    assert response["Location"] == f"/dashboard/leads/{lead.pk}/"
    assert not Notification.objects.filter(target_object_id=str(lead.pk), read_at__isnull=True).exists()
    assert Notification.objects.filter(read_at__isnull=True).count() == 2


def test_training_notifications_link_to_the_exact_example(operator, manager):
    example = training_services.training_example_submit_manual(
        submitter=operator,
        user_message="Do you ship to Bath?",
        ai_response="No.",
        example_type="bad",
        feedback="We do ship to Bath.",
        expected_response="",
    )
    to_reviewer = Notification.objects.get(recipient=manager, verb="training.submitted")
    assert to_reviewer.url == f"/dashboard/training/library/{example.pk}/"
    training_services.training_example_reject(example=example, reviewer=manager, note="Fine as it was.")
    to_submitter = Notification.objects.get(recipient=operator, verb="training.rejected")
    assert to_submitter.url == f"/dashboard/training/library/{example.pk}/"
