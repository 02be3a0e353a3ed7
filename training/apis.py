from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm, Pagination, paginated_response
from leads import roles
from leads.models import Message
from training import selectors, services
from training.filters import TrainingExampleFilter
from training.models import ExampleType, TrainingExample


def _user_name(user) -> str | None:
    if user is None:
        return None
    return user.get_full_name() or user.get_username()


class ExampleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField(allow_null=True)
    message_id = serializers.IntegerField(allow_null=True)
    lead_id = serializers.SerializerMethodField()
    user_message = serializers.CharField()
    ai_response = serializers.CharField()
    expected_response = serializers.CharField()
    feedback = serializers.CharField()
    example_type = serializers.CharField()
    status = serializers.CharField()
    review_note = serializers.CharField()
    submitted_by = serializers.IntegerField(source="submitted_by_id", allow_null=True)
    submitted_by_name = serializers.SerializerMethodField()
    # The API keeps the old system's names; they hold whoever decided (approved or rejected) and when.
    approved_by = serializers.IntegerField(source="decided_by_id", allow_null=True)
    approved_by_name = serializers.SerializerMethodField()
    approved_at = serializers.DateTimeField(source="decided_at", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_lead_id(self, obj: TrainingExample) -> int | None:
        return obj.conversation.lead_id if obj.conversation is not None else None

    def get_submitted_by_name(self, obj: TrainingExample) -> str | None:
        return _user_name(obj.submitted_by)

    def get_approved_by_name(self, obj: TrainingExample) -> str | None:
        return _user_name(obj.decided_by)


class SubmitInputSerializer(serializers.Serializer):
    """Either shape: a flagged agent reply (conversation_id, message_id) or both texts typed by hand.

    status, approved_by and approved_at are not fields here, so they can never be set on create.
    """

    conversation_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    message_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    user_message = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    ai_response = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    example_type = serializers.ChoiceField(choices=ExampleType.choices)
    feedback = serializers.CharField(required=False, allow_blank=True, default="")
    expected_response = serializers.CharField(required=False, allow_blank=True, default="")


def submit_example(*, user, data: dict) -> TrainingExample:
    common = {
        "submitter": user,
        "example_type": data["example_type"],
        "feedback": data["feedback"],
        "expected_response": data["expected_response"],
    }
    if data["message_id"] is not None:
        message = (
            Message.objects.select_related("conversation", "in_reply_to")
            .filter(pk=data["message_id"])
            .first()
        )
        if message is None:
            raise serializers.ValidationError({"message_id": "No message with this id."})
        return services.training_example_submit_from_conversation(
            message=message, conversation_id=data["conversation_id"], **common
        )
    if data["conversation_id"] is not None:
        raise serializers.ValidationError(
            {"message_id": "Pick the agent reply to flag in this conversation."}
        )
    return services.training_example_submit_manual(
        user_message=data["user_message"], ai_response=data["ai_response"], **common
    )


def _submit_response(request: Request) -> Response:
    data = SubmitInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    example = submit_example(user=request.user, data=data.validated_data)
    return Response(
        ExampleOutputSerializer(selectors.training_example_get(example_id=example.pk)).data,
        status=status.HTTP_201_CREATED,
    )


class TrainingExampleListApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_EXAMPLES, post=roles.PERM_SUBMIT_EXAMPLE)]
    pagination_class = Pagination  # documents the page envelope in the schema
    OutputSerializer = ExampleOutputSerializer
    InputSerializer = SubmitInputSerializer

    @extend_schema(
        operation_id="training_examples_list",
        parameters=[OpenApiParameter(name, str) for name in TrainingExampleFilter.base_filters],
        responses=ExampleOutputSerializer(many=True),
    )
    def get(self, request):
        queryset = selectors.training_example_list(filters=request.query_params)
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=self.OutputSerializer
        )

    @extend_schema(request=SubmitInputSerializer, responses={201: ExampleOutputSerializer})
    def post(self, request):
        return _submit_response(request)


class TrainingExampleSubmitApi(APIView):
    permission_classes = [HasPerm(roles.PERM_SUBMIT_EXAMPLE)]
    InputSerializer = SubmitInputSerializer
    OutputSerializer = ExampleOutputSerializer

    @extend_schema(
        operation_id="training_submit",
        request=SubmitInputSerializer,
        responses={201: ExampleOutputSerializer},
    )
    def post(self, request):
        return _submit_response(request)


class TrainingExampleDetailApi(APIView):
    # PATCH and DELETE: the service decides (submitters may edit or delete their own pending examples).
    permission_classes = [HasPerm(roles.PERM_VIEW_EXAMPLES, patch=None, delete=None)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TrainingExampleUpdateInput"

        # Content only: status, approved_by and approved_at change through review, never through PATCH.
        user_message = serializers.CharField(required=False, allow_blank=True)
        ai_response = serializers.CharField(required=False, allow_blank=True)
        expected_response = serializers.CharField(required=False, allow_blank=True)
        feedback = serializers.CharField(required=False, allow_blank=True)
        example_type = serializers.ChoiceField(choices=ExampleType.choices, required=False)

    OutputSerializer = ExampleOutputSerializer

    def _get(self, example_id: int) -> TrainingExample:
        example = selectors.training_example_get(example_id=example_id)
        if example is None:
            raise Http404("No TrainingExample matches the given query.")  # as get_object_or_404 says
        return example

    @extend_schema(responses=ExampleOutputSerializer)
    def get(self, request, example_id: int):
        return Response(self.OutputSerializer(self._get(example_id)).data)

    @extend_schema(request=InputSerializer, responses=ExampleOutputSerializer)
    def patch(self, request, example_id: int):
        example = self._get(example_id)
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.training_example_update(example=example, user=request.user, data=data.validated_data)
        return Response(self.OutputSerializer(self._get(example_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, example_id: int):
        services.training_example_delete(example=self._get(example_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrainingExampleApproveApi(APIView):
    permission_classes = [HasPerm(roles.PERM_REVIEW_EXAMPLE)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TrainingExampleApproveInput"

        action = serializers.ChoiceField(choices=["approve", "reject", "reopen"])
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    OutputSerializer = ExampleOutputSerializer

    @extend_schema(request=InputSerializer, responses=ExampleOutputSerializer)
    def post(self, request, example_id: int):
        example = get_object_or_404(TrainingExample, pk=example_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        action, note = data.validated_data["action"], data.validated_data["note"]
        if action == "approve":
            services.training_example_approve(example=example, reviewer=request.user, note=note)
        elif action == "reject":
            services.training_example_reject(example=example, reviewer=request.user, note=note)
        else:
            services.training_example_reopen(example=example, user=request.user, note=note)
        return Response(self.OutputSerializer(selectors.training_example_get(example_id=example_id)).data)
