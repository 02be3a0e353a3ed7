"""The four staff roles and what each may do, as the old system's row-level policies defined them.

Roles are Django Groups created by the data migration leads/0002_roles; code checks permissions
(`user.has_perm(...)`), never group names, so a superuser or a custom group works the same way.
"""

VIEWER = "viewer"
OPERATOR = "operator"
MANAGER = "manager"
ADMIN = "admin"
ROLES = (ADMIN, MANAGER, OPERATOR, VIEWER)

# Permission codenames as "app_label.codename".
PERM_VIEW_EXAMPLES = "training.view_trainingexample"
PERM_SUBMIT_EXAMPLE = "training.add_trainingexample"
PERM_CHANGE_EXAMPLE = "training.change_trainingexample"
PERM_DELETE_EXAMPLE = "training.delete_trainingexample"
PERM_REVIEW_EXAMPLE = "training.review_trainingexample"
PERM_VIEW_PROMPTS = "prompts.view_promptversion"
PERM_CREATE_PROMPT = "prompts.add_promptversion"
PERM_ACTIVATE_PROMPT = "prompts.activate_promptversion"
PERM_VIEW_LEADS = "leads.view_lead"
PERM_CHANGE_LEAD = "leads.change_lead"


def role_of(user) -> str | None:
    """The highest role a user holds, for display."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = {g.name for g in user.groups.all()}
    return next((role for role in ROLES if role in names), None)
