import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from leads.models import Activity
from prompts import selectors, services
from prompts.models import PromptVersion

pytestmark = pytest.mark.django_db


def _active_numbers() -> list[int]:
    return list(PromptVersion.objects.filter(is_active=True).values_list("version", flat=True))


class TestCreateDraft:
    @pytest.mark.parametrize("role", ["admin", "manager", "operator"])
    def test_makes_the_next_inactive_version_with_the_active_one_as_parent(self, make_user, versions, role):
        v1, _, _ = versions
        user = make_user(role)
        draft = services.prompt_version_create_draft(content="  New text\n", change_note=" tweak ", user=user)
        draft.refresh_from_db()
        assert (draft.version, draft.is_active, draft.parent_id, draft.author_id) == (
            4,
            False,
            v1.pk,
            user.pk,
        )
        assert draft.content == "  New text\n"  # stored as typed
        assert draft.change_note == "tweak"
        assert _active_numbers() == [1]

    def test_the_first_version_is_number_one(self, operator):
        draft = services.prompt_version_create_draft(content="Hello", user=operator)
        assert (draft.version, draft.parent_id) == (1, None)

    def test_explicit_parent(self, operator, versions):
        _, _, v3 = versions
        draft = services.prompt_version_create_draft(content="x", user=operator, parent=v3)
        assert draft.parent_id == v3.pk

    def test_viewer_may_not(self, viewer, versions):
        with pytest.raises(PermissionDenied):
            services.prompt_version_create_draft(content="Hello", user=viewer)
        assert PromptVersion.objects.count() == 3

    @pytest.mark.parametrize(
        ("content", "note", "field"),
        [
            ("", "", "content"),
            ("   \n\t ", "", "content"),
            ("x" * (services.PROMPT_MAX_CHARS + 1), "", "content"),
            ("fine", "n" * 501, "change_note"),
        ],
    )
    def test_validation(self, operator, versions, content, note, field):
        with pytest.raises(ValidationError) as caught:
            services.prompt_version_create_draft(content=content, change_note=note, user=operator)
        assert field in caught.value.message_dict
        assert PromptVersion.objects.count() == 3

    def test_a_version_is_never_edited_by_saving(self, operator, versions):
        v1, _, _ = versions
        services.prompt_version_create_draft(content="Other", user=operator)
        v1.refresh_from_db()
        assert v1.content == "Line one\nLine two\n"


class TestActivate:
    @pytest.mark.parametrize("role", ["admin", "manager"])
    def test_leaves_exactly_one_active_and_records_who_when_and_previous(self, make_user, versions, role):
        v1, _, v3 = versions
        user = make_user(role)
        activated = services.prompt_version_activate(version=v3, user=user)
        assert activated.is_active and activated.activated_by_id == user.pk and activated.activated_at
        assert _active_numbers() == [3]
        activity = Activity.objects.get(verb="prompt.activated")
        assert activity.actor_id == user.pk
        assert activity.data["version_id"] == v3.pk
        assert (activity.data["previous_version_id"], activity.data["previous_version"]) == (v1.pk, 1)
        assert activity.data["rollback"] is False
        assert activity.data["activated_at"] == activated.activated_at.isoformat()

    def test_rollback_is_activating_an_older_version(self, manager, versions):
        v1, _, v3 = versions
        services.prompt_version_activate(version=v3, user=manager)
        services.prompt_version_rollback(version=v1, user=manager)
        assert _active_numbers() == [1]
        latest = Activity.objects.filter(verb="prompt.activated").order_by("-id").first()
        assert latest.data["rollback"] is True and latest.data["previous_version"] == 3

    def test_first_activation_has_no_previous(self, manager, db):
        from tests.factories import PromptVersionFactory

        v = PromptVersionFactory(version=1)
        services.prompt_version_activate(version=v, user=manager)
        assert _active_numbers() == [1]
        assert Activity.objects.get().data["previous_version_id"] is None

    def test_activating_the_active_version_changes_nothing(self, manager, versions):
        v1, _, _ = versions
        before = PromptVersion.objects.get(pk=v1.pk).activated_at
        services.prompt_version_activate(version=v1, user=manager)
        assert PromptVersion.objects.get(pk=v1.pk).activated_at == before
        assert not Activity.objects.exists()

    @pytest.mark.parametrize("role", ["operator", "viewer"])
    def test_other_roles_may_not(self, make_user, versions, role):
        _, v2, _ = versions
        with pytest.raises(PermissionDenied):
            services.prompt_version_activate(version=v2, user=make_user(role))
        assert _active_numbers() == [1]
        assert not Activity.objects.exists()


class TestDeploy:
    def test_creates_and_activates_in_one_step(self, manager, versions):
        v1, _, _ = versions
        deployed = services.prompt_version_deploy(content="Deployed text", change_note="go", user=manager)
        assert (deployed.version, deployed.is_active, deployed.parent_id) == (4, True, v1.pk)
        assert _active_numbers() == [4]
        assert selectors.active_prompt_version().content == "Deployed text"
        assert Activity.objects.get(verb="prompt.activated").data["previous_version"] == 1

    def test_invalid_content_writes_nothing(self, manager, versions):
        with pytest.raises(ValidationError):
            services.prompt_version_deploy(content=" ", user=manager)
        assert PromptVersion.objects.count() == 3 and _active_numbers() == [1]
        assert not Activity.objects.exists()

    def test_operator_may_not_deploy(self, operator, versions):
        with pytest.raises(PermissionDenied):
            services.prompt_version_deploy(content="x", user=operator)
        assert PromptVersion.objects.count() == 3 and _active_numbers() == [1]


def test_the_agent_gets_none_when_nothing_is_active(db):
    from tests.factories import PromptVersionFactory

    PromptVersionFactory(version=1)
    assert selectors.active_prompt_version() is None


def test_the_agent_gets_the_active_version(versions):
    assert selectors.active_prompt_version() == versions[0]
