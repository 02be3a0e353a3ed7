"""`manage.py manychat_check` against the fake ManyChat: page info, tags and fields the settings name."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.fixture
def account(settings, fake_manychat):
    settings.MANYCHAT_QUALIFIED_TAG = "qualified"
    settings.MANYCHAT_HANDOFF_TAG = "needs_human"
    settings.MANYCHAT_STAGE_FIELD = "lead_stage"
    settings.MANYCHAT_CONTACT_TOKEN_FIELD = "ai_contact_token"
    settings.MANYCHAT_FIELD_MAP = {"budget": "lead_budget"}
    fake_manychat.custom_fields.append({"id": 13, "name": "lead_budget", "type": "number", "description": ""})
    return fake_manychat


def run(capsys) -> tuple[int, str]:
    try:
        call_command("manychat_check")
    except CommandError as exc:
        return exc.returncode, capsys.readouterr().out + str(exc)
    return 0, capsys.readouterr().out


def test_everything_present_exits_zero(account, capsys):
    code, out = run(capsys)
    assert code == 0, out
    assert "Page: Acme Gyms (id 123456)" in out
    assert "MISSING" not in out
    assert [r.path for r in account.requests] == [
        "/fb/page/getInfo",
        "/fb/page/getTags",
        "/fb/page/getCustomFields",
    ]
    assert all(r.headers["authorization"] == f"Bearer {account.token}" for r in account.requests)


def test_a_missing_tag_and_a_missing_field_are_named_and_exit_non_zero(account, capsys):
    account.tags = [{"id": 1, "name": "qualified"}]  # no needs_human
    account.custom_fields = [f for f in account.custom_fields if f["name"] != "lead_budget"]
    code, out = run(capsys)
    assert code == 1
    assert "MISSING tag 'needs_human'  (MANYCHAT_HANDOFF_TAG)" in out
    assert "MISSING field 'lead_budget'  (MANYCHAT_FIELD_MAP (budget))" in out
    assert (
        "- tag 'needs_human'" in out
        and "- custom field of type text, number, date or boolean 'lead_budget'" in out
    )
    assert "2 missing in ManyChat" in out
    assert "ok      tag 'qualified'" in out


def test_a_wrong_token_exits_2_with_the_reason(account, capsys):
    account.set_default(account.wrong_token())
    code, out = run(capsys)
    assert code == 2
    assert "Wrong token" in out and "MANYCHAT_API_TOKEN" in out


def test_no_token_exits_2_without_calling(settings, account, capsys):
    settings.MANYCHAT_API_TOKEN = ""
    code, out = run(capsys)
    assert code == 2
    assert account.calls == 0
