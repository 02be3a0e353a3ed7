"""Every conversation scored: idle conversations judged through the fake OpenAI server, failing ones (and a
reproducible sample of passing ones) in the review queue with the failed check and its turn."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from agent.scoring import selectors, services, tasks
from agent.scoring.models import ConversationScore, ScoreCheck, ScoreStatus
from leads.models import Message
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)
from training.models import TrainingExample
from training.review.selectors import ExampleFilters, example_source, examples_filtered

pytestmark = pytest.mark.django_db

MARKER = "You grade a real sales conversation"
QUESTIONS = "At most N questions in one message"


@pytest.fixture(autouse=True)
def _scoring_settings(settings):
    settings.SCORING_IDLE_HOURS = 12.0
    settings.SCORING_SAMPLE_RATE = 1.0
    settings.SCORING_REVIEW_PASSING_RATE = 0.0
    settings.SCORING_DAILY_TOKEN_CAP = 1_000_000
    settings.SCORING_RUBRIC = json.dumps(
        [
            {"kind": "max_questions", "params": {"max": 1}},
            {"kind": "judged", "name": "Polite", "params": {"rubric": "The agent is polite."}},
        ]
    )


def _at(message, when):
    Message.objects.filter(pk=message.pk).update(created_at=when)
    message.created_at = when
    return message


def idle_conversation(*, hours_ago=13.0, agent_text="Great! What is your budget?", version=None):
    wrote = timezone.now() - timedelta(hours=hours_ago)
    lead = LeadFactory(last_message_at=wrote)
    conversation = ConversationFactory(lead=lead, last_message_at=wrote)
    asked = _at(MessageFactory(conversation=conversation, text="Hi, I want to get fit"), wrote)
    reply = _at(
        AgentMessageFactory(
            conversation=conversation,
            in_reply_to=asked,
            text=agent_text,
            prompt_version=version or PromptVersionFactory(),
        ),
        wrote + timedelta(seconds=4),
    )
    return conversation, reply


def judge(fake, passed: bool, reason: str = "ok"):
    fake.route(
        MARKER, fake.completion({"pass": passed, "reason": reason}, prompt_tokens=300, completion_tokens=20)
    )


def test_a_failing_conversation_lands_in_the_review_queue_with_its_check_and_turn(fake_openai):
    judge(fake_openai, True)
    conversation, reply = idle_conversation(agent_text="Great! What is your budget? And when can you start?")

    assert tasks.score_idle() == {"scored": 1, "sampled_out": 0, "over_budget": 0}

    score = ConversationScore.objects.get(conversation=conversation)
    assert (score.passed, score.failed_check, score.failed_turn) == (False, QUESTIONS, 2)
    assert score.tokens == 320 and score.prompt_version_id == reply.prompt_version_id
    assert {c.name: c.passed for c in ScoreCheck.objects.filter(score=score)} == {
        QUESTIONS: False,
        "Polite": True,
    }
    example = TrainingExample.objects.get(message=reply)
    assert example.status == "pending" and example.example_type == "bad"
    assert example_source(example) == "scoring"
    assert example.metadata["check"] == QUESTIONS and example.metadata["turn"] == 2
    assert "failed on turn 2" in example.feedback
    assert example.user_message == "Hi, I want to get fit" and example.ai_response == reply.text
    queue = examples_filtered(filters=ExampleFilters(source="scoring"))
    assert list(queue) == [example]
    # The judge saw the conversation as data under the scoring instructions.
    assert fake_openai.calls == 1


def test_the_judge_failing_a_check_fails_the_conversation(fake_openai):
    judge(fake_openai, False, "The agent was curt.")
    conversation, reply = idle_conversation()
    services.scoring_run_due()
    score = ConversationScore.objects.get(conversation=conversation)
    assert (score.passed, score.failed_check, score.failed_turn) == (False, "Polite", None)
    example = TrainingExample.objects.get(message=reply)  # no turn: the last agent reply
    assert "The agent was curt." in example.feedback


def test_a_passing_conversation_stays_out_unless_sampled(fake_openai, settings):
    judge(fake_openai, True)
    conversations = [idle_conversation()[0] for _ in range(12)]
    settings.SCORING_REVIEW_PASSING_RATE = 0.5
    services.scoring_run_due()
    picked = {c.pk for c in conversations if services.in_review_sample(c.pk)}
    assert 0 < len(picked) < 12  # the seeded sample picks some, not all
    in_queue = set(TrainingExample.objects.values_list("conversation_id", flat=True))
    assert in_queue == picked
    assert set(TrainingExample.objects.values_list("example_type", flat=True)) == {"good"}
    # Reproducible: the same conversation ids pick the same sample, run after run.
    assert picked == {c.pk for c in conversations if services.in_review_sample(c.pk)}


def test_each_idle_conversation_is_scored_once_and_again_after_it_goes_on(fake_openai):
    judge(fake_openai, True)
    conversation, _ = idle_conversation()
    assert services.scoring_run_due()["scored"] == 1
    assert services.scoring_run_due()["scored"] == 0
    wrote = timezone.now() - timedelta(hours=12, minutes=30)
    _at(MessageFactory(conversation=conversation, text="One more thing"), wrote)
    conversation.lead.__class__.objects.filter(pk=conversation.lead_id).update(last_message_at=wrote)
    type(conversation).objects.filter(pk=conversation.pk).update(last_message_at=wrote)
    assert services.scoring_run_due()["scored"] == 1
    assert ConversationScore.objects.filter(conversation=conversation).count() == 2


def test_not_idle_yet_is_not_scored(fake_openai):
    judge(fake_openai, True)
    idle_conversation(hours_ago=3)
    assert services.scoring_run_due() == {"scored": 0, "sampled_out": 0, "over_budget": 0}
    assert fake_openai.calls == 0


def test_the_daily_budget_stops_scoring_before_it_starts(fake_openai, settings):
    judge(fake_openai, True)
    settings.SCORING_DAILY_TOKEN_CAP = 500
    for _ in range(3):
        idle_conversation()
    counts = services.scoring_run_due()
    # 320 tokens each: the first is under the cap, the second takes it over, the third waits.
    assert counts == {"scored": 2, "sampled_out": 0, "over_budget": 1}
    assert fake_openai.calls == 2
    assert services.scoring_tokens_today(now=timezone.now()) == 640


def test_the_sampling_rate(fake_openai, settings):
    judge(fake_openai, True)
    settings.SCORING_SAMPLE_RATE = 0.0
    conversation, _ = idle_conversation()
    assert services.scoring_run_due()["sampled_out"] == 1
    assert ConversationScore.objects.get(conversation=conversation).status == ScoreStatus.SAMPLED_OUT
    assert fake_openai.calls == 0


def test_without_a_rubric_setting_the_rehearsal_shared_checks_are_the_rubric(settings):
    from agent.rehearsal.models import SharedCheck

    settings.SCORING_RUBRIC = ""
    assert [s.kind for s in services.scoring_rubric()] == [r["kind"] for r in services.DEFAULT_RUBRIC]
    SharedCheck.objects.create(name="Never promise", kind="never_promise", params={"phrases": ["guaranteed"]})
    SharedCheck.objects.create(name="Catalog prices", kind="allowed_prices", params={"catalog": True})
    assert [s.label for s in services.scoring_rubric()] == ["Never promise"]


def test_pass_rates_per_check_and_version_match_the_rows(fake_openai):
    judge(fake_openai, True)
    v1, v2 = PromptVersionFactory(), PromptVersionFactory()
    idle_conversation(version=v1, agent_text="Two? Questions?")
    idle_conversation(version=v1)
    idle_conversation(version=v2)
    services.scoring_run_due()
    figures = selectors.scoring_figures(days=7)
    assert figures.conversations == 3 and figures.passed == 2
    rates = {r.key: (r.passed, r.judged) for r in figures.per_check}
    assert rates == {QUESTIONS: (2, 3), "Polite": (3, 3)}
    versions = {r.key: (r.passed, r.judged) for r in figures.per_version}
    assert versions == {f"v{v1.version}": (1, 2), f"v{v2.version}": (1, 1)}
    today = figures.days[-1]
    assert today == timezone.localdate().isoformat()
    assert figures.series[QUESTIONS][-1] == pytest.approx(2 / 3)
    assert figures.version_series[f"v{v1.version}"][-1] == pytest.approx(1 / 2)
    assert figures.version_series[f"v{v2.version}"][-1] == 1.0
    assert figures.version_series[f"v{v1.version}"][0] is None  # a day without a score


def test_the_transcript_marks_the_agents_handoff_and_qualification(fake_openai, settings):
    """The rehearsal's checks read `handoff` and `qualified` on the agent's turns: taken from the lead's
    activities recorded by the turn that wrote the reply."""
    from leads import services as lead_services

    judge(fake_openai, True)
    settings.SCORING_RUBRIC = json.dumps([{"kind": "offered_call"}, {"kind": "handoff_when_asked"}])
    conversation, reply = idle_conversation(agent_text="You qualify! Happy to help.")
    lead_services.lead_set_status(lead=conversation.lead, status="qualified", reason="agent")
    asked = _at(
        MessageFactory(conversation=conversation, text="Can I talk to a real person?"),
        timezone.now() - timedelta(hours=12, minutes=59),
    )
    _at(
        AgentMessageFactory(conversation=conversation, in_reply_to=asked, text="Sure, connecting you now."),
        timezone.now() - timedelta(hours=12, minutes=58),
    )
    lead_services.lead_flag_for_human(lead=conversation.lead, reason="asked", pause_bot=True)
    # The activities happened "now"; move them to just after the replies they belong to.
    from leads.models import Activity

    Activity.objects.filter(verb="lead.status_changed").update(
        created_at=reply.created_at + timedelta(seconds=1)
    )
    Activity.objects.filter(verb="lead.handed_off").update(
        created_at=timezone.now() - timedelta(hours=12, minutes=58) + timedelta(seconds=1)
    )
    rows = services.conversation_transcript(conversation=conversation).rows
    assert [(r["role"], r["qualified"], r["handoff"]) for r in rows] == [
        ("lead", False, False),
        ("agent", True, False),
        ("lead", False, False),
        ("agent", False, True),
    ]
    services.scoring_run_due()
    score = ConversationScore.objects.get(conversation=conversation)
    # Qualified on turn 2 and never offered a call; handed off when asked.
    assert (score.passed, score.failed_turn) == (False, 2)
    assert {c.kind: c.passed for c in ScoreCheck.objects.filter(score=score)} == {
        "offered_call": False,
        "handoff_when_asked": True,
    }
