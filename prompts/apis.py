from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm, Pagination
from leads import roles
from prompts import selectors, services
from prompts.models import PromptVersion

CanView = HasPerm(roles.PERM_VIEW_PROMPTS)
CanActivate = HasPerm(roles.PERM_ACTIVATE_PROMPT)


def _get_or_404(version_id: int) -> PromptVersion:
    version = selectors.prompt_version_get(version_id=version_id)
    if version is None:
        raise Http404(f"Prompt version {version_id} does not exist.")
    return version


class PromptFiguresSerializer(serializers.Serializer):
    conversations = serializers.IntegerField()
    qualified = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    success_rate_low = serializers.FloatField(allow_null=True)
    success_rate_high = serializers.FloatField(allow_null=True)
    replies = serializers.IntegerField()
    median_latency_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()


class PromptResultsSerializer(PromptFiguresSerializer):
    since_activation = PromptFiguresSerializer(allow_null=True)


class PromptVersionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    change_note = serializers.CharField()
    author = serializers.CharField(source="author.get_username", default=None, allow_null=True)
    parent_id = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    activated_at = serializers.DateTimeField(allow_null=True)
    activated_by = serializers.CharField(source="activated_by.get_username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    content_length = serializers.IntegerField()
    results = serializers.SerializerMethodField()

    @extend_schema_field(PromptResultsSerializer)
    def get_results(self, obj: PromptVersion) -> dict[str, Any]:
        return PromptResultsSerializer(obj.results.as_dict()).data


class PromptVersionDetailSerializer(PromptVersionSummarySerializer):
    content = serializers.CharField()


class PromptDraftInputSerializer(serializers.Serializer):
    # Stored exactly as typed: whitespace in a prompt can matter, so only the service judges emptiness.
    content = serializers.CharField(trim_whitespace=False, allow_blank=True)
    change_note = serializers.CharField(required=False, allow_blank=True, default="")


class PromptDraftWithParentInputSerializer(PromptDraftInputSerializer):
    parent = serializers.IntegerField(required=False, allow_null=True, default=None)


class PromptVersionDiffSerializer(serializers.Serializer):
    version_id = serializers.IntegerField(source="version.pk")
    version = serializers.IntegerField(source="version.version")
    against_id = serializers.IntegerField(source="against.pk")
    against = serializers.IntegerField(source="against.version")
    diff = serializers.CharField()


class PromptVersionsApi(APIView):
    """GET lists the versions (paginated); POST saves a draft."""

    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS, post=roles.PERM_CREATE_PROMPT)]
    pagination_class = Pagination  # documents the page envelope in the schema
    InputSerializer = PromptDraftWithParentInputSerializer

    @extend_schema(operation_id="prompt_versions_list", responses=PromptVersionSummarySerializer(many=True))
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(selectors.prompt_version_list(), request, view=self)
        versions = selectors.prompt_version_list_with_results(queryset=page)
        return paginator.get_paginated_response(PromptVersionSummarySerializer(versions, many=True).data)

    @extend_schema(
        operation_id="prompt_versions_create",
        request=InputSerializer,
        responses={201: PromptVersionDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        parent = None
        if data.validated_data["parent"] is not None:
            parent = PromptVersion.objects.filter(pk=data.validated_data["parent"]).first()
            if parent is None:
                raise ValidationError({"parent": "No prompt version has this id."})
        draft = services.prompt_version_create_draft(
            content=data.validated_data["content"],
            change_note=data.validated_data["change_note"],
            parent=parent,
            user=request.user,
        )
        return Response(
            PromptVersionDetailSerializer(_get_or_404(draft.pk)).data, status=status.HTTP_201_CREATED
        )


class PromptVersionDetailApi(APIView):
    permission_classes = [CanView]

    OutputSerializer = PromptVersionDetailSerializer

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, version_id: int) -> Response:
        return Response(self.OutputSerializer(_get_or_404(version_id)).data)


class PromptVersionActivateApi(APIView):
    permission_classes = [CanActivate]

    OutputSerializer = PromptVersionDetailSerializer

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, version_id: int) -> Response:
        version = PromptVersion.objects.filter(pk=version_id).only("pk").first()
        if version is None:
            raise Http404(f"Prompt version {version_id} does not exist.")
        services.prompt_version_activate(version=version, user=request.user)
        return Response(self.OutputSerializer(_get_or_404(version_id)).data)


class PromptActiveApi(APIView):
    """GET the active version; POST deploys: new text saved as the next version and made active, in one
    transaction."""

    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS, post=roles.PERM_ACTIVATE_PROMPT)]
    InputSerializer = PromptDraftInputSerializer
    OutputSerializer = PromptVersionDetailSerializer

    @extend_schema(operation_id="prompt_active_retrieve", responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        active = selectors.prompt_version_get_active()
        if active is None:
            raise Http404("No prompt version is active.")
        return Response(self.OutputSerializer(active).data)

    @extend_schema(
        operation_id="prompt_active_deploy", request=InputSerializer, responses={201: OutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deployed = services.prompt_version_deploy(
            content=data.validated_data["content"],
            change_note=data.validated_data["change_note"],
            user=request.user,
        )
        return Response(self.OutputSerializer(_get_or_404(deployed.pk)).data, status=status.HTTP_201_CREATED)


class PromptVersionDiffApi(APIView):
    permission_classes = [CanView]

    class FilterSerializer(serializers.Serializer):
        against = serializers.IntegerField(required=False, min_value=1)

    OutputSerializer = PromptVersionDiffSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("against", int, description="Version id to compare with; default the active one")
        ],
        responses=OutputSerializer,
    )
    def get(self, request: Request, version_id: int) -> Response:
        params = self.FilterSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        version = selectors.prompt_version_content(version_id=version_id)
        if version is None:
            raise Http404(f"Prompt version {version_id} does not exist.")
        against_id = params.validated_data.get("against")
        if against_id is None:
            against = PromptVersion.objects.filter(is_active=True).only("pk", "version", "content").first()
            if against is None:
                raise ValidationError({"against": "No version is active; name one to compare with."})
        else:
            against = selectors.prompt_version_content(version_id=against_id)
            if against is None:
                raise Http404(f"Prompt version {against_id} does not exist.")
        diff = selectors.prompt_version_diff(version=version, against=against)
        return Response(self.OutputSerializer({"version": version, "against": against, "diff": diff}).data)
