"""Every dashboard page and every admin page, for each role: it loads cleanly, or it is a clean 403.

The page fixture fails the test on any console error, uncaught exception, failed request or unexpected
status; pages a role may not see must answer 403 with the dashboard's own error page, never a 500.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token

from agent.models import EvaluationResult, EvaluationRun
from leads.models import Message, MessageRole
from tests.e2e.conftest import ROLES, login
from training import services as training_services
from training.models import ExampleType

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OPEN = set(ROLES)
SUBMITTERS = {"admin", "manager", "operator"}
REVIEWERS = {"admin", "manager"}

# (path, roles that may open it); everyone else must get a clean 403.
DASHBOARD_PAGES = [
    ("/dashboard/", OPEN),
    ("/dashboard/leads/", OPEN),
    ("/dashboard/leads/?q=sofia", OPEN),
    ("/dashboard/leads/1/", OPEN),
    ("/dashboard/leads/2/", OPEN),
    ("/dashboard/notifications/", OPEN),
    ("/dashboard/training/", OPEN),
    ("/dashboard/training/submit/", SUBMITTERS),
    ("/dashboard/training/submit/?lead=1", SUBMITTERS),
    ("/dashboard/training/submit/?lead=2", SUBMITTERS),
    ("/dashboard/training/submit/?tab=manual", SUBMITTERS),
    ("/dashboard/training/review/", REVIEWERS),
    ("/dashboard/training/review/?status=approved", REVIEWERS),
    ("/dashboard/training/insights/", OPEN),
    ("/dashboard/training/prompt/", OPEN),
    ("/dashboard/spend/", REVIEWERS),  # managers and admins (agent/spend)
]


def _world() -> None:
    """Give every admin model at least one row, so each change page has something to show."""
    users = {u.username: u for u in get_user_model().objects.all()}
    reply = Message.objects.filter(role=MessageRole.AGENT).order_by("pk").first()
    from_conversation = training_services.training_example_submit_from_conversation(
        message=reply,
        submitter=users["operator"],
        example_type=ExampleType.GOOD,
        feedback="Warm, and asks one question at a time.",
        expected_response="",
    )
    manual = training_services.training_example_submit_manual(
        submitter=users["operator"],
        user_message="Is it <b>cheap</b>?",
        ai_response="It depends.",
        example_type=ExampleType.CORRECTION,
        feedback="Give the price range.",
        expected_response="Most projects land between €4,000 and €6,000.",
    )
    training_services.training_example_approve(example=from_conversation, reviewer=users["manager"], note="")
    training_services.training_example_reject(example=manual, reviewer=users["manager"], note="Too vague")
    Token.objects.create(user=users["admin"])
    run = EvaluationRun.objects.create(
        prompt_version=reply.prompt_version, status="done", example_limit=5, total=1, processed=1, passed=1
    )
    EvaluationResult.objects.create(
        run=run,
        training_example=from_conversation,
        reply="Hi <b>there</b>",
        passed=True,
        reason="Consistent.",
    )
    _catalog_world(manager=users["manager"], example=from_conversation)


def _catalog_world(*, manager, example) -> None:
    from agent.catalog.models import StaleExample
    from agent.catalog.services import catalog_release
    from prompts.catalog.services import catalog_import

    catalog_import(
        data={
            "offers": [{"name": "Starter <b>plan</b>", "price": "129", "billing_terms": "per month"}],
            "faq": [{"question": "Can I cancel?", "answer": "Any time.", "tags": ["contract"]}],
        },
        user=manager,
    )
    release = catalog_release(user=manager, change_note="Launch prices")
    StaleExample.objects.create(
        catalog_version=release.catalog_version,
        training_example=example,
        old_fact="99 USD",
        new_fact="129 USD",
    )


def _admin_pages(user) -> list[tuple[str, str, bool]]:
    """(name, path, may open) for the admin index and each model's changelist, add and change pages."""
    request = RequestFactory().get("/admin/")
    request.user = user
    pages = [("admin", reverse("admin:index"), True)]
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        obj = model._default_manager.order_by("pk").first()
        label = f"admin-{opts.app_label}-{opts.model_name}"
        pages += [
            (label, reverse(f"{name}_changelist"), model_admin.has_view_or_change_permission(request)),
            (f"{label}-add", reverse(f"{name}_add"), model_admin.has_add_permission(request)),
        ]
        # _world() gives the core models a row; a newer model without one is covered by its list and add
        # pages here and by its own app's admin tests.
        if obj is not None:
            pages.append(
                (
                    f"{label}-change",
                    reverse(f"{name}_change", args=[quote(obj.pk)]),
                    model_admin.has_view_or_change_permission(request, obj),
                )
            )
    return pages


@pytest.mark.parametrize("role", ROLES)
def test_every_page_loads_cleanly_for_each_role(demo, page, shot, role):
    _world()
    user = get_user_model().objects.get(username=role)
    login(page, role)
    pages = [(path, path, role in allowed) for path, allowed in DASHBOARD_PAGES] + _admin_pages(user)
    opened = refused = 0
    for name, path, may_open in pages:
        if not may_open:
            page.allow(403, path.split("?")[0])
        response = page.goto(path)
        page.wait_for_load_state("load")
        shot(page, name.strip("/").replace("/", "-").replace("?", "-"))
        assert response is not None
        if may_open:
            assert response.status == 200, f"{role} got {response.status} on {path}"
            assert "/login/" not in page.url, f"{role} was sent to a login page from {path}"
            opened += 1
        else:
            assert response.status == 403, f"{role} got {response.status} on {path}, expected 403"
            assert page.locator("[data-testid=forbidden]").is_visible(), f"{path}: not the 403 page"
            refused += 1
    assert opened >= len(DASHBOARD_PAGES) - 5  # every role sees most of the dashboard
    if role == "viewer":
        assert refused >= 6  # read-only: every submit and review page, and admin add pages, refused
