"""The old system's success criteria, in order, driven through the real pages in headless Chromium."""

import httpx
import pytest
from django.contrib.auth import get_user_model

from leads.models import Lead
from prompts.models import PromptVersion
from tests.e2e.conftest import login
from training import services as training_services
from training.models import ExampleStatus, ExampleType, TrainingExample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WEBHOOK_SECRET = "e2e-webhook-secret"


def user(username: str):
    return get_user_model().objects.get(username=username)


def manual_example(*, feedback: str, submitter: str = "operator") -> TrainingExample:
    return training_services.training_example_submit_manual(
        submitter=user(submitter),
        user_message="Do you deliver to Bath?",
        ai_response="Yes, everywhere in the world, for free!",
        example_type=ExampleType.BAD,
        feedback=feedback,
        expected_response="",
    )


def text(page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def test_1_submit_as_training_from_a_lead_page(demo, new_page, shot):
    page = new_page("operator")
    login(page, "operator")
    page.goto("/dashboard/leads/1/")
    shot(page, "lead")
    links = page.locator("a.submit-training")
    assert links.count() == 10  # one per agent reply in the demo conversation
    link = links.nth(2)
    message_id = int(link.get_attribute("href").split("message=")[1])
    reply = page.locator(f"#message-{message_id} .bubble-text").inner_text().strip()

    with page.expect_navigation():
        link.click()
    assert "/dashboard/training/submit/" in page.url
    # Prefilled: the lead chosen, the reply selected and previewed, its id in the form.
    assert page.locator("#id_lead").input_value() == "1"
    assert page.locator("#id_conv-message_id").input_value() == str(message_id)
    assert page.locator(f"[data-message-id='{message_id}']").get_attribute("aria-pressed") == "true"
    assert page.locator("[data-preview]").is_visible()
    assert text(page, "[data-preview-reply]") == reply
    assert text(page, "[data-preview-lead]") != ""
    shot(page, "submit-prefilled")

    form = page.locator("#conversation-form")
    form.locator("input[type=radio][value=bad]").check()
    form.locator("textarea[name=conv-feedback]").fill("Quoted a price before asking about the budget.")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    # Back in the same conversation with the next reply selected, ready to flag.
    assert "/dashboard/training/submit/?lead=1&message=" in page.url
    next_id = int(page.url.split("message=")[1])
    assert next_id != message_id
    assert page.locator(f"[data-message-id='{next_id}']").get_attribute("aria-pressed") == "true"
    assert "Training example submitted successfully!" in text(page, ".flashes")
    shot(page, "submit-next-reply")

    example = TrainingExample.objects.get()
    assert (example.message_id, example.submitted_by.username) == (message_id, "operator")
    assert (example.status, example.example_type) == (ExampleStatus.PENDING, ExampleType.BAD)
    assert example.ai_response == reply

    review = new_page("manager")
    login(review, "manager")
    review.goto("/dashboard/training/review/")
    card = review.locator(f"#example-{example.pk}")
    assert card.is_visible()
    assert "Quoted a price before asking about the budget." in card.inner_text()
    assert text(review, "[data-testid=pending-total]") == "1 pending"
    shot(review, "review-queue")


def test_2_manual_example_from_the_manual_tab(demo, page, shot):
    login(page, "operator")
    page.goto("/dashboard/training/submit/")
    assert page.locator("#panel-manual").is_hidden()
    page.click("#tab-manual")
    assert page.locator("#panel-manual").is_visible()
    assert page.locator("#panel-conversation").is_hidden()
    assert page.url.endswith("?tab=manual")
    form = page.locator("#manual-form")
    form.locator("textarea[name=manual-user_message]").fill("Can I pay in instalments?")
    form.locator("textarea[name=manual-ai_response]").fill("No.")
    form.locator("input[type=radio][value=correction]").check()
    form.locator("textarea[name=manual-feedback]").fill("Too curt, and wrong: we offer 3 instalments.")
    form.locator("textarea[name=manual-expected_response]").fill("Yes! You can split it into 3 payments.")
    shot(page, "manual-filled")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.url.endswith("/dashboard/training/")
    assert "Training example submitted successfully!" in text(page, ".flashes")
    shot(page, "training-home")

    example = TrainingExample.objects.get()
    assert example.conversation_id is None and example.message_id is None
    assert (example.user_message, example.ai_response) == ("Can I pay in instalments?", "No.")
    assert example.example_type == ExampleType.CORRECTION
    assert example.expected_response == "Yes! You can split it into 3 payments."
    assert text(page, "[data-testid=stat-pending]") == "1"


def _wait_decided(pk: int, status: str, timeout: float = 20.0) -> None:
    """The page decides by fetch or by form; wait for the decision to reach the database."""
    import time

    deadline = time.monotonic() + timeout
    while TrainingExample.objects.get(pk=pk).status != status:
        assert time.monotonic() < deadline, f"example {pk} never became {status}"
        time.sleep(0.2)


def test_3_manager_decides_the_operator_is_notified_and_cannot_approve(demo, new_page, shot):
    approve_me = manual_example(feedback="Promises free worldwide delivery.")
    reject_me = manual_example(feedback="Not actually wrong.")
    untouched = manual_example(feedback="Left for later.")

    manager = new_page("manager")
    login(manager, "manager")
    manager.goto("/dashboard/training/review/")
    assert text(manager, "[data-testid=pending-total]") == "3 pending"
    shot(manager, "review-before")
    card = manager.locator(f"#example-{approve_me.pk}")
    card.get_by_role("button", name="Approve", exact=True).click()
    _wait_decided(approve_me.pk, "approved")
    manager.goto("/dashboard/training/review/")  # the queue shows pending examples only (#18)
    card = manager.locator(f"#example-{reject_me.pk}")
    card.locator("input[name=note]").fill("This reply was fine; the lead asked for Bath.")
    card.get_by_role("button", name="Reject", exact=True).click()
    _wait_decided(reject_me.pk, "rejected")
    manager.goto("/dashboard/training/review/")
    assert TrainingExample.objects.get(pk=reject_me.pk).review_note.startswith("This reply was fine")
    assert text(manager, "[data-testid=pending-total]") == "1 pending"
    shot(manager, "review-after")

    decided = {e.pk: e for e in TrainingExample.objects.select_related("decided_by")}
    assert decided[approve_me.pk].status == ExampleStatus.APPROVED
    assert decided[reject_me.pk].status == ExampleStatus.REJECTED
    assert decided[reject_me.pk].review_note == "This reply was fine; the lead asked for Bath."
    assert decided[reject_me.pk].decided_by.username == "manager"
    assert decided[untouched.pk].status == ExampleStatus.PENDING

    operator = new_page("operator")
    login(operator, "operator")
    assert text(operator, "[data-testid=unread-count]") == "2"
    operator.click("a.bell")
    operator.wait_for_url("**/dashboard/notifications/")
    items = operator.locator("[data-testid=notification]").all_inner_texts()
    assert len(items) == 2
    assert any(f"#{approve_me.pk} was approved" in item for item in items)
    assert any(f"#{reject_me.pk} was rejected" in item and "lead asked for Bath" in item for item in items)
    shot(operator, "notifications")

    # No approve controls anywhere the operator can go, and the review page itself is refused.
    operator.goto("/dashboard/training/")
    assert operator.get_by_role("button", name="Approve").count() == 0
    assert operator.get_by_role("link", name="Review").count() == 0
    operator.allow(403, "/dashboard/training/review/")
    response = operator.goto("/dashboard/training/review/")
    assert response.status == 403
    assert operator.locator("[data-review-form]").count() == 0
    assert operator.locator("[data-testid=forbidden]").is_visible()
    shot(operator, "review-forbidden")

    # A forged approve request from the operator's signed-in session, with a valid CSRF token.
    operator.goto("/dashboard/training/submit/")
    token = operator.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    forged = operator.request.post(
        f"/api/training/approve/{untouched.pk}/",
        data={"action": "approve", "note": "forged"},
        headers={"X-CSRFToken": token, "Referer": operator.url},
    )
    assert forged.status == 403, forged.text()
    untouched.refresh_from_db()
    assert untouched.status == ExampleStatus.PENDING
    assert untouched.decided_by_id is None
    # The same request from the manager's session is accepted: the 403 is about the role, not the form.
    manager.goto("/dashboard/training/review/")
    token = manager.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    genuine = manager.request.post(
        f"/api/training/approve/{untouched.pk}/",
        data={"action": "approve", "note": ""},
        headers={"X-CSRFToken": token, "Referer": manager.url},
    )
    assert genuine.status == 200, genuine.text()
    untouched.refresh_from_db()
    assert untouched.status == ExampleStatus.APPROVED


CHART_STATE = """() => Array.from(document.querySelectorAll('canvas')).map((canvas) => {
  const chart = window.Chart && window.Chart.getChart(canvas);
  const count = (n, d) => n + d.data.filter((v) => v !== null).length;
  const points = chart ? chart.data.datasets.reduce(count, 0) : 0;
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i] !== 0) { painted += 1; } }
  return { id: canvas.id, chart: !!chart, points, painted, width: canvas.width, height: canvas.height };
})"""


def test_4_insights_shows_totals_and_draws_every_chart(demo, page, shot):
    examples = [manual_example(feedback=f"Example {i}") for i in range(5)]
    manager = user("manager")
    training_services.training_example_approve(example=examples[0], reviewer=manager, note="")
    training_services.training_example_approve(example=examples[1], reviewer=manager, note="")
    training_services.training_example_reject(example=examples[2], reviewer=manager, note="fine")

    login(page, "manager")
    page.goto("/dashboard/training/insights/")
    page.wait_for_load_state("networkidle")
    assert text(page, "[data-testid=stat-total]") == "5"
    assert text(page, "[data-testid=stat-pending]") == "2"
    assert text(page, "[data-testid=status-approved]") == "2"
    assert text(page, "[data-testid=status-rejected]") == "1"
    assert text(page, "[data-testid=stat-approval]") == "67%"
    charts = page.evaluate(CHART_STATE)
    shot(page, "insights")
    # No handoffs in the demo range: that card says "no data yet" instead of drawing empty axes.
    assert page.locator("[data-testid=no-data-handoffs]").is_visible()
    assert len(charts) >= 5, charts
    for chart in charts:
        assert chart["chart"], f"{chart['id']} has no Chart.js instance"
        assert chart["width"] > 0 and chart["height"] > 0, chart
        assert chart["painted"] > 0, f"{chart['id']} is blank"
    with_data = {c["id"]: c["points"] for c in charts}
    for chart_id in ("chart-daily", "chart-status", "chart-type"):
        assert with_data[chart_id] > 0, f"{chart_id} has no data points"
    assert page.evaluate("() => window.Chart.getChart('chart-status').data.datasets[0].data") == [2, 2, 1]


def test_5_prompt_editor_save_draft_and_deploy(demo, page, shot, settings):
    settings.RELEASE_TWO_PERSON_RULE = False  # one manager both writes and approves here
    v1 = PromptVersion.objects.get(version=1)
    login(page, "manager")
    page.goto("/dashboard/training/prompt/")
    assert text(page, "#active-heading").startswith("Active: v1")
    assert page.locator("[data-testid=active-content]").text_content() == v1.content
    assert text(page, "[data-testid=active-chars]") == f"{len(v1.content):,}"
    # The demo prompt holds emoji: the counter counts characters as the server does, not UTF-16 units.
    assert text(page, "#prompt-counter").startswith(f"{len(v1.content):,} characters")
    assert page.locator("#prompt-content").input_value() == v1.content
    shot(page, "v1-active")

    draft_text = v1.content + "\n\nNever promise delivery dates before checking stock."
    page.fill("#prompt-content", draft_text)
    assert text(page, "#prompt-counter").startswith(f"{len(draft_text):,} characters")
    page.fill("#change-note", "Delivery-date rule")
    with page.expect_navigation():
        page.click("[data-testid=save-draft]")
    v2 = PromptVersion.objects.get(version=2)
    assert (v2.content, v2.is_active, v2.parent_id) == (draft_text, False, v1.pk)
    assert PromptVersion.objects.get(is_active=True).version == 1
    page.goto("/dashboard/training/prompt/")
    assert "draft" in text(page, "tr[data-version='2']")
    assert text(page, "#active-heading").startswith("Active: v1")
    shot(page, "v2-draft")

    # The saved draft goes live through the release flow (#16): ask for release, then approve it.
    with page.expect_navigation():
        page.click("[data-testid=propose-2]")
    with page.expect_navigation():
        page.click("[data-testid=propose-submit]")
    with page.expect_navigation():
        page.click("[data-testid=approve]")
    assert PromptVersion.objects.get(is_active=True).version == 2
    page.goto("/dashboard/training/prompt/")
    assert text(page, "#active-heading").startswith("Active: v2")
    assert page.locator("[data-testid=active-content]").text_content() == draft_text
    assert text(page, "[data-testid=active-chars]") == f"{len(draft_text):,}"
    shot(page, "v2-active")

    # "Deploy new version" saves the edited text as the next version and activates it in one step.
    deployed_text = draft_text + "\nAlways answer in the lead's language."
    page.fill("#prompt-content", deployed_text)
    page.once("dialog", lambda dialog: dialog.accept())  # "Deploy without review" asks first
    with page.expect_navigation():
        page.click("[data-testid=deploy]")
    active = PromptVersion.objects.get(is_active=True)
    assert (active.version, active.content) == (3, deployed_text)
    assert text(page, "#active-heading").startswith("Active: v3")
    shot(page, "v3-deployed")


def test_6_webhook_conversation_and_qualification_move_the_prompt_figures(
    demo, page, shot, live_server, settings, fake_openai
):
    settings.MANYCHAT_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.AGENT_ASYNC_MODE = False
    settings.AGENT_HOLDING_TEXT = ""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MANYCHAT_API_TOKEN = ""
    fake_openai.reply_with(
        {
            "reply": "Lovely! What's your budget for the new site?",
            "qualified": False,
            "lead_fields": {},
            "handoff": False,
            "handoff_reason": None,
        }
    )
    login(page, "manager")
    page.goto("/dashboard/training/prompt/")
    conversations_before = int(text(page, "[data-testid=active-conversations]"))
    assert text(page, "[data-testid=active-rate]").startswith("0%")
    shot(page, "prompt-before")

    response = httpx.post(
        f"{live_server.url}/webhooks/manychat/",
        json={
            "subscriber_id": "5550001",
            "text": "Hi! I need a website for my florist shop.",
            "channel": "instagram",
            "first_name": "Ines",
        },
        headers={"X-Webhook-Secret": WEBHOOK_SECRET},
        timeout=15,
    )
    assert response.status_code == 200, response.text
    assert response.json()["content"]["messages"][0]["text"] == "Lovely! What's your budget for the new site?"
    assert fake_openai.calls == 1

    page.reload()
    assert int(text(page, "[data-testid=active-conversations]")) == conversations_before + 1
    shot(page, "prompt-after-webhook")

    lead = Lead.objects.get(manychat_subscriber_id="5550001")
    page.goto(f"/dashboard/leads/{lead.pk}/")
    assert "Lovely! What's your budget" in text(page, "[data-testid=transcript]")
    with page.expect_navigation():
        page.get_by_role("button", name="Mark qualified").click()
    assert text(page, "[data-testid=lead-status]") == "Qualified"
    shot(page, "lead-qualified")

    # A qualification made by hand is credited by the figures' reconcile (beat, every 5 minutes; #12:
    # prompts pulls it from leads' selector), run here as beat would.
    from prompts.tasks import reconcile_figures

    reconcile_figures()
    page.goto("/dashboard/training/prompt/")
    assert int(text(page, "[data-testid=active-conversations]")) == conversations_before + 1
    rate = round(100 / (conversations_before + 1))
    assert text(page, "[data-testid=active-rate]").startswith(f"{rate}%")
    shot(page, "prompt-after-qualified")
