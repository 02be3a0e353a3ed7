"""Alerts: a handoff starts the wait (and notifies), an optional email after N minutes, once per wait."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from agent.inbox import services
from leads import services as lead_services
from leads.models import Lead, Notification
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


def test_a_handoff_starts_the_wait_and_notifies_once(operator):
    lead = LeadFactory()
    assert lead_services.lead_flag_for_human(lead=lead, reason="asked for a person", pause_bot=True)
    first = Lead.objects.get(pk=lead.pk).waiting_since
    assert first is not None
    assert not lead_services.lead_flag_for_human(lead=lead, reason="again", pause_bot=True)
    assert Lead.objects.get(pk=lead.pk).waiting_since == first  # the earliest time is kept
    assert Notification.objects.filter(recipient=operator).count() == 1


def test_email_after_n_minutes_once_per_wait(settings, operator, manager):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    now = timezone.now()
    mine = LeadFactory(
        first_name="Lena", last_name="Park", waiting_since=now - timedelta(minutes=20), assignee=operator
    )
    anyone = LeadFactory(first_name="Ivo", waiting_since=now - timedelta(minutes=16))
    LeadFactory(waiting_since=now - timedelta(minutes=5))  # not yet
    assert services.inbox_alert_waiting(minutes=0) == []  # off by default
    assert services.inbox_alert_waiting(minutes=15, now=now) == [mine.pk, anyone.pk]
    assert [m.to for m in mail.outbox] == [[operator.email], sorted([operator.email, manager.email])]
    assert "Lena Park has waited 20 minutes" in mail.outbox[0].subject
    assert f"/dashboard/inbox/{mine.pk}/" in mail.outbox[0].body
    assert services.inbox_alert_waiting(minutes=15, now=now) == []  # once per wait
    assert len(mail.outbox) == 2


def test_console_email_backend_by_default():
    from django.conf import settings

    assert settings.EMAIL_BACKEND in (
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",  # Django's test runner swaps it in
    )
