"""The accessibility and overflow pass on a generated dataset of a few thousand leads (issue #22): every
dashboard page for every role, at 1366 px and 390 px, with 0 console errors (the page fixture), 0 serious or
critical axe-core violations and nothing wider than the viewport.

The dataset comes from bench/generate_dataset.py's command (3,000 leads, 30,000 messages, 2,000 examples,
12 versions, the last year), written into the test database. Screenshots go to
artifacts/screenshots/generated/<role>-<page>-<width>.png.
"""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count, Q
from django.urls import reverse

from bench.dataset.generator import Command
from leads.models import Lead, Message, MessageRole
from leads.services import notification_notify
from prompts.models import PromptVersion
from tests.e2e.conftest import ROOT, login
from tests.e2e.test_accessibility import AXE, WIDTHS, _name, _serious
from training.models import TrainingExample

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = ROOT / "artifacts" / "screenshots" / "generated"
USERS = {"admin": "gen_admin", "manager": "gen_manager1", "operator": "gen_operator1", "viewer": "gen_viewer"}


def _generate() -> list[str]:
    call_command(Command(), leads=3000, messages=30000, examples=2000, versions=12, seed=22, no_progress=True)
    assert Lead.objects.count() == 3000
    # The generator writes no notifications: give everyone a few, several about the same lead (grouped).
    staff = list(get_user_model().objects.filter(username__startswith="gen_"))
    for lead in Lead.objects.order_by("pk")[:12]:
        for n in range(3):
            notification_notify(
                recipients=staff,
                verb="lead.message_while_paused",
                message=f"{lead.display_name} wrote while the bot is paused ({n + 1})",
                target=lead,
                url=f"/dashboard/leads/{lead.pk}/",
            )
    busiest = (
        Lead.objects.annotate(n=Count("conversations__messages"))
        .order_by("-n", "pk")
        .values_list("pk", flat=True)
    )[0]
    last_reply = (
        Message.objects.filter(conversation__lead_id=busiest, role=MessageRole.AGENT)
        .order_by("-created_at")
        .first()
    )
    waiting = (
        Lead.objects.filter(Q(needs_human=True) | Q(bot_paused=True)).values_list("pk", flat=True).first()
    )
    example = TrainingExample.objects.order_by("-pk").values_list("pk", flat=True).first()
    version = PromptVersion.objects.order_by("-version").values_list("pk", flat=True).first()
    pages = [
        reverse("dashboard:home"),
        reverse("dashboard:leads"),
        reverse("dashboard:leads") + "?page=40",
        reverse("dashboard:leads") + "?q=an",
        reverse("dashboard:lead_detail", args=[busiest]),
        reverse("dashboard:notifications"),
        reverse("dashboard:inbox"),
        reverse("dashboard:inbox_conversation", args=[waiting or busiest]),
        reverse("dashboard:training_home"),
        reverse("dashboard:training_submit"),
        reverse("dashboard:training_submit")
        + f"?lead={busiest}&message={last_reply.pk if last_reply else ''}",
        reverse("dashboard:training_submit") + "?lead_q=an",
        reverse("dashboard:training_review"),
        reverse("dashboard:training_library"),
        reverse("dashboard:training_example_detail", args=[example]),
        reverse("dashboard:training_suggestions"),
        reverse("dashboard:training_insights"),
        reverse("dashboard:training_insights") + "?start=" + _year_ago(),
        reverse("dashboard:prompt_editor"),
        reverse("dashboard:prompt_version", args=[version]),
        reverse("dashboard:catalog"),
        reverse("dashboard:webhooks"),
        reverse("dashboard:rehearsal"),
    ]
    # Pages other helpers added today, when they exist in this tree.
    for name in ("dashboard:spend", "dashboard:followups-scoring"):
        try:
            pages.append(reverse(name))
        except Exception:  # noqa: BLE001, S112 - not built (yet) in this tree
            continue
    return pages


def _year_ago() -> str:
    from django.utils import timezone

    today = timezone.localdate()
    return today.replace(year=today.year - 1).isoformat() + "&end=" + today.isoformat()


@pytest.mark.parametrize("role", list(USERS))
def test_every_page_on_a_generated_dataset_is_accessible_and_fits(new_page, role):
    pages = _generate()
    page = new_page(role)
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(60_000)
    login(page, USERS[role])
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems, seen = [], 0
    for path in pages:
        page.allow(403, path.split("?")[0])
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            response = page.goto(path)
            if response is not None and response.status == 403:
                break  # a role that may not open it (test_every_page checks the clean 403)
            seen += 1
            page.screenshot(path=str(SHOTS / f"{role}-{_name(path)}-{width}.png"), full_page=True)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                problems.append(f"{path} at {width} px scrolls sideways by {overflow} px")
            problems.extend(f"{path} at {width} px: {v}" for v in _serious(AXE.run(page)))
    assert seen >= 2 * 15, f"only {seen} page views for {role}"
    assert problems == [], "\n".join(problems)
