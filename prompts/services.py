from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

from leads.models import Message, MessageRole
from prompts.models import PromptVersion, PromptVersionConversation


def _count_subquery(queryset, group_field: str):
    return Coalesce(
        Subquery(queryset.values(group_field).annotate(c=Count("*")).values("c")[:1]),
        Value(0),
    )


def prompt_version_refresh_figures(*, version_id: int) -> None:
    """Recompute a version's cached figures from the fact rows.

    The row lock serialises concurrent refreshes and, under READ COMMITTED, the UPDATE that follows it
    sees every fact committed before the lock was granted, so the last refresh always writes exact counts.
    """
    with transaction.atomic():
        list(PromptVersion.objects.select_for_update().filter(pk=version_id).values_list("pk", flat=True))
        facts = PromptVersionConversation.objects.filter(prompt_version=OuterRef("pk"))
        PromptVersion.objects.filter(pk=version_id).update(
            total_conversations=_count_subquery(facts, "prompt_version"),
            qualified_conversations=_count_subquery(facts.filter(qualified_at__isnull=False), "prompt_version"),
            total_replies=_count_subquery(
                Message.objects.filter(prompt_version=OuterRef("pk"), role=MessageRole.AGENT), "prompt_version"
            ),
        )


def prompt_version_record_reply(*, message_id: int) -> int | None:
    """Credit the version that wrote an agent reply with the conversation it spoke in. Safe to repeat."""
    message = (
        Message.objects.filter(pk=message_id, role=MessageRole.AGENT, prompt_version__isnull=False)
        .only("id", "conversation_id", "prompt_version_id", "created_at")
        .first()
    )
    if message is None:
        return None
    PromptVersionConversation.objects.bulk_create(
        [
            PromptVersionConversation(
                prompt_version_id=message.prompt_version_id,
                conversation_id=message.conversation_id,
                first_reply_at=message.created_at,
                last_reply_at=message.created_at,
            )
        ],
        ignore_conflicts=True,
    )
    facts = PromptVersionConversation.objects.filter(
        prompt_version_id=message.prompt_version_id, conversation_id=message.conversation_id
    )
    facts.filter(last_reply_at__lt=message.created_at).update(last_reply_at=message.created_at)
    facts.filter(first_reply_at__gt=message.created_at).update(first_reply_at=message.created_at)
    prompt_version_refresh_figures(version_id=message.prompt_version_id)
    return message.prompt_version_id


def prompt_version_record_qualification(*, lead_id: int, qualified_at: datetime) -> int | None:
    """Credit the qualification of a lead to the version whose reply came just before it.

    A conversation credits one version at most (a partial unique index holds it), so repeating this, or
    qualifying the same lead again later, changes nothing.
    """
    last_reply = (
        Message.objects.filter(
            conversation__lead_id=lead_id,
            role=MessageRole.AGENT,
            prompt_version__isnull=False,
            created_at__lte=qualified_at,
        )
        .order_by("-created_at", "-id")
        .only("id", "conversation_id", "prompt_version_id", "created_at")
        .first()
    )
    if last_reply is None:
        return None
    # The fact row may not exist yet if the reply's own task has not run; create it first.
    prompt_version_record_reply(message_id=last_reply.pk)
    if PromptVersionConversation.objects.filter(
        conversation_id=last_reply.conversation_id, qualified_at__isnull=False
    ).exists():
        return None
    try:
        with transaction.atomic():
            PromptVersionConversation.objects.filter(
                prompt_version_id=last_reply.prompt_version_id, conversation_id=last_reply.conversation_id
            ).update(qualified_at=qualified_at)
    except IntegrityError:
        # A concurrent run credited this conversation first.
        return None
    prompt_version_refresh_figures(version_id=last_reply.prompt_version_id)
    return last_reply.prompt_version_id
