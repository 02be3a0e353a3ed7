import io

import pytest
from django.core.management import CommandError, call_command

from agent import evaluation
from agent.models import EvaluationRun
from agent.tasks import evaluate_prompt
from training.models import ExampleType

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/training/prompt/"
START = "/dashboard/training/prompt/evaluate/"


def _evaluate_url(version) -> str:
    return f"/api/prompt/versions/{version.pk}/evaluate/"


# --- The command ------------------------------------------------------------------------


def test_the_command_prints_pass_rates_side_by_side_and_tokens(model, approved, versions):
    active, draft = versions
    for number in range(4):
        approved(ExampleType.GOOD, user_message=f"Question {number}")
    model.agent(lambda messages: "draft answer" if "(v2)" in messages[0]["content"] else "active answer")
    model.judge(lambda data: (data["candidate_reply"] == "draft answer", "Judged on the version's answer."))
    out, err = io.StringIO(), io.StringIO()

    call_command("evaluate_prompt", "2", "--against", "1", "--limit", "3", stdout=out, stderr=err)

    text = out.getvalue()
    run = EvaluationRun.objects.get(prompt_version=draft)
    assert text.splitlines()[:5] == [
        f"Evaluation run #{run.pk}: 3 examples (limit 3)",
        f"{'':<10}{'v2':>18}{'v1':>18}",
        f"{'pass rate':<10}{'3/3 (100%)':>18}{'0/3 (0%)':>18}",
        f"{'tokens':<10}{'1,080':>18}{'1,080':>18}",
        "Tokens used in all: 2,160",
    ]
    # tqdm's bars, one per version, finish at 3/3.
    assert "v2: 100%" in err.getvalue() and "v1: 100%" in err.getvalue() and "3/3" in err.getvalue()
    assert len(model.agent_calls()) == 6


def test_the_command_lists_failures(model, approved, versions):
    example = approved(ExampleType.GOOD)
    model.judge(lambda data: (False, "Too pushy."))
    out = io.StringIO()
    call_command("evaluate_prompt", "2", stdout=out, stderr=io.StringIO())
    assert f"  FAIL v2 example #{example.pk} (good): Too pushy." in out.getvalue()
    assert "0/1 (0%)" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["7"], "There is no prompt version v7."),
        (["2", "--limit", "0"], "from 1 to"),
        (["2", "--against", "2"], "different"),
    ],
)
def test_the_command_refuses_bad_arguments(versions, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("evaluate_prompt", *args, stdout=io.StringIO(), stderr=io.StringIO())


# --- The API ------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("operator", 202), ("manager", 202)])
def test_starting_needs_the_create_prompt_permission(
    client, make_user, versions, role, status, django_capture_on_commit_callbacks
):
    client.force_login(make_user(role))
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(_evaluate_url(versions[1]), {"limit": 3}, content_type="application/json")
    assert response.status_code == status
    assert EvaluationRun.objects.count() == (2 if status == 202 else 0)
    assert len(callbacks) == (1 if status == 202 else 0)


def test_start_then_follow_progress_and_results(
    client, operator, model, approved, versions, django_capture_on_commit_callbacks
):
    active, draft = versions
    example = approved(ExampleType.GOOD)
    model.judge(lambda data: (False, "Off topic."))
    client.force_login(operator)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(_evaluate_url(draft), {}, content_type="application/json")
    assert response.status_code == 202
    started = response.json()
    assert started["status"] == "queued" and started["total"] == 1 and started["processed"] == 0
    assert started["prompt_version"] == {"id": draft.pk, "version": 2}
    assert started["against_version"] == {"id": active.pk, "version": 1}
    assert started["baseline"]["prompt_version"] == {"id": active.pk, "version": 1}
    assert len(callbacks) == 1 and model.fake.calls == 0

    for run_id in (started["id"], started["baseline"]["id"]):
        assert evaluate_prompt.apply(args=[run_id]).get() == "done"
    data = client.get(f"/api/prompt/evaluations/{started['id']}/").json()
    assert (data["status"], data["processed"], data["passed"], data["pass_rate"]) == ("done", 1, 0, 0.0)
    assert data["tokens"] == 150 + 210
    assert data["results"] == [
        {
            "example_id": example.pk,
            "example_type": "good",
            "passed": False,
            "reason": "Off topic.",
            "reply": "Thanks! How can I help?",
            "checks": {
                "length": {"passed": True, "detail": "23 characters; the other limit is 2000."},
                "judge": {"passed": False, "detail": "Off topic.", "model": "fake-gpt"},
            },
            "tokens": 360,
            "examples": [],  # the only approved example is the one replayed: left out of its own input
        }
    ]
    assert [r["example_id"] for r in data["baseline_results"]] == [example.pk]
    assert data["baseline"]["status"] == "done"


def test_start_api_input_errors(client, operator, versions):
    client.force_login(operator)
    url = _evaluate_url(versions[1])
    assert client.post(url, {"limit": 0}, content_type="application/json").json().keys() == {"limit"}
    assert client.post(url, {"against": 99999}, content_type="application/json").json().keys() == {"against"}
    assert client.post(url, {"against": versions[1].pk}, content_type="application/json").status_code == 400
    assert (
        client.post("/api/prompt/versions/99999/evaluate/", {}, content_type="application/json").status_code
        == 404
    )
    assert not EvaluationRun.objects.exists()


def test_progress_api_permissions_and_404(client, make_user, versions):
    run = evaluation.evaluation_run_create(version=versions[1], schedule=False)
    url = f"/api/prompt/evaluations/{run.pk}/"
    assert client.get(url).status_code in (401, 403)
    client.force_login(make_user("viewer"))
    assert client.get(url).status_code == 200
    assert client.get(f"/api/prompt/evaluations/{run.pk + 99}/").status_code == 404
    client.force_login(make_user(None, username="nobody"))
    assert client.get(url).status_code == 403


# --- The page ------------------------------------------------------------------------


def test_the_button_starts_a_run_beside_the_active_version(
    client, operator, versions, django_capture_on_commit_callbacks
):
    active, draft = versions
    client.force_login(operator)
    page = client.get(PAGE).content.decode()
    assert 'data-testid="evaluate"' in page and "Test v2 against approved examples" in page
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(START, {"version_id": draft.pk})
    assert response.status_code == 302 and response["Location"] == f"{PAGE}#evaluation"
    run = EvaluationRun.objects.get(prompt_version=draft)
    assert run.against_version == active and run.baseline_run.prompt_version == active
    assert len(callbacks) == 1


def test_a_viewer_sees_no_button_and_may_not_start(client, viewer, versions):
    client.force_login(viewer)
    assert 'data-testid="evaluate"' not in client.get(PAGE).content.decode()
    assert client.post(START, {"version_id": versions[1].pk}).status_code == 403
    assert not EvaluationRun.objects.exists()


def test_the_page_shows_progress_then_verdicts_example_by_example(
    client, manager, model, approved, versions, django_assert_num_queries
):
    active, draft = versions
    kept = approved(ExampleType.GOOD, user_message="Where is the <b>Lyon</b> club?")
    approved(ExampleType.CORRECTION, user_message="Price?")
    model.agent(lambda messages: "draft reply" if "(v2)" in messages[0]["content"] else "active reply")
    model.judge(lambda data: (data["candidate_reply"] == "draft reply", f"graded {data['candidate_reply']}"))
    run = evaluation.evaluation_run_create(version=draft, against=active, schedule=False)
    client.force_login(manager)

    queued = client.get(PAGE).content.decode()
    assert 'data-finished="0"' in queued and f"/api/prompt/evaluations/{run.pk}/" in queued
    assert "js/evaluation.js" in queued

    evaluation.evaluation_run_execute(run_id=run.pk)
    evaluation.evaluation_run_execute(run_id=run.baseline_run_id)
    html = client.get(PAGE).content.decode()
    assert 'data-finished="1"' in html
    assert "v2 (tested)" in html and "v1 (active)" in html
    assert (
        html.count('class="pill pill-approved">pass') == 1
        and html.count('class="pill pill-rejected">fail') == 3
    )
    assert "graded active reply" in html
    assert "Where is the &lt;b&gt;Lyon&lt;/b&gt; club?" in html  # escaped
    assert f'data-example="{kept.pk}"' in html
