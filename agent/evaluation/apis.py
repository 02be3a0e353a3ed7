from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from agent import evaluation
from agent.models import EvaluationRun
from config.api import HasPerm
from leads import roles
from prompts.models import PromptVersion
from prompts.selectors import active_prompt_version


class EvaluationVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()


class ExampleSeenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rank = serializers.IntegerField()
    score = serializers.FloatField()
    method = serializers.CharField()


class EvaluationResultSerializer(serializers.Serializer):
    example_id = serializers.IntegerField(source="training_example_id")
    example_type = serializers.CharField(source="training_example.example_type")
    passed = serializers.BooleanField()
    reason = serializers.CharField()
    reply = serializers.CharField()
    checks = serializers.JSONField()
    tokens = serializers.IntegerField()
    examples = ExampleSeenSerializer(many=True, help_text="The approved examples the model saw, best first.")


class EvaluationRunSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    prompt_version = EvaluationVersionSerializer()
    example_limit = serializers.IntegerField()
    total = serializers.IntegerField()
    processed = serializers.IntegerField()
    passed = serializers.IntegerField()
    pass_rate = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class EvaluationRunSerializer(EvaluationRunSummarySerializer):
    against_version = EvaluationVersionSerializer(allow_null=True)
    baseline = EvaluationRunSummarySerializer(source="baseline_run", allow_null=True)
    results = serializers.SerializerMethodField()
    baseline_results = serializers.SerializerMethodField()

    @extend_schema(responses=EvaluationResultSerializer(many=True))
    def get_results(self, obj: EvaluationRun) -> list[dict[str, Any]]:
        rows = self.context.get("rows") or []
        return EvaluationResultSerializer([r.result for r in rows if r.result], many=True).data

    @extend_schema(responses=EvaluationResultSerializer(many=True))
    def get_baseline_results(self, obj: EvaluationRun) -> list[dict[str, Any]]:
        rows = self.context.get("rows") or []
        return EvaluationResultSerializer([r.baseline for r in rows if r.baseline], many=True).data


def _run_data(run: EvaluationRun) -> dict[str, Any]:
    rows = evaluation.evaluation_comparison(run=run)
    return EvaluationRunSerializer(run, context={"rows": rows}).data


def _run_or_404(run_id: int) -> EvaluationRun:
    run = evaluation.evaluation_run_get(run_id=run_id)
    if run is None:
        raise Http404(f"Evaluation run {run_id} does not exist.")
    return run


class PromptVersionEvaluateApi(APIView):
    """Start an evaluation of a version against the approved examples (beside `against`, by default the
    active version); the run executes in the `agent.evaluate_prompt` task. Poll the run for progress."""

    permission_classes = [HasPerm(roles.PERM_CREATE_PROMPT)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PromptEvaluateInput"

        against = serializers.IntegerField(
            required=False, allow_null=True, help_text="A prompt version id; default: the active version."
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=evaluation.MAX_LIMIT)

    @extend_schema(
        operation_id="prompt_version_evaluate",
        request=InputSerializer,
        responses={
            202: EvaluationRunSerializer,
            409: OpenApiResponse(
                description='Today\'s evaluation cap is reached: {"budget": [the cap named]}.'
            ),
        },
    )
    def post(self, request, version_id: int):
        version = PromptVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise Http404(f"Prompt version {version_id} does not exist.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        against_id = data.validated_data.get("against", "default")
        if against_id == "default":
            against = active_prompt_version()
            against = against if against is not None and against.pk != version.pk else None
        elif against_id is None:
            against = None
        else:
            against = PromptVersion.objects.filter(pk=against_id).first()
            if against is None:
                raise DjangoValidationError({"against": "No prompt version with this id."})
        run = evaluation.evaluation_run_create(
            version=version, against=against, limit=data.validated_data.get("limit"), user=request.user
        )
        return Response(_run_data(_run_or_404(run.pk)), status=status.HTTP_202_ACCEPTED)


class EvaluationRunDetailApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS)]

    @extend_schema(operation_id="prompt_evaluation_detail", responses=EvaluationRunSerializer)
    def get(self, request, run_id: int):
        return Response(_run_data(_run_or_404(run_id)))
