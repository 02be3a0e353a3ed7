"""Message.delivery_status holds two state machines; the database keeps each to its role."""

import pytest
from django.db import IntegrityError, transaction

from leads.models import OUTBOUND_STATUSES, TURN_STATUSES, DeliveryStatus, MessageRole
from tests.factories import AgentMessageFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [s for s in DeliveryStatus if s not in TURN_STATUSES])
def test_a_lead_message_cannot_hold_a_delivery_state(status):
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(role=MessageRole.LEAD, delivery_status=status)


@pytest.mark.parametrize("status", [s for s in DeliveryStatus if s not in OUTBOUND_STATUSES])
def test_an_agent_message_cannot_hold_a_turn_state(status):
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentMessageFactory(delivery_status=status)


def test_every_state_belongs_to_a_role_and_processing_is_gone():
    assert set(TURN_STATUSES) | set(OUTBOUND_STATUSES) == set(DeliveryStatus)
    assert "processing" not in DeliveryStatus.values
    MessageFactory(role=MessageRole.LEAD, delivery_status=DeliveryStatus.FAILED)
    AgentMessageFactory(delivery_status=DeliveryStatus.UNDELIVERABLE)
