from celery import shared_task
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError


@shared_task(name="agent.suggest_improvements", time_limit=3600, soft_time_limit=3500)
def suggest_improvements(user_id: int) -> int:
    """The "Suggest improvements" button's work, off the request. Drafts are made as that user."""
    from agent.suggestions.flow import suggestions_generate

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return 0
    return len(suggestions_generate(user=user))


@shared_task(name="agent.suggest_tactics", time_limit=3600, soft_time_limit=3500)
def suggest_tactics(user_id: int) -> int:
    """The "Suggest selling tactics" button's work. A refusal (not enough outcomes, over the cost cap) is
    kept as a failed suggestion, so the page says why nothing was asked."""
    from agent.suggestions.tactics import TacticsRefused, tactics_generate, tactics_refusal_record

    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return 0
    try:
        return len(tactics_generate(user=user))
    except TacticsRefused as refused:
        tactics_refusal_record(user=user, message=refused.message)
    except ValidationError as invalid:
        tactics_refusal_record(user=user, message=" ".join(invalid.messages))
    return 0
