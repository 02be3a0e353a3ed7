import json

import pytest
from django.core.exceptions import ValidationError

from agent import evaluation
from agent.models import EvaluationResult, EvaluationRun, EvaluationStatus
from agent.tasks import evaluate_prompt
from leads.models import Channel
from tests.evaluation.conftest import JUDGE_MARKER
from tests.factories import AgentMessageFactory, ConversationFactory, LeadFactory, MessageFactory
from training.models import ExampleType

pytestmark = pytest.mark.django_db

# The fake's default usage: 120 prompt + 30 completion tokens per agent call; the judge 200 + 10.
AGENT_TOKENS = 150
JUDGE_TOKENS = 210


def _run(version, **kwargs) -> EvaluationRun:
    run = evaluation.evaluation_run_create(version=version, schedule=False, **kwargs)
    evaluation.evaluation_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_every_example_is_replayed_judged_and_stored_with_a_judge_that_fails_one(model, approved, versions):
    _, draft = versions
    good = approved(ExampleType.GOOD, user_message="Do you have a gym near Lyon?", ai_response="Yes, two!")
    refund = approved(ExampleType.BAD, user_message="Can I get a refund?", ai_response="No refunds, ever.")
    model.agent("Yes! We have two clubs in Lyon. Want a free trial week?")
    model.judge(
        lambda data: (
            (False, "It ignores the refund question.")
            if "refund" in data["lead_message"]
            else (True, "Same facts as the good reply.")
        )
    )

    run = _run(draft)

    assert (run.status, run.total, run.processed, run.passed) == (EvaluationStatus.DONE, 2, 2, 1)
    assert run.tokens == 2 * (AGENT_TOKENS + JUDGE_TOKENS)
    assert run.started_at is not None and run.finished_at is not None
    results = {r.training_example_id: r for r in EvaluationResult.objects.filter(run=run)}
    assert results[good.pk].passed is True
    assert results[good.pk].reason == "Same facts as the good reply."
    assert results[refund.pk].passed is False
    assert results[refund.pk].reason == "It ignores the refund question."
    assert results[refund.pk].checks["judge"] == {
        "passed": False,
        "detail": "It ignores the refund question.",
        "model": "fake-gpt",
    }
    assert results[refund.pk].checks["similarity"]["passed"] is True  # not a repeat of the bad reply
    assert results[refund.pk].reply == "Yes! We have two clubs in Lyon. Want a free trial week?"
    assert results[refund.pk].tokens == AGENT_TOKENS + JUDGE_TOKENS
    # The judge saw the example and the candidate as data.
    graded = [json.loads(r.json()["messages"][1]["content"]) for r in model.judge_calls()]
    bad_call = next(g for g in graded if g["example_type"] == "bad")
    assert bad_call["bad_reply"] == "No refunds, ever." and bad_call["candidate_reply"].startswith("Yes!")


def test_the_replay_uses_the_version_the_conversation_so_far_and_leaves_the_example_out(
    model, approved, versions
):
    _, draft = versions
    conversation = ConversationFactory(lead=LeadFactory(channel=Channel.WHATSAPP))
    MessageFactory(conversation=conversation, text="Hi, I saw your ad")
    AgentMessageFactory(
        conversation=conversation, text="Welcome! What are you looking for?", prompt_version=draft
    )
    asked = MessageFactory(conversation=conversation, text="How much is a membership?")
    flagged = AgentMessageFactory(
        conversation=conversation, text="It depends.", in_reply_to=asked, prompt_version=draft
    )
    MessageFactory(conversation=conversation, text="Later message, not context")
    example = approved(
        ExampleType.CORRECTION,
        conversation=conversation,
        message=flagged,
        user_message="How much is a membership?",
        ai_response="It depends.",
    )
    other = approved(ExampleType.GOOD, user_message="Where is the Lyon club?", ai_response="Rue Garibaldi.")
    model.agent("Our plans start at 49 euros a month; want a free trial week?")

    run = _run(draft)

    assert run.passed == 2
    sent = [r.json()["messages"] for r in model.agent_calls()]
    replay = next(m for m in sent if m[-1]["content"] == "How much is a membership?")
    assert replay[0]["role"] == "system" and replay[0]["content"].startswith("You are Ava (v2)")
    assert [(m["role"], m["content"]) for m in replay[1:]] == [
        ("user", "Hi, I saw your ad"),
        ("assistant", "Welcome! What are you looking for?"),
        ("user", "How much is a membership?"),
    ]
    # The example under test is not among the few-shot examples (it would hand over the answer); others are.
    assert example.expected_response not in replay[0]["content"]
    assert other.ai_response in replay[0]["content"]


@pytest.mark.parametrize(
    ("example_type", "channel", "extra", "reply", "failed_check", "reason_part"),
    [
        (ExampleType.GOOD, Channel.INSTAGRAM, {}, "x" * 1001, "length", "the instagram limit is 1000"),
        (
            ExampleType.GOOD,
            Channel.FACEBOOK,
            {"metadata": {"forbidden_phrases": ["guarantee"]}},
            "We GUARANTEE results in a week.",
            "forbidden_phrases",
            "Uses forbidden phrases: guarantee.",
        ),
        (
            ExampleType.GOOD,
            Channel.FACEBOOK,
            {"metadata": {"required_phrases": ["free trial", "49"]}},
            "Come by any time!",
            "required_phrases",
            "Missing required phrases: free trial, 49.",
        ),
        (
            ExampleType.CORRECTION,
            Channel.FACEBOOK,
            {"expected_response": "Our plans start at 49 euros a month; want a free trial week?"},
            "Please call us.",
            "similarity",
            "Similarity to the expected response",
        ),
        (
            ExampleType.BAD,
            Channel.FACEBOOK,
            {"ai_response": "No refunds, ever."},
            "No refunds ever!",
            "similarity",
            "Similarity to the bad reply",
        ),
    ],
)
def test_a_deterministic_check_fails_the_reply_without_asking_the_judge(
    model, approved, versions, example_type, channel, extra, reply, failed_check, reason_part
):
    conversation = ConversationFactory(lead=LeadFactory(channel=channel))
    example = approved(example_type, conversation=conversation, **extra)
    model.agent(reply)

    run = _run(versions[1])

    result = EvaluationResult.objects.get(run=run, training_example=example)
    assert result.passed is False
    assert reason_part in result.reason
    assert result.checks[failed_check]["passed"] is False
    assert result.checks["judge"]["passed"] is None
    assert model.judge_calls() == []
    assert (run.processed, run.passed, run.tokens) == (1, 0, AGENT_TOKENS)


def test_phrases_and_length_pass_when_met(model, approved, versions):
    example = approved(
        ExampleType.GOOD,
        conversation=ConversationFactory(lead=LeadFactory(channel=Channel.INSTAGRAM)),
        metadata={"required_phrases": ["free trial"], "forbidden_phrases": ["guarantee"]},
    )
    model.agent("x" * 950 + " Free trial?")
    run = _run(versions[1])
    result = EvaluationResult.objects.get(run=run, training_example=example)
    assert result.passed is True
    assert {name: check["passed"] for name, check in result.checks.items()} == {
        "length": True,
        "required_phrases": True,
        "forbidden_phrases": True,
        "judge": True,
    }


def test_limit_bounds_the_examples_and_the_calls(model, approved, versions):
    for number in range(5):
        approved(ExampleType.GOOD, user_message=f"Question number {number}")
    run = _run(versions[1], limit=2)
    assert (run.example_limit, run.total, run.processed) == (2, 2, 2)
    assert len(model.agent_calls()) == 2 and len(model.judge_calls()) == 2
    assert run.tokens == 2 * (AGENT_TOKENS + JUDGE_TOKENS)


@pytest.mark.parametrize("limit", [0, -1, evaluation.MAX_LIMIT + 1])
def test_a_limit_out_of_bounds_is_refused(versions, limit):
    with pytest.raises(ValidationError) as error:
        evaluation.evaluation_run_create(version=versions[1], limit=limit, schedule=False)
    assert "limit" in error.value.message_dict
    assert not EvaluationRun.objects.exists()


def test_against_itself_is_refused(versions):
    with pytest.raises(ValidationError) as error:
        evaluation.evaluation_run_create(version=versions[1], against=versions[1], schedule=False)
    assert "against" in error.value.message_dict


def test_the_task_is_idempotent(model, approved, versions):
    approved(ExampleType.GOOD)
    approved(ExampleType.GOOD)
    run = evaluation.evaluation_run_create(version=versions[1], schedule=False)

    assert evaluate_prompt.apply(args=[run.pk]).get() == "done"
    calls = model.fake.calls
    assert evaluate_prompt.apply(args=[run.pk]).get() == "done"

    assert model.fake.calls == calls == 4
    run.refresh_from_db()
    assert (run.processed, run.passed, run.tokens) == (2, 2, 2 * (AGENT_TOKENS + JUDGE_TOKENS))
    assert EvaluationResult.objects.filter(run=run).count() == 2
    assert evaluate_prompt.apply(args=[run.pk + 1000]).get() == "missing"


def test_a_stale_running_run_resumes_without_judging_an_example_twice(model, approved, versions):
    from datetime import timedelta

    from django.utils import timezone

    first, second = approved(ExampleType.GOOD), approved(ExampleType.GOOD)
    run = evaluation.evaluation_run_create(version=versions[1], schedule=False)
    verdict = evaluation.ExampleVerdict(reply="earlier", passed=False, reason="judged before", tokens=7)
    assert evaluation.evaluation_result_record(run_id=run.pk, example_id=first.pk, verdict=verdict)
    assert not evaluation.evaluation_result_record(run_id=run.pk, example_id=first.pk, verdict=verdict)
    # A worker that died mid-run: fresh "running" runs are left alone, stale ones are claimed again.
    EvaluationRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())
    assert evaluation.evaluation_run_execute(run_id=run.pk) == "running"
    assert model.fake.calls == 0
    EvaluationRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert evaluation.evaluation_run_execute(run_id=run.pk) == "done"

    run.refresh_from_db()
    assert (run.processed, run.passed, run.tokens) == (2, 1, 7 + AGENT_TOKENS + JUDGE_TOKENS)
    assert EvaluationResult.objects.get(run=run, training_example=first).reason == "judged before"
    assert EvaluationResult.objects.get(run=run, training_example=second).passed is True
    assert len(model.agent_calls()) == 1


def test_a_model_error_fails_the_example_with_its_reason(model, approved, versions, settings):
    settings.OPENAI_MAX_RETRIES = 0
    example = approved(ExampleType.GOOD)
    model.fake.set_default(model.fake.error(400, "bad request"))
    run = _run(versions[1])
    result = EvaluationResult.objects.get(run=run, training_example=example)
    assert run.status == "done" and result.passed is False
    assert result.reason.startswith("The model did not answer:")
    assert result.checks == {"model": {"passed": False, "detail": result.reason}}


def test_a_judge_answer_without_a_verdict_fails_the_example(model, approved, versions):
    example = approved(ExampleType.GOOD)
    model.fake.route(JUDGE_MARKER, model.fake.completion({"verdict": "looks fine"}))
    model.fake._routes.reverse()  # this route ahead of the fixture's judge
    run = _run(versions[1])
    result = EvaluationResult.objects.get(run=run, training_example=example)
    assert result.passed is False
    assert 'no boolean "pass"' in result.reason


def test_a_baseline_run_replays_the_same_examples(model, approved, versions):
    active, draft = versions
    approved(ExampleType.GOOD, user_message="first")
    approved(ExampleType.GOOD, user_message="second")
    model.agent(lambda messages: "v2 says hi" if "(v2)" in messages[0]["content"] else "v1 says hi")
    model.judge(lambda data: (data["candidate_reply"] == "v2 says hi", "judged by version"))

    run = evaluation.evaluation_run_create(version=draft, against=active, schedule=False)
    for each in (run.pk, run.baseline_run_id):
        evaluation.evaluation_run_execute(run_id=each)

    run.refresh_from_db()
    baseline = run.baseline_run
    assert (run.passed, run.processed, baseline.passed, baseline.processed) == (2, 2, 0, 2)
    assert run.against_version == active and baseline.prompt_version == active
    rows = evaluation.evaluation_comparison(run=run)
    assert [(r.result.passed, r.baseline.passed) for r in rows] == [(True, False), (True, False)]
    assert evaluation.evaluation_run_latest() == run


def test_offline_the_judge_abstains_and_the_checks_decide(approved, versions, settings):
    settings.OPENAI_API_KEY = ""
    example = approved(ExampleType.GOOD, metadata={"forbidden_phrases": ["budget"]})
    run = _run(versions[1])
    result = EvaluationResult.objects.get(run=run, training_example=example)
    # The offline responder asks about the budget, which this example forbids.
    assert result.passed is False and "budget" in result.reason
    assert run.tokens == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_on_one_run_judge_each_example_once(model, approved, versions):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's concurrent writers (CI runs it on PostgreSQL)")
    for _ in range(3):
        approved(ExampleType.GOOD)
    model.fake.set_default(
        model.fake.completion(
            {"reply": "Hello!", "qualified": False, "lead_fields": {}, "handoff": False}, delay=0.2
        )
    )
    run = evaluation.evaluation_run_create(version=versions[1], schedule=False)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def work() -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            outcomes.append(evaluation.evaluation_run_execute(run_id=run.pk))
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes) == ["done", "running"]
    run.refresh_from_db()
    assert (run.status, run.processed, run.passed) == ("done", 3, 3)
    assert len(model.agent_calls()) == 3 and len(model.judge_calls()) == 3
