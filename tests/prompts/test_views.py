import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from leads.models import Activity
from prompts.models import PromptVersion
from tests.factories import ConversationFactory, PromptVersionFactory

pytestmark = pytest.mark.django_db

PAGE = "/dashboard/training/prompt/"


@pytest.fixture
def signed_in(client, make_user):
    def make(role):
        client.force_login(make_user(role))
        return client

    return make


def _active_numbers() -> list[int]:
    return list(PromptVersion.objects.filter(is_active=True).values_list("version", flat=True))


def test_url_name():
    assert reverse("dashboard:prompt_editor") == PAGE


def test_anonymous_is_sent_to_sign_in(client, versions):
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("role", "draft", "deploy", "activate"),
    [
        ("viewer", False, False, False),
        ("operator", True, False, False),
        ("manager", True, True, True),
        ("admin", True, True, True),
    ],
)
def test_page_shows_each_role_only_what_it_may_do(signed_in, versions, role, draft, deploy, activate):
    response = signed_in(role).get(PAGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert ('data-testid="save-draft"' in html) is draft
    assert ('data-testid="deploy"' in html) is deploy
    # Releases (issue #16): managers roll back in an emergency; a newer version goes live through a proposal.
    assert ('data-testid="emergency-rollback"' in html) is activate
    assert "Active: v1" in html
    assert "at least one of its replies is in it" in html  # the attribution rule
    assert "the version whose reply came just before the lead qualified" in html


def test_page_content(signed_in, versions, reply):
    v1, v2, v3 = versions
    reply(version=v1, conversation=ConversationFactory(), latency_ms=640)
    html = signed_in("manager").get(PAGE).content.decode()
    assert 'data-testid="open-3"' in html and 'data-testid="propose-3"' in html  # releases go through review
    assert 'id="prompt-chart-data"' in html and "vendor/chart.umd.min.js" in html and "js/prompts.js" in html
    assert "640 ms" in html
    # The diff view defaults to the newest other version against the active one.
    assert "Diff: v3 against active v1" in html
    assert '<span class="add">+Completely different</span>' in html


def test_rollback_button_for_older_versions(signed_in, versions, manager):
    from prompts import services

    services.prompt_version_activate(version=versions[2], user=manager)
    html = signed_in("manager").get(PAGE).content.decode()
    assert html.count("Roll back") == 2


def test_diff_of_a_chosen_version(signed_in, versions):
    html = signed_in("viewer").get(f"{PAGE}?diff={versions[1].pk}").content.decode()
    assert "Diff: v2 against active v1" in html
    assert '<span class="del">-Line two</span>' in html and '<span class="add">+Line 2, better</span>' in html


def test_a_long_prompt_renders_whole_and_escaped(signed_in, db):
    content = ("<script>alert(1)</script> " + "x" * 49_974)[:50_000]
    assert len(content) == 50_000
    PromptVersionFactory(version=1, content=content, is_active=True)
    html = signed_in("operator").get(PAGE).content.decode()
    assert "50,000" in html
    assert "<script>alert(1)</script>" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the full text and the editor


def test_no_active_version(signed_in, db):
    PromptVersionFactory(version=1)
    html = signed_in("manager").get(PAGE).content.decode()
    assert "No active version" in html and "fallback line" in html


@pytest.mark.parametrize("count", [2, 30])
def test_page_query_count_does_not_grow_with_versions(signed_in, django_assert_num_queries, reply, count):
    conversation = ConversationFactory()
    for number in range(1, count + 1):
        version = PromptVersionFactory(version=number, is_active=number == 1)
        reply(version=version, conversation=conversation)
    client = signed_in("manager")
    # session, user, its permissions (groups + own), unread notifications, its groups (role); the active
    # version (row, then its figures: facts + replies), history count, page of versions and their figures
    # (facts + replies), the newest other version with its text for the diff, and the evaluation card's
    # latest run (agent.templatetags); releases (#16): pending and recent proposals, the running
    # experiment, open alerts, shutdown dates, the previous version (activity + row) for the rollback
    # dialog; the rehearsal card (2). Costs come with the figures (tokens per model): no query of their own.
    with django_assert_num_queries(24):
        response = client.get(PAGE)
    assert response.status_code == 200
    assert len(response.context["history"]) == min(count, 20)


class TestForms:
    def test_operator_saves_a_draft(self, signed_in, versions):
        response = signed_in("operator").post(
            reverse("dashboard:prompt_save_draft"), {"content": "Better\n", "change_note": "n"}
        )
        assert response.status_code == 302
        draft = PromptVersion.objects.get(version=4)
        assert response["Location"] == reverse("dashboard:prompt_version", args=[draft.pk])
        assert (draft.content, draft.is_active) == ("Better\n", False)
        assert [str(m) for m in get_messages(response.wsgi_request)] == [
            "Saved draft v4. It is not live until a release is approved."
        ]

    def test_empty_draft_is_refused_with_a_message(self, signed_in, versions):
        response = signed_in("operator").post(
            reverse("dashboard:prompt_save_draft"), {"content": "  ", "change_note": "kept"}
        )
        # Issue #16: a failed save shows the page again with the edits kept.
        assert response.status_code == 400 and 'value="kept"' in response.content.decode()
        assert "The prompt cannot be empty." in str(list(get_messages(response.wsgi_request))[0])
        assert PromptVersion.objects.count() == 3

    def test_viewer_may_not_save(self, signed_in, versions):
        response = signed_in("viewer").post(reverse("dashboard:prompt_save_draft"), {"content": "x"})
        assert response.status_code == 403 and PromptVersion.objects.count() == 3

    @pytest.mark.parametrize("role", ["operator", "viewer"])
    def test_only_managers_and_admins_deploy_and_activate(self, signed_in, versions, role):
        client = signed_in(role)
        assert client.post(reverse("dashboard:prompt_deploy"), {"content": "x"}).status_code == 403
        url = reverse("dashboard:prompt_activate", args=[versions[1].pk])
        assert client.post(url).status_code == 403
        assert PromptVersion.objects.count() == 3 and _active_numbers() == [1]

    def test_anonymous_posts_are_sent_to_sign_in(self, client, versions):
        response = client.post(reverse("dashboard:prompt_activate", args=[versions[1].pk]))
        assert response.status_code == 302 and _active_numbers() == [1]

    def test_manager_deploys(self, signed_in, versions):
        response = signed_in("manager").post(reverse("dashboard:prompt_deploy"), {"content": "Live now"})
        assert response.status_code == 302 and _active_numbers() == [4]
        assert "Deployed v4" in str(list(get_messages(response.wsgi_request))[0])

    def test_manager_activates_then_rolls_back(self, signed_in, versions):
        client = signed_in("manager")
        response = client.post(reverse("dashboard:prompt_activate", args=[versions[2].pk]))
        assert _active_numbers() == [3]
        assert str(list(get_messages(response.wsgi_request))[0]) == "Activated v3."
        response = client.post(reverse("dashboard:prompt_activate", args=[versions[0].pk]))
        assert _active_numbers() == [1]
        assert str(list(get_messages(response.wsgi_request))[-1]) == "Rolled back from v3 to v1."
        assert Activity.objects.filter(verb="prompt.activated").count() == 2

    def test_activate_missing_version(self, signed_in, versions):
        assert signed_in("admin").post(reverse("dashboard:prompt_activate", args=[999999])).status_code == 404

    def test_get_is_not_allowed_on_actions(self, signed_in, versions):
        assert signed_in("admin").get(reverse("dashboard:prompt_deploy")).status_code == 405

    def test_forms_need_the_csrf_token(self, make_user, versions):
        from django.test import Client

        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user("manager"))
        response = client.post(reverse("dashboard:prompt_activate", args=[versions[1].pk]))
        assert response.status_code == 403 and _active_numbers() == [1]
