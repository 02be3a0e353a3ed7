from celery import shared_task
from django.contrib.auth import get_user_model


@shared_task(name="agent.suggest_improvements", time_limit=3600, soft_time_limit=3500)
def suggest_improvements(user_id: int) -> int:
    """The "Suggest improvements" button's work, off the request. Drafts are made as that user."""
    from agent.suggestions.flow import suggestions_generate

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return 0
    return len(suggestions_generate(user=user))
