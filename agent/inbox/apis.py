"""The inbox in the DRF API: queues, thread, send, notes, assign, take over, hand back, candidates, drafts.

Viewers (and above) read; operators and above reply, assign, take over and hand back; submitting a
correction candidate needs the right to submit training examples.
"""

from typing import Any

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from agent.inbox import drafts, selectors, services
from config.api import Pagination as InboxPagination
from config.errors import NotFound
from leads import roles
from leads.models import Channel, DeliveryStatus, LeadStatus
from training import candidates
from training.models import CandidateStatus


class _InboxApi(APIView):
    """Service errors become 400 (field named), 403, 404 or 409 through config.api.exception_handler."""


def _require(user: Any, perm: str) -> None:
    if not user.has_perm(perm):
        raise PermissionDenied("Your role may not do this.")


def _lead(lead_id: int):
    lead = selectors.inbox_lead_get(lead_id=lead_id)
    if lead is None:
        raise NotFound("No such lead.", field="lead_id")
    return lead


def _person(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {"id": user.pk, "username": user.username, "name": user.get_full_name() or user.username}


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class InboxLeadSerializer(serializers.Serializer):
    class Meta:
        ref_name = "InboxLead"

    id = serializers.IntegerField()
    display_name = serializers.CharField()
    manychat_subscriber_id = serializers.CharField()
    channel = serializers.CharField()
    username = serializers.CharField()
    status = serializers.CharField()
    bot_paused = serializers.BooleanField()
    needs_human = serializers.BooleanField()
    handoff_reason = serializers.CharField()
    waiting_since = serializers.DateTimeField(allow_null=True)
    taken_over_at = serializers.DateTimeField(allow_null=True)
    taken_over_by = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_version = serializers.IntegerField(allow_null=True, required=False)
    draft_mode = serializers.BooleanField(
        allow_null=True, help_text="the lead's own draft mode (co-pilot); null follows the team default"
    )

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_assignee(self, lead) -> dict | None:
        return _person(lead.assignee)

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_taken_over_by(self, lead) -> dict | None:
        return _person(lead.taken_over_by)


class InboxQueueApi(_InboxApi):
    pagination_class = InboxPagination

    class FilterSerializer(serializers.Serializer):
        queue = serializers.ChoiceField(
            choices=[q.value for q in selectors.Queue], required=False, default=selectors.Queue.NEEDS_PERSON
        )
        search = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
        channel = serializers.ChoiceField(
            choices=Channel.choices, required=False, allow_blank=True, default=""
        )
        bot = serializers.ChoiceField(
            choices=[s.value for s in selectors.BotState], required=False, allow_blank=True, default=""
        )
        status = serializers.ChoiceField(
            choices=LeadStatus.choices, required=False, allow_blank=True, default=""
        )
        assignee = serializers.RegexField(r"^(none|\d+)?$", required=False, allow_blank=True, default="")
        version = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
        sort = serializers.ChoiceField(
            choices=list(selectors.SORTS), required=False, allow_blank=True, default=""
        )

    @extend_schema(
        operation_id="inbox_queue",
        summary="One work queue (needs a person, mine, unassigned, all open), with every queue's count",
        parameters=[FilterSerializer],
        responses=InboxLeadSerializer(many=True),
    )
    def get(self, request):
        _require(request.user, roles.PERM_VIEW_LEADS)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        queue = selectors.Queue(data.pop("queue"))
        filters = selectors.InboxFilters(**data)
        queryset = selectors.inbox_queue(queue=queue, user=request.user, filters=filters)
        paginator = InboxPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        response = paginator.get_paginated_response(InboxLeadSerializer(page, many=True).data)
        response.data["counts"] = selectors.inbox_counts(user=request.user)
        return response


class ThreadItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["message", "note"])
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    role = serializers.CharField(help_text="lead, agent, operator; 'note' for an internal note")
    text = serializers.CharField()
    delivery_status = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    author = PersonSerializer(allow_null=True)
    prompt_version = serializers.IntegerField(allow_null=True)


def _thread_item(item: selectors.ThreadItem) -> dict[str, Any]:
    if item.message is not None:
        m = item.message
        return {
            "kind": "message",
            "id": m.pk,
            "created_at": m.created_at,
            "role": m.role,
            "text": m.text,
            "delivery_status": m.delivery_status,
            "error": m.error,
            "author": _person(m.sent_by),
            "prompt_version": m.prompt_version.version if m.prompt_version else None,
        }
    n = item.note
    assert n is not None
    return {
        "kind": "note",
        "id": n.pk,
        "created_at": n.created_at,
        "role": "note",
        "text": n.text,
        "delivery_status": "",
        "error": "",
        "author": _person(n.author),
        "prompt_version": None,
    }


class InboxThreadApi(_InboxApi):
    class FilterSerializer(serializers.Serializer):
        after = serializers.DateTimeField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="inbox_thread",
        summary="A lead's messages and internal notes, oldest first (poll with ?after=<created_at>)",
        parameters=[FilterSerializer],
        responses=inline_serializer(
            "InboxThread", fields={"lead": InboxLeadSerializer(), "items": ThreadItemSerializer(many=True)}
        ),
    )
    def get(self, request, lead_id: int):
        _require(request.user, roles.PERM_VIEW_LEADS)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        lead = _lead(lead_id)
        items = selectors.lead_thread(lead=lead, after=params.validated_data["after"])
        return Response({"lead": InboxLeadSerializer(lead).data, "items": [_thread_item(i) for i in items]})


class TextInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "InboxTextInput"

    text = serializers.CharField(max_length=4000, trim_whitespace=True)


class InboxMessageSendApi(_InboxApi):
    @extend_schema(
        operation_id="inbox_send",
        summary="Reply to the lead as a person: stored, then sent through ManyChat sendContent",
        request=TextInputSerializer,
        responses={201: ThreadItemSerializer},
    )
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        data = TextInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.inbox_message_send(lead=lead, user=request.user, text=data.validated_data["text"])
        message.refresh_from_db()
        item = selectors.ThreadItem("message", message.pk, message.created_at, message=message)
        return Response(_thread_item(item), status=status.HTTP_201_CREATED)


class InboxNoteAddApi(_InboxApi):
    @extend_schema(
        operation_id="inbox_note_add",
        summary="An internal note on the lead (never sent to the lead)",
        request=TextInputSerializer,
        responses={201: ThreadItemSerializer},
    )
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        data = TextInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = services.inbox_note_add(lead=lead, user=request.user, text=data.validated_data["text"])
        item = selectors.ThreadItem("note", note.pk, note.created_at, note=note)
        return Response(_thread_item(item), status=status.HTTP_201_CREATED)


class InboxAssignApi(_InboxApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InboxAssignInput"

        assignee_id = serializers.IntegerField(allow_null=True, help_text="null to unassign")

    @extend_schema(operation_id="inbox_assign", request=InputSerializer, responses=InboxLeadSerializer)
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = services.inbox_assign(
            lead=lead, user=request.user, assignee_id=data.validated_data["assignee_id"]
        )
        return Response(InboxLeadSerializer(selectors.inbox_lead_get(lead_id=lead.pk)).data)


class InboxTakeOverApi(_InboxApi):
    @extend_schema(
        operation_id="inbox_take_over",
        summary="Take the lead from the bot: the bot stays silent until it is handed back",
        request=None,
        responses=InboxLeadSerializer,
    )
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = services.inbox_take_over(lead=_lead(lead_id), user=request.user)
        return Response(InboxLeadSerializer(selectors.inbox_lead_get(lead_id=lead.pk)).data)


class InboxHandBackApi(_InboxApi):
    @extend_schema(
        operation_id="inbox_hand_back",
        summary="Hand the lead back to the bot (also removes the handoff tag in ManyChat)",
        request=None,
        responses=InboxLeadSerializer,
    )
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = services.inbox_hand_back(lead=_lead(lead_id), user=request.user)
        return Response(InboxLeadSerializer(selectors.inbox_lead_get(lead_id=lead.pk)).data)


class CandidateSerializer(serializers.Serializer):
    class Meta:
        ref_name = "InboxCorrectionCandidate"

    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    agent_message_id = serializers.IntegerField()
    operator_message_id = serializers.IntegerField()
    user_message = serializers.CharField()
    ai_response = serializers.CharField()
    expected_response = serializers.CharField()
    status = serializers.CharField()
    training_example_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class InboxCandidateListApi(_InboxApi):
    class FilterSerializer(serializers.Serializer):
        lead_id = serializers.IntegerField()
        status = serializers.ChoiceField(
            choices=CandidateStatus.choices, required=False, default=CandidateStatus.OPEN
        )

    @extend_schema(
        operation_id="inbox_candidates",
        summary="A lead's correction candidates (pre-filled from a person's reply after an agent reply)",
        parameters=[FilterSerializer],
        responses=CandidateSerializer(many=True),
    )
    def get(self, request):
        _require(request.user, roles.PERM_VIEW_EXAMPLES)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        lead = _lead(params.validated_data["lead_id"])
        rows = candidates.correction_candidate_list(
            conversation_ids=list(lead.conversations.values_list("id", flat=True)),
            status=params.validated_data["status"],
        )
        return Response(CandidateSerializer(rows, many=True).data)


def _candidate(candidate_id: int):
    candidate = candidates.correction_candidate_get(candidate_id=candidate_id)
    if candidate is None:
        raise NotFound("No such correction candidate.", field="candidate_id")
    return candidate


class InboxCandidateSubmitApi(_InboxApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InboxCandidateSubmitInput"

        feedback = serializers.CharField(max_length=4000)
        expected_response = serializers.CharField(max_length=4000, required=False)

    @extend_schema(
        operation_id="inbox_candidate_submit",
        summary="Send the candidate to the review queue as a pending correction",
        request=InputSerializer,
        responses={
            201: inline_serializer(
                "InboxCandidateSubmitted",
                fields={
                    "candidate": CandidateSerializer(),
                    "training_example_id": serializers.IntegerField(),
                },
            )
        },
    )
    def post(self, request, candidate_id: int):
        _require(request.user, roles.PERM_SUBMIT_EXAMPLE)
        candidate = _candidate(candidate_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        example = services.inbox_candidate_submit(
            candidate=candidate,
            user=request.user,
            feedback=data.validated_data["feedback"],
            expected_response=data.validated_data.get("expected_response"),
        )
        candidate.refresh_from_db()
        return Response(
            {"candidate": CandidateSerializer(candidate).data, "training_example_id": example.pk},
            status=status.HTTP_201_CREATED,
        )


class InboxCandidateDismissApi(_InboxApi):
    @extend_schema(operation_id="inbox_candidate_dismiss", request=None, responses=CandidateSerializer)
    def post(self, request, candidate_id: int):
        _require(request.user, roles.PERM_SUBMIT_EXAMPLE)
        candidate = services.inbox_candidate_dismiss(candidate=_candidate(candidate_id), user=request.user)
        return Response(CandidateSerializer(candidate).data)


# --- Draft mode and shadow mode (agent/inbox/drafts.py) ----------------------------------------------------

DRAFT_KINDS = {"open": (DeliveryStatus.DRAFT,), "shadow": (DeliveryStatus.SHADOW,)}


class DraftSerializer(serializers.Serializer):
    class Meta:
        ref_name = "InboxDraft"

    id = serializers.IntegerField()
    kind = serializers.SerializerMethodField(help_text="draft (a person sends it) or shadow (never sent)")
    status = serializers.CharField(
        source="delivery_status",
        help_text="draft (waiting); pending, sent... once sent as written; draft_edited; "
        "draft_discarded; shadow",
    )
    text = serializers.CharField()
    created_at = serializers.DateTimeField()
    in_reply_to_id = serializers.IntegerField(allow_null=True, help_text="the lead's message it answers")
    lead_message = serializers.SerializerMethodField()
    prompt_version = serializers.IntegerField(source="prompt_version.version", allow_null=True)
    note = serializers.CharField(source="error", allow_blank=True)

    def get_kind(self, message) -> str:
        return "shadow" if message.delivery_status == DeliveryStatus.SHADOW else "draft"

    def get_lead_message(self, message) -> str:
        return message.in_reply_to.text if message.in_reply_to is not None else ""


_CONFLICT = OpenApiResponse(description="The draft was already sent or discarded (or is a shadow draft).")


class InboxDraftListApi(_InboxApi):
    class FilterSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(
            choices=["open", "shadow", "all"],
            required=False,
            default="all",
            help_text="open: drafts waiting for a person; shadow: what the bot would have said; all: every "
            "draft, including those sent, edited or discarded",
        )

    @extend_schema(
        operation_id="inbox_drafts",
        summary="A lead's agent drafts (draft mode) and shadow drafts (shadow mode), newest first",
        parameters=[FilterSerializer],
        responses=DraftSerializer(many=True),
    )
    def get(self, request, lead_id: int):
        _require(request.user, roles.PERM_VIEW_LEADS)
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        lead = _lead(lead_id)
        kind = params.validated_data["kind"]
        if kind == "all":
            rows = selectors.lead_drafts(lead=lead)
        else:
            rows = selectors.lead_drafts(lead=lead, statuses=DRAFT_KINDS[kind])
        return Response(DraftSerializer(rows, many=True).data)


class InboxDraftSendApi(_InboxApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InboxDraftSendInput"

        text = serializers.CharField(
            max_length=4000,
            required=False,
            help_text="The text to send instead of the draft's (an edit: sent as a person's message, with a "
            "correction candidate). Left out or unchanged: the draft goes out as written.",
        )

    @extend_schema(
        operation_id="inbox_draft_send",
        summary="Send a draft to the lead through ManyChat sendContent, as written or edited (once)",
        request=InputSerializer,
        responses={201: ThreadItemSerializer, 409: _CONFLICT},
    )
    def post(self, request, lead_id: int, draft_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sent = drafts.inbox_draft_send(
            draft_id=draft_id, user=request.user, text=data.validated_data.get("text"), lead=lead
        )
        sent.refresh_from_db()
        item = selectors.ThreadItem("message", sent.pk, sent.created_at, message=sent)
        return Response(_thread_item(item), status=status.HTTP_201_CREATED)


class InboxDraftDiscardApi(_InboxApi):
    @extend_schema(
        operation_id="inbox_draft_discard",
        summary="Discard a draft: it is kept, marked discarded, never sent",
        request=None,
        responses={200: DraftSerializer, 409: _CONFLICT},
    )
    def post(self, request, lead_id: int, draft_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        draft = drafts.inbox_draft_discard(draft_id=draft_id, user=request.user, lead=lead)
        return Response(DraftSerializer(draft).data)


class InboxDraftModeApi(_InboxApi):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InboxDraftModeInput"

        draft_mode = serializers.BooleanField(
            allow_null=True,
            help_text="true: drafts for this lead; false: the bot sends; null: the team default",
        )

    @extend_schema(
        operation_id="inbox_draft_mode",
        summary="Set the lead's draft mode (co-pilot): the agent's replies wait for a person",
        request=InputSerializer,
        responses=inline_serializer(
            "InboxDraftMode",
            fields={
                "lead_id": serializers.IntegerField(),
                "draft_mode": serializers.BooleanField(allow_null=True),
                "effective": serializers.BooleanField(help_text="after the team default (AGENT_DRAFT_MODE)"),
            },
        ),
    )
    def post(self, request, lead_id: int):
        _require(request.user, roles.PERM_CHANGE_LEAD)
        lead = _lead(lead_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lead = drafts.inbox_draft_mode_set(
            lead=lead, user=request.user, draft_mode=data.validated_data["draft_mode"]
        )
        return Response(
            {"lead_id": lead.pk, "draft_mode": lead.draft_mode, "effective": drafts.lead_drafts_on(lead=lead)}
        )
