"""What the agent writes into ManyChat: custom fields, the handoff tag, the qualification flow."""

import pytest

from agent.manychat_platform import services, tasks
from tests.factories import LeadFactory


@pytest.fixture
def account(settings, fake_manychat):
    settings.MANYCHAT_STAGE_FIELD = "lead_stage"
    settings.MANYCHAT_FIELD_MAP = {
        "budget": "lead_budget",
        "timeline": "lead_timeline",
        "goal": "not_in_account",
    }
    fake_manychat.custom_fields += [
        {"id": 13, "name": "lead_budget", "type": "number", "description": ""},
        {"id": 14, "name": "lead_timeline", "type": "date", "description": ""},
    ]
    return fake_manychat


@pytest.mark.django_db
def test_learned_fields_go_into_existing_fields_typed(account):
    lead = LeadFactory(
        status="qualified",
        qualification_data={
            "budget": "2,000",
            "timeline": "2027-01-15",
            "goal": "lose weight",
            "manychat_fields": {"lead_budget": 1},
        },
    )
    written = services.lead_fields_push(lead_id=lead.pk)
    assert sorted(written) == ["lead_budget", "lead_stage", "lead_timeline"]  # not_in_account skipped
    (body,) = account.calls_to("/fb/subscriber/setCustomFields")
    assert body["subscriber_id"] == int(lead.manychat_subscriber_id)
    assert sorted(body["fields"], key=lambda f: f["field_id"]) == [
        {"field_id": 11, "field_value": "qualified"},
        {"field_id": 13, "field_value": 2000},
        {"field_id": 14, "field_value": "2027-01-15"},
    ]


@pytest.mark.django_db
def test_a_value_that_does_not_fit_the_field_type_is_skipped(account):
    lead = LeadFactory(status="engaged", qualification_data={"budget": "a lot", "timeline": "soon"})
    assert services.lead_fields_push(lead_id=lead.pk) == ["lead_stage"]


@pytest.mark.parametrize(
    ("value", "field_type", "typed"),
    [
        ("12.5", "number", 12.5),
        (True, "number", None),
        ("yes", "boolean", True),
        ("nah", "boolean", None),
        ("2027-01-15T10:00:00+00:00", "date", "2027-01-15"),
        ("x" * 2000, "text", "x" * 1000),
        ({"a": 1}, "text", None),
    ],
)
def test_field_value_typing(value, field_type, typed):
    assert services.field_value(value=value, field_type=field_type) == typed


@pytest.mark.django_db
def test_the_field_list_is_read_once_and_cached(account):
    lead = LeadFactory(status="qualified", qualification_data={"budget": 10})
    services.lead_fields_push(lead_id=lead.pk)
    services.lead_fields_push(lead_id=lead.pk)
    assert len([r for r in account.requests if r.path == "/fb/page/getCustomFields"]) == 1


@pytest.mark.django_db
def test_handoff_tag_removed_when_the_bot_is_resumed(settings, account):
    settings.MANYCHAT_HANDOFF_TAG = "needs_human"
    lead = LeadFactory()
    assert tasks.remove_handoff_tag.apply(args=[lead.pk]).get() is True
    assert account.calls_to("/fb/subscriber/removeTagByName") == [
        {"subscriber_id": int(lead.manychat_subscriber_id), "tag_name": "needs_human"}
    ]


@pytest.mark.django_db
def test_qualified_flow_is_sent_only_when_configured(settings, account):
    lead = LeadFactory()
    settings.MANYCHAT_QUALIFIED_FLOW_NS = ""
    assert services.lead_qualified_flow_send(lead_id=lead.pk) is False
    settings.MANYCHAT_QUALIFIED_FLOW_NS = "content20261201_42"
    assert tasks.send_qualified_flow.apply(args=[lead.pk]).get() is True
    assert account.calls_to("/fb/sending/sendFlow") == [
        {"subscriber_id": int(lead.manychat_subscriber_id), "flow_ns": "content20261201_42"}
    ]


@pytest.mark.django_db
def test_a_refusal_is_logged_not_retried(account, caplog):
    account.set_default(account.wrong_token())
    lead = LeadFactory()
    assert tasks.remove_handoff_tag.apply(args=[lead.pk]).get() is None
    assert account.calls == 1
    assert "token_invalid" in caplog.text
