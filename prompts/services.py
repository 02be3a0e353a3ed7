from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from leads import roles
from leads import selectors as lead_selectors
from leads.models import DRAFT_STATUSES, Message, MessageRole
from leads.services import activity_record
from prompts.live import live_bump
from prompts.models import PromptVersion, PromptVersionConversation


def prompt_version_record_reply(*, message_id: int) -> int | None:
    """Credit the version that wrote an agent reply with the conversation it spoke in. Safe to repeat."""
    message = (
        Message.objects.filter(pk=message_id, role=MessageRole.AGENT, prompt_version__isnull=False)
        .exclude(delivery_status__in=DRAFT_STATUSES)  # a draft counts once a person sends it as written
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
        .exclude(delivery_status__in=DRAFT_STATUSES)
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
    return last_reply.prompt_version_id


# --- Versions: drafts, activation, deploy, rollback -----------------------------------------------------

PROMPT_MAX_CHARS = 100_000
CHANGE_NOTE_MAX_CHARS = 500
_NUMBERING_ATTEMPTS = 5
_ACTIVATION_ATTEMPTS = 5


def _require(user: Any, perm: str, action: str) -> None:
    if user is None or not user.has_perm(perm):
        raise PermissionDenied(f"Your role may not {action}.")


def _clean_draft_input(*, content: str, change_note: str) -> tuple[str, str]:
    errors: dict[str, str] = {}
    if isinstance(content, str):
        # Browsers submit textarea text with CRLF line breaks: keep one form so diffs and counts stay honest.
        content = content.replace("\r\n", "\n")
    if not isinstance(content, str) or not content.strip():
        errors["content"] = "The prompt cannot be empty."
    elif len(content) > PROMPT_MAX_CHARS:
        errors["content"] = f"The prompt is {len(content):,} characters; the limit is {PROMPT_MAX_CHARS:,}."
    change_note = (change_note or "").strip()
    if len(change_note) > CHANGE_NOTE_MAX_CHARS:
        errors["change_note"] = f"Keep the change note under {CHANGE_NOTE_MAX_CHARS} characters."
    if errors:
        raise ValidationError(errors)
    return content, change_note


@transaction.atomic
def prompt_version_create_draft(
    *, content: str, user: Any, change_note: str = "", parent: PromptVersion | None = None
) -> PromptVersion:
    """Save new prompt text as the next version, inactive. Versions are never edited afterwards.

    The parent defaults to the active version, the text the author most likely started from.
    """
    _require(user, roles.PERM_CREATE_PROMPT, "save prompt drafts")
    content, change_note = _clean_draft_input(content=content, change_note=change_note)
    if parent is None:
        parent = PromptVersion.objects.filter(is_active=True).only("pk").first()
    # Two authors saving at once race for the same number; the unique constraint decides and the loser
    # takes the next one.
    for attempt in range(_NUMBERING_ATTEMPTS):
        number = (PromptVersion.objects.aggregate(top=Max("version"))["top"] or 0) + 1
        try:
            with transaction.atomic():
                return PromptVersion.objects.create(
                    version=number,
                    content=content,
                    change_note=change_note,
                    author=user if getattr(user, "is_authenticated", False) else None,
                    parent=parent,
                )
        except IntegrityError:
            if attempt == _NUMBERING_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _activate_once(*, version_id: int, user: Any) -> tuple[PromptVersion, PromptVersion | None, bool]:
    with transaction.atomic():
        # Lock the target and whichever row is active, in primary-key order so that two activations never
        # wait on each other in opposite orders. Under READ COMMITTED a row activated by a transaction
        # that committed while we waited is invisible to the statement that waited, so take the locks
        # again until the active row we hold is the one a fresh snapshot sees.
        for _ in range(_ACTIVATION_ATTEMPTS):
            locked = list(
                PromptVersion.objects.select_for_update()
                .filter(Q(is_active=True) | Q(pk=version_id))
                .order_by("pk")
                .only("pk", "version", "is_active")
            )
            held_active = {row.pk for row in locked if row.is_active}
            if held_active == set(PromptVersion.objects.filter(is_active=True).values_list("pk", flat=True)):
                break
        else:
            raise IntegrityError("The active prompt version kept changing; try again.")
        target = next((row for row in locked if row.pk == version_id), None)
        if target is None:
            raise PromptVersion.DoesNotExist(f"Prompt version {version_id} does not exist.")
        previous = next((row for row in locked if row.is_active and row.pk != version_id), None)
        if target.is_active:
            return (
                PromptVersion.objects.select_related("author", "activated_by").get(pk=version_id),
                None,
                False,
            )
        now = timezone.now()
        # Deactivate first: the partial unique index is checked statement by statement.
        PromptVersion.objects.filter(pk__in=held_active).exclude(pk=version_id).update(is_active=False)
        PromptVersion.objects.filter(pk=version_id).update(
            is_active=True, activated_at=now, activated_by=user if user.is_authenticated else None
        )
        live_bump()  # every worker's turn rereads the active version (prompts/live.py)
        activity_record(
            verb="prompt.activated",
            actor=user,
            data={
                "version_id": target.pk,
                "version": target.version,
                "previous_version_id": previous.pk if previous else None,
                "previous_version": previous.version if previous else None,
                "rollback": bool(previous and target.version < previous.version),
                "activated_at": now.isoformat(),
            },
        )
        return (
            PromptVersion.objects.select_related("author", "activated_by").get(pk=version_id),
            previous,
            True,
        )


def prompt_version_activate(*, version: PromptVersion, user: Any) -> PromptVersion:
    """Make `version` the one the agent answers with (admin and manager only).

    Activating an older version is the rollback. Activating the version that is already active changes
    nothing and records nothing. Each activation records an activity naming who, when, and the version
    that was active before.
    """
    _require(user, roles.PERM_ACTIVATE_PROMPT, "activate prompt versions")
    for attempt in range(_ACTIVATION_ATTEMPTS):
        try:
            activated, _previous, _changed = _activate_once(version_id=version.pk, user=user)
            return activated
        except IntegrityError:
            # With no row active there is nothing to lock, and two first activations meet at the partial
            # unique index instead; the loser retries and now sees, and locks, the winner.
            if attempt == _ACTIVATION_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def prompt_version_rollback(*, version: PromptVersion, user: Any) -> PromptVersion:
    """Rolling back is activating an older version; kept as a name so callers say what they mean."""
    return prompt_version_activate(version=version, user=user)


@transaction.atomic
def prompt_version_deploy(*, content: str, user: Any, change_note: str = "") -> PromptVersion:
    """Save new text and make it active in one transaction: both happen, or neither."""
    _require(user, roles.PERM_ACTIVATE_PROMPT, "deploy prompt versions")
    draft = prompt_version_create_draft(content=content, user=user, change_note=change_note)
    return prompt_version_activate(version=draft, user=user)


def prompt_figures_reconcile(*, limit: int = 500) -> dict[str, int]:
    """Credit the replies whose task never ran (say the broker was down) and every qualification not
    credited yet. The figures are counted from these fact rows when read (prompts.selectors), so there is
    nothing to recount; `versions` is how many versions there are.

    Qualifications are pulled from leads (`lead_qualifications_since`): the agent pushes the ones its turns
    make, and this sweep (Celery beat, `prompts.reconcile_figures`) credits those made by hand in the
    dashboard or the API. Everything it calls is idempotent.
    """
    uncredited = (
        Message.objects.filter(role=MessageRole.AGENT, prompt_version__isnull=False)
        .exclude(delivery_status__in=DRAFT_STATUSES)
        .exclude(
            Exists(
                PromptVersionConversation.objects.filter(
                    prompt_version=OuterRef("prompt_version"), conversation=OuterRef("conversation")
                )
            )
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    replies = 0
    for message_id in list(uncredited):
        if prompt_version_record_reply(message_id=message_id) is not None:
            replies += 1
    credited_leads = PromptVersionConversation.objects.filter(qualified_at__isnull=False).values(
        "conversation__lead_id"
    )
    qualified_leads = lead_selectors.lead_qualifications_since(exclude_lead_ids=credited_leads, limit=limit)
    qualifications = 0
    for qualification in qualified_leads:
        if (
            prompt_version_record_qualification(
                lead_id=qualification.lead_id, qualified_at=qualification.qualified_at
            )
            is not None
        ):
            qualifications += 1
    return {"replies": replies, "qualifications": qualifications, "versions": PromptVersion.objects.count()}
