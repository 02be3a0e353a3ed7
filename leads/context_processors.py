from leads import roles
from leads.selectors import notifications_unread_count


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_unread_notifications": notifications_unread_count(user=user),
        "nav_role": roles.role_of(user),
        "can_submit_examples": user.has_perm(roles.PERM_SUBMIT_EXAMPLE),
        "can_review_examples": user.has_perm(roles.PERM_REVIEW_EXAMPLE),
        "can_create_prompts": user.has_perm(roles.PERM_CREATE_PROMPT),
        "can_activate_prompts": user.has_perm(roles.PERM_ACTIVATE_PROMPT),
        "can_change_leads": user.has_perm(roles.PERM_CHANGE_LEAD),
    }
