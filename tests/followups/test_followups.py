"""Follow-ups end to end: the beat finds the silent lead, the active version writes the follow-up through the
fake OpenAI server, and it goes out once through the fake ManyChat's sendContent."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agent.followups import selectors, services, tasks
from agent.followups.models import FollowUp, FollowUpStatus
from agent.followups.rules import FollowUpConfig
from leads.models import Activity, Lead, MessageRole
from tests.factories import LeadFactory, MessageFactory, UserFactory
from tests.followups.conftest import at

pytestmark = pytest.mark.django_db

FOLLOW = {
    "reply": "Just checking in: did you have a chance to think about your goals?",
    "qualified": False,
    "lead_fields": {},
    "handoff": False,
    "handoff_reason": None,
}


def test_a_silent_lead_gets_one_follow_up_written_by_the_active_version(
    silent_lead, active_version, fake_openai, fake_manychat, django_capture_on_commit_callbacks
):
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=5)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_due() == 1
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert tasks.send_due() == 0
    assert queued == []  # step 1 is done; step 2 is not due for 15 hours

    followup = FollowUp.objects.get(lead=lead)
    assert (followup.status, followup.step, followup.after_message_id) == (FollowUpStatus.SENT, 1, reply.pk)
    message = followup.message
    assert message.role == MessageRole.AGENT and message.prompt_version_id == active_version.pk
    assert message.text == FOLLOW["reply"] and message.delivery_status == "sent"
    assert fake_manychat.sent_texts() == [FOLLOW["reply"]]
    assert fake_openai.last_messages()[-1]["content"].startswith("[Not from the lead")
    assert Activity.objects.filter(lead=lead, verb="agent.followup_sent").count() == 1


def test_the_second_step_comes_at_twenty_hours_and_never_a_third(silent_lead, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    lead, _ = silent_lead(hours_ago=5)
    assert services.followup_send(lead_id=lead.pk).state == "sent"
    first = FollowUp.objects.get(lead=lead)
    FollowUp.objects.filter(pk=first.pk).update(sent_at=timezone.now() - timedelta(hours=16))
    later = timezone.now() + timedelta(hours=16)
    assert services.followup_send(lead_id=lead.pk, now=later).state == "sent"
    assert services.followup_send(lead_id=lead.pk, now=later + timedelta(hours=1)).state == "all_sent"
    assert list(FollowUp.objects.filter(lead=lead).order_by("step").values_list("step", flat=True)) == [1, 2]
    assert len(fake_manychat.sent_texts()) == 2


@pytest.mark.parametrize(
    ("change", "state"),
    [
        ("reply", "not_silent"),
        ("pause", "paused"),
        ("handoff", "handed_off"),
        ("takeover", "taken_over"),
        ("operator", "taken_over"),
        ("quiet", "quiet_hours"),
        ("window", "window_closed"),
        ("early", "not_due"),
        ("cap", "lead_daily_cap"),
    ],
)
def test_no_follow_up_when_a_rule_says_no(change, state, silent_lead, settings, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=25 if change == "window" else 2 if change == "early" else 5)
    now = timezone.now()
    if change == "reply":
        at(MessageFactory(conversation=reply.conversation, text="Let me think"), now - timedelta(hours=1))
    elif change == "pause":
        Lead.objects.filter(pk=lead.pk).update(bot_paused=True)
    elif change == "handoff":
        Lead.objects.filter(pk=lead.pk).update(needs_human=True)
    elif change == "takeover":
        Lead.objects.filter(pk=lead.pk).update(taken_over_by=UserFactory(), taken_over_at=now)
    elif change == "operator":
        MessageFactory(
            conversation=reply.conversation,
            role=MessageRole.OPERATOR,
            text="Hi, Sam here",
            delivery_status="sent",
        )
    elif change == "quiet":
        hour = now.hour
        settings.FOLLOWUP_QUIET_HOURS = f"{hour}-{(hour + 1) % 24}"
    elif change == "cap":
        settings.FOLLOWUP_LEAD_DAILY_MESSAGE_CAP = 1
    assert services.followup_send(lead_id=lead.pk).state == state
    assert services.followup_due_lead_ids() == []
    assert fake_manychat.sent_texts() == [] and fake_openai.calls == 0
    assert not FollowUp.objects.exists()


def test_no_follow_up_in_draft_mode(silent_lead, settings, fake_openai, fake_manychat):
    settings.AGENT_DRAFT_MODE = True  # a person sends every agent message: nothing goes out unasked
    lead, _ = silent_lead(hours_ago=5)
    assert services.followup_send(lead_id=lead.pk).state == "draft_mode"
    assert fake_manychat.sent_texts() == [] and fake_openai.calls == 0 and not FollowUp.objects.exists()


def test_quiet_hours_are_the_leads_own_from_manychat(silent_lead, settings, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    now = timezone.now()
    settings.FOLLOWUP_QUIET_HOURS = f"{(now.hour + 12) % 24}-{(now.hour + 13) % 24}"  # quiet for the team? no
    lead, _ = silent_lead(hours_ago=5, tz="UTC+12")  # ... but it is the lead's quiet hour
    assert services.followup_send(lead_id=lead.pk).state == "quiet_hours"
    Lead.objects.filter(pk=lead.pk).update(timezone="")  # the team's timezone (UTC) is awake
    assert services.followup_send(lead_id=lead.pk).state == "sent"


@pytest.mark.parametrize("text", ["STOP", "unsubscribe", "arrête", "basta"])
def test_an_opt_out_stops_every_follow_up_and_is_recorded(text, silent_lead, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=6)
    stop = at(
        MessageFactory(conversation=reply.conversation, text=text),
        timezone.now() - timedelta(hours=5, minutes=59),
    )
    # The agent answered the opt-out, so the lead is silent after the agent's message again.
    at(
        MessageFactory(
            conversation=reply.conversation,
            role=MessageRole.AGENT,
            text="Okay!",
            delivery_status="sent",
            in_reply_to=stop,
        ),
        timezone.now() - timedelta(hours=5, minutes=58),
    )
    Lead.objects.filter(pk=lead.pk).update(last_message_at=stop.created_at)

    assert services.followup_due_lead_ids() == []
    lead.refresh_from_db()
    assert lead.followups_opted_out_at is not None
    assert Activity.objects.get(lead=lead, verb="lead.opted_out").data == {"message_id": stop.pk}
    assert services.followup_send(lead_id=lead.pk).state == "opted_out"
    assert fake_manychat.sent_texts() == [] and not FollowUp.objects.exists()


def test_two_workers_never_send_the_same_step(silent_lead, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=5)
    FollowUp.objects.create(lead=lead, conversation=reply.conversation, after_message=reply, step=1)
    # The other worker's claim (still being written) counts: this step is taken, the next is not due.
    assert services.followup_send(lead_id=lead.pk).state == "not_due"
    assert fake_manychat.sent_texts() == []


def test_the_claim_is_the_last_word(silent_lead, fake_openai, fake_manychat, monkeypatch):
    """Two workers past the rule at once: the unique row lets one through."""
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=5)
    real = selectors.lead_timelines

    def racing(**kwargs):
        facts = real(**kwargs)
        if kwargs.get("ignore_followup_id") is None:  # the other worker claims between read and claim
            FollowUp.objects.get_or_create(
                lead=lead, conversation=reply.conversation, after_message=reply, step=1
            )
        return facts

    monkeypatch.setattr(selectors, "lead_timelines", racing)
    assert services.followup_send(lead_id=lead.pk).state == "claimed_elsewhere"
    assert fake_manychat.sent_texts() == [] and fake_openai.calls == 0


def test_a_reply_while_the_model_writes_cancels_the_follow_up(
    silent_lead, fake_openai, fake_manychat, monkeypatch
):
    fake_openai.reply_with(FOLLOW)
    lead, reply = silent_lead(hours_ago=5)
    real = services.turn.turn_decide

    def slow_model(**kwargs):  # the lead writes while the model call is out
        decision = real(**kwargs)
        MessageFactory(conversation=reply.conversation, text="Sorry, was busy! Yes I'm interested")
        return decision

    monkeypatch.setattr(services.turn, "turn_decide", slow_model)
    assert services.followup_send(lead_id=lead.pk).state == "not_silent"
    followup = FollowUp.objects.get(lead=lead)
    assert followup.status == FollowUpStatus.SKIPPED and followup.message is None
    assert fake_manychat.sent_texts() == []


def test_a_refused_fact_or_a_handoff_is_not_pushed(silent_lead, fake_openai, fake_manychat):
    fake_openai.reply_with({**FOLLOW, "handoff": True, "handoff_reason": "wants a person"})
    lead, _ = silent_lead(hours_ago=5)
    assert services.followup_send(lead_id=lead.pk).state == "refused"
    assert FollowUp.objects.get(lead=lead).status == FollowUpStatus.SKIPPED
    assert fake_manychat.sent_texts() == []
    # The step is used: the beat does not queue the lead again for it; the next step comes at 20 h.
    assert services.followup_due_lead_ids() == []
    assert services.followup_send(lead_id=lead.pk).state == "not_due"


def test_the_team_daily_cap(
    silent_lead, settings, fake_openai, fake_manychat, django_capture_on_commit_callbacks
):
    fake_openai.reply_with(FOLLOW)
    settings.FOLLOWUP_DAILY_CAP = 1
    first, _ = silent_lead(hours_ago=5)
    second, _ = silent_lead(hours_ago=5)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.send_due() == 2
    assert sorted(FollowUp.objects.values_list("status", flat=True)) == ["sent"]
    assert len(fake_manychat.sent_texts()) == 1


def test_the_candidate_query_reads_only_recent_leads(silent_lead, django_assert_num_queries):
    """The beat's read is a range on the leads' last-message index: old leads are never loaded, and the
    number of queries does not grow with the number of candidates."""
    for _ in range(3):
        silent_lead(hours_ago=5)
    LeadFactory.create_batch(5, last_message_at=timezone.now() - timedelta(days=3))
    config = FollowUpConfig.from_settings()
    now = timezone.now()
    leads = selectors.followup_candidate_leads(now=now, config=config, limit=100)
    assert len(leads) == 3
    with CaptureQueriesContext(connection) as queries:
        facts = selectors.lead_timelines(leads=leads, now=now, opt_out=lambda text: False)
    assert len(queries) == 3 and len(facts) == 3
    silent_lead(hours_ago=5)
    more = selectors.followup_candidate_leads(now=now + timedelta(seconds=1), config=config, limit=100)
    with django_assert_num_queries(3):
        selectors.lead_timelines(leads=more, now=now, opt_out=lambda text: False)


def test_the_candidate_query_uses_the_last_message_index(db):
    """The beat's read of candidate leads is an index range, on PostgreSQL and on SQLite alike."""
    config = FollowUpConfig.from_settings()
    now = timezone.now()
    queryset = selectors.Lead.objects.filter(
        last_message_at__gt=now - timedelta(hours=24), last_message_at__lte=now - config.delays[0]
    ).order_by("last_message_at")
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table would be scanned anyway
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
    assert "lead_last_message_idx" in plan, plan


def test_comebacks_per_version_with_an_interval(silent_lead, active_version, fake_openai, fake_manychat):
    fake_openai.reply_with(FOLLOW)
    leads = [silent_lead(hours_ago=5)[0] for _ in range(4)]
    for lead in leads:
        assert services.followup_send(lead_id=lead.pk).state == "sent"
    for lead in leads[:3]:  # three of four wrote again after the follow-up
        conversation = lead.conversations.get()
        MessageFactory(conversation=conversation, text="Back! Yes, tell me more")
    # A fifth silence whose step 1 was held back and step 2 went out counts once, by its step 2.
    fifth, reply = silent_lead(hours_ago=5)
    FollowUp.objects.create(
        lead=fifth,
        conversation=reply.conversation,
        after_message=reply,
        step=1,
        status=FollowUpStatus.SKIPPED,
    )
    FollowUp.objects.create(
        lead=fifth,
        conversation=reply.conversation,
        after_message=reply,
        step=2,
        status=FollowUpStatus.SENT,
        sent_at=timezone.now(),
        prompt_version=active_version,
    )
    rows = selectors.followup_comebacks_by_version()
    assert [(r.version, r.silences, r.came_back, r.followups) for r in rows] == [
        (active_version.version, 5, 3, 5)
    ]
    low, high = rows[0].interval
    assert low < 0.6 < high and rows[0].rate == 0.6


def test_over_the_agents_daily_cap_no_follow_up_is_written(silent_lead, settings, fake_openai, fake_manychat):
    """The agent's own caps (agent/budget.py) hold for follow-ups: over the lead's daily tokens, the step is
    skipped with the cap named, no model call, nothing sent, and no handoff (the lead asked for nothing)."""
    from django.core.cache import cache

    fake_openai.reply_with(FOLLOW)
    cache.clear()
    settings.AGENT_LEAD_DAILY_TOKEN_CAP = 100  # the lead's reply today already used 160 tokens
    lead, _ = silent_lead(hours_ago=5)
    assert services.followup_send(lead_id=lead.pk).state == "budget_cap"
    followup = FollowUp.objects.get(lead=lead)
    assert followup.status == FollowUpStatus.SKIPPED and followup.reason.startswith("budget_cap: ")
    assert fake_openai.calls == 0 and fake_manychat.sent_texts() == []
    lead.refresh_from_db()
    assert not lead.needs_human
