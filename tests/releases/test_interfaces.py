"""The releases API and pages: status codes at the one API edge, the workspace's forms."""

import pytest
from django.urls import reverse

from prompts.models import PromptVersion
from prompts.releases import services
from prompts.releases.models import Experiment, ExperimentStatus, ProposalStatus, ReleaseProposal

pytestmark = pytest.mark.django_db


def _propose(api, user, version, note="Ask for the budget"):
    return api(user).post(
        reverse("api:release_proposals"), {"version_id": version.pk, "change_note": note}, format="json"
    )


def test_propose_and_approve_over_the_api(api, operator, manager, live):
    response = _propose(api, operator, live[1])
    assert response.status_code == 201 and response.data["status"] == "pending"
    approved = api(manager).post(
        reverse("api:release_proposal_approve", args=[response.data["id"]]),
        {"share_percent": 20},
        format="json",
    )
    assert approved.status_code == 200 and approved.data["status"] == "approved"
    assert Experiment.objects.get(status=ExperimentStatus.RUNNING).share_percent == 20


def test_an_empty_change_note_is_a_400_naming_the_field(api, operator, live):
    response = _propose(api, operator, live[1], note="  ")
    assert response.status_code == 400 and "change_note" in str(response.data)
    assert not ReleaseProposal.objects.exists()


def test_the_author_gets_403_with_the_two_person_rule(api, manager, live, settings):
    settings.RELEASE_TWO_PERSON_RULE = True
    proposal_id = _propose(api, manager, live[1]).data["id"]
    response = api(manager).post(
        reverse("api:release_proposal_approve", args=[proposal_id]), {}, format="json"
    )
    assert response.status_code == 403 and "two-person" in str(response.data)
    assert ReleaseProposal.objects.get(pk=proposal_id).status == ProposalStatus.PENDING


def test_the_gate_gives_409_with_the_reason(api, operator, manager, live, settings):
    settings.RELEASE_REHEARSAL_GATE = True
    settings.RELEASE_REHEARSAL_GATE_FUNCTION = "tests.releases.test_services.gate_worse"
    proposal_id = _propose(api, operator, live[1]).data["id"]
    response = api(manager).post(
        reverse("api:release_proposal_approve", args=[proposal_id]), {}, format="json"
    )
    assert response.status_code == 409 and "score 0.41" in str(response.data)
    assert PromptVersion.objects.get(is_active=True).pk == live[0].pk


@pytest.mark.parametrize("share", [0, 101, "half"])
def test_a_bad_share_is_a_400(api, operator, manager, live, share):
    proposal_id = _propose(api, operator, live[1]).data["id"]
    response = api(manager).post(
        reverse("api:release_proposal_approve", args=[proposal_id]), {"share_percent": share}, format="json"
    )
    assert response.status_code == 400 and "share_percent" in str(response.data)


def test_rollback_restores_the_previous_version_in_one_request(api, manager, live):
    from prompts import services as prompt_services

    prompt_services.prompt_version_activate(version=live[1], user=manager)
    response = api(manager).post(reverse("api:release_rollback"), {"reason": "Complaints"}, format="json")
    assert response.status_code == 200 and response.data["active_version"] == 1
    assert PromptVersion.objects.get(is_active=True).pk == live[0].pk


def test_rollback_without_a_reason_is_a_400_and_changes_nothing(api, manager, live):
    from prompts import services as prompt_services

    prompt_services.prompt_version_activate(version=live[1], user=manager)
    response = api(manager).post(reverse("api:release_rollback"), {"reason": ""}, format="json")
    assert response.status_code == 400 and "reason" in str(response.data)
    assert PromptVersion.objects.get(is_active=True).pk == live[1].pk


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_managers_roll_back_promote_or_approve(api, make_user, manager, operator, live, role):
    user = make_user(role, username=f"{role}-2")
    proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
    assert api(user).post(reverse("api:release_rollback"), {"reason": "x"}, format="json").status_code == 403
    url = reverse("api:release_proposal_approve", args=[proposal.pk])
    assert api(user).post(url, {}, format="json").status_code == 403


def test_promote_and_stop_over_the_api(api, operator, manager, live):
    proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
    services.proposal_approve(proposal=proposal, user=manager, share_percent=20)
    experiment = Experiment.objects.get()
    response = api(manager).post(reverse("api:release_experiment_promote", args=[experiment.pk]))
    assert response.status_code == 200 and response.data["status"] == "promoted"
    again = api(manager).post(reverse("api:release_experiment_stop", args=[experiment.pk]), {}, format="json")
    assert again.status_code == 409


class TestPages:
    def test_a_failed_save_keeps_the_edits(self, client, operator, live):
        client.force_login(operator)
        response = client.post(
            reverse("dashboard:prompt_save_draft"),
            {"content": "My long edit\n", "change_note": "n", "model_name": "gpt-6-luna", "temperature": "9"},
        )
        assert response.status_code == 400
        html = response.content.decode()
        assert "My long edit" in html and 'value="9"' in html and "between 0 and 2" in html
        assert PromptVersion.objects.count() == 2

    def test_save_and_ask_for_release_needs_a_note(self, client, operator, live):
        client.force_login(operator)
        response = client.post(
            reverse("dashboard:prompt_save_draft"), {"content": "New\n", "change_note": "", "propose": "1"}
        )
        assert response.status_code == 400 and "change note is required" in response.content.decode()
        assert PromptVersion.objects.count() == 2

    def test_edit_as_a_new_draft_loads_that_version(self, client, operator, live):
        client.force_login(operator)
        html = client.get(reverse("dashboard:prompt_editor") + f"?edit={live[1].pk}").content.decode()
        assert "a new draft from v2" in html and "Be helpful and ask for the budget." in html
        assert f'name="parent_id" value="{live[1].pk}"' in html

    def test_version_page_and_compare(self, client, viewer, live):
        client.force_login(viewer)
        page = client.get(reverse("dashboard:prompt_version", args=[live[1].pk])).content.decode()
        assert "read-only" in page and "Be helpful and ask for the budget." in page
        compare = client.get(reverse("dashboard:prompt_compare") + f"?a={live[1].pk}&b={live[0].pk}")
        html = compare.content.decode()
        assert "Text side by side: v1 and v2" in html
        assert '<span class="del">-Be helpful and ask for the budget.</span>' not in html
        assert '<span class="add">+Be helpful and ask for the budget.</span>' in html  # older on the left
