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
PERM_VIEW_CATALOG = "prompts.view_offer"
PERM_EDIT_CATALOG = "prompts.change_offer"
PERM_PUBLISH_CATALOG = "prompts.publish_catalogversion"
PERM_MANAGE_WEBHOOKS = "agent.change_webhooksubscription"


def role_of(user) -> str | None:
    """The highest role a user holds, for display."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = {g.name for g in user.groups.all()}
    return next((role for role in ROLES if role in names), None)


_VIEW = [
    ("leads", "view_lead"),
    ("leads", "view_conversation"),
    ("leads", "view_message"),
    ("leads", "view_activity"),
    ("prompts", "view_promptversion"),
    ("training", "view_trainingexample"),
    ("agent", "view_evaluationrun"),
    ("agent", "view_evaluationresult"),
    ("prompts", "view_offer"),
    ("prompts", "view_faqentry"),
    ("prompts", "view_catalogversion"),
    ("agent", "view_staleexample"),
]
_OPERATE = [
    ("training", "add_trainingexample"),
    ("prompts", "add_promptversion"),
    ("leads", "change_lead"),
    ("leads", "add_message"),
]
_MANAGE = [
    ("training", "change_trainingexample"),
    ("training", "delete_trainingexample"),
    ("training", "review_trainingexample"),
    ("prompts", "activate_promptversion"),
    ("prompts", "add_offer"),
    ("prompts", "change_offer"),
    ("prompts", "delete_offer"),
    ("prompts", "add_faqentry"),
    ("prompts", "change_faqentry"),
    ("prompts", "delete_faqentry"),
    ("prompts", "publish_catalogversion"),
    ("agent", "change_staleexample"),
]
_ADMINISTER = [
    ("agent", "view_webhooksubscription"),
    ("agent", "add_webhooksubscription"),
    ("agent", "change_webhooksubscription"),
    ("agent", "delete_webhooksubscription"),
    ("auth", "view_user"),
    ("auth", "add_user"),
    ("auth", "change_user"),
    ("auth", "view_group"),
    ("leads", "view_notification"),
    ("leads", "change_conversation"),
    ("leads", "delete_lead"),
]
ROLE_PERMISSIONS = {
    VIEWER: _VIEW,
    OPERATOR: _VIEW + _OPERATE,
    MANAGER: _VIEW + _OPERATE + _MANAGE,
    ADMIN: _VIEW + _OPERATE + _MANAGE + _ADMINISTER,
}


def roles_sync(*, using: str = "default") -> None:
    """Make the role groups hold exactly their permissions.

    The data migration leads/0003_roles creates them; this runs again after every migrate and after a
    database flush (post_migrate), so a flushed test database or a new permission never leaves a role short.
    """
    from django.contrib.auth.models import Group, Permission

    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role)
        wanted = [
            Permission.objects.using(using).get(content_type__app_label=app_label, codename=codename)
            for app_label, codename in perms
        ]
        group.permissions.set(wanted)
