"""Each evaluation verdict records which approved examples the model saw, with their scores, as a reply
does; the results page and the API show them (issue #18, retrieval in the evaluation)."""

import pytest

from agent import evaluation
from agent.models import EvaluationResult
from training.models import ExampleType
from training.selectors import training_examples_for_prompt

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/training/prompt/"


@pytest.fixture
def replayed(model, approved, versions):
    active, draft = versions
    refund = approved(ExampleType.GOOD, user_message="Can my payment be refunded?", ai_response="Yes.")
    refunds = approved(ExampleType.GOOD, user_message="Do you offer refunds?", ai_response="Within 14 days.")
    lyon = approved(ExampleType.GOOD, user_message="Where is the Lyon club?", ai_response="Rue Garibaldi.")
    model.agent("Yes, within 14 days.")
    model.judge(lambda data: (True, "Consistent."))
    run = evaluation.evaluation_run_create(version=draft, against=active, schedule=False)
    evaluation.evaluation_run_execute(run_id=run.pk)
    evaluation.evaluation_run_execute(run_id=run.baseline_run_id)
    return run, {"refund": refund, "refunds": refunds, "lyon": lyon}


def test_each_verdict_records_the_examples_chosen_for_its_replay(replayed):
    run, examples = replayed
    results = {r.training_example_id: r for r in EvaluationResult.objects.filter(run=run)}
    for example in examples.values():
        expected = training_examples_for_prompt(
            lead_message=example.user_message, limit=12, exclude_ids=(example.pk,)
        )
        seen = results[example.pk].examples
        assert [item["id"] for item in seen] == [item["id"] for item in expected]
        assert [item["rank"] for item in seen] == list(range(1, len(seen) + 1))
        assert [item["method"] for item in seen] == [item["method"] for item in expected]
        assert [item["score"] for item in seen] == [round(item["score"], 4) for item in expected]
        assert example.pk not in [item["id"] for item in seen]  # never its own answer
    # The refund question saw the other refund example first, ranked by relevance.
    assert results[examples["refunds"].pk].examples[0]["id"] == examples["refund"].pk
    assert results[examples["refunds"].pk].examples[0]["score"] > 0


def test_the_api_and_the_page_show_them(replayed, client, manager):
    run, examples = replayed
    client.force_login(manager)
    data = client.get(f"/api/prompt/evaluations/{run.pk}/").json()
    by_example = {r["example_id"]: r for r in data["results"]}
    first = by_example[examples["refunds"].pk]["examples"][0]
    assert first["id"] == examples["refund"].pk and first["rank"] == 1
    assert set(first) == {"id", "rank", "score", "method"}
    assert all(r["examples"] for r in data["baseline_results"])

    html = client.get(PAGE).content.decode()
    assert html.count('data-testid="examples-seen"') == 6  # 3 examples x (tested, active)
    assert f'href="/dashboard/training/library/{examples["refund"].pk}/"' in html
    assert "examples the model saw" in html


def test_a_model_error_still_records_what_was_shown(approved, versions, fake_openai):
    _, draft = versions
    approved(ExampleType.GOOD, user_message="Can my payment be refunded?", ai_response="Yes.")
    asked = approved(ExampleType.GOOD, user_message="Do you offer refunds?", ai_response="Within 14 days.")
    fake_openai.stop()  # the model cannot be reached

    verdict = evaluation.evaluation_example_judge(version=draft, example=asked)

    assert verdict.passed is False and "did not answer" in verdict.reason
    assert [item["rank"] for item in verdict.examples] == [1]
