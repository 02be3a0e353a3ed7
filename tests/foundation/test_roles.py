"""Each role holds exactly the permissions of the old system's row-level policies."""

import pytest

from leads import roles

pytestmark = pytest.mark.django_db

MATRIX = {
    # permission: roles that hold it
    roles.PERM_VIEW_EXAMPLES: {"admin", "manager", "operator", "viewer"},
    roles.PERM_SUBMIT_EXAMPLE: {"admin", "manager", "operator"},
    roles.PERM_CHANGE_EXAMPLE: {"admin", "manager"},
    roles.PERM_DELETE_EXAMPLE: {"admin", "manager"},
    roles.PERM_REVIEW_EXAMPLE: {"admin", "manager"},
    roles.PERM_VIEW_PROMPTS: {"admin", "manager", "operator", "viewer"},
    roles.PERM_CREATE_PROMPT: {"admin", "manager", "operator"},
    roles.PERM_ACTIVATE_PROMPT: {"admin", "manager"},
    roles.PERM_VIEW_LEADS: {"admin", "manager", "operator", "viewer"},
    roles.PERM_CHANGE_LEAD: {"admin", "manager", "operator"},
    "auth.change_user": {"admin"},
}


@pytest.mark.parametrize("role", roles.ROLES)
@pytest.mark.parametrize("perm", sorted(MATRIX))
def test_role_permissions(make_user, role, perm):
    user = make_user(role)
    assert user.has_perm(perm) is (role in MATRIX[perm])


def test_role_of_reports_the_highest_role(make_user):
    user = make_user("operator", username="multi")
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="manager"))
    assert roles.role_of(user) == "manager"


def test_user_without_role_has_no_permissions(make_user):
    user = make_user(None, username="nobody")
    assert not any(user.has_perm(perm) for perm in MATRIX)


@pytest.mark.django_db(transaction=True)
def test_roles_survive_a_database_flush():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("flush", "--noinput", verbosity=0)
    assert set(Group.objects.values_list("name", flat=True)) == set(roles.ROLES)
    assert Group.objects.get(name="manager").permissions.filter(codename="activate_promptversion").exists()
