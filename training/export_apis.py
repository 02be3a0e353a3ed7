import logging

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from config.api import HasPerm
from leads import roles
from leads.models import Channel
from training.export import FORMATS, training_export_lines
from training.models import ExampleStatus, ExampleType
from training.review.selectors import SOURCES, ExampleFilters

logger = logging.getLogger(__name__)


class _FirstRenderer(DefaultContentNegotiation):
    # `?format=` names the export format here, not DRF's renderer override; errors are always JSON.
    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TrainingExportApi(APIView):
    """Approved examples as OpenAI fine-tuning JSONL, streamed; rows that break the format are left out."""

    permission_classes = [HasPerm(roles.PERM_VIEW_EXAMPLES)]

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _FirstRenderer

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TrainingExportInput"

        format = serializers.ChoiceField(choices=FORMATS)
        # The example library's filters (training.review): which approved examples to export.
        example_type = serializers.ChoiceField(choices=ExampleType.choices, required=False)
        source = serializers.ChoiceField(choices=[value for value, _ in SOURCES], required=False)
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)
        created_from = serializers.DateField(required=False)
        created_to = serializers.DateField(required=False)
        q = serializers.CharField(required=False, max_length=200, allow_blank=True)

    @extend_schema(
        operation_id="training_export",
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), required=True)],
        responses={(200, "application/jsonl"): OpenApiTypes.STR},
    )
    def get(self, request):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        fmt = data.validated_data["format"]
        chosen = {key: value for key, value in data.validated_data.items() if key != "format"}
        filters = ExampleFilters(status=ExampleStatus.APPROVED, **chosen) if chosen else None

        def skipped(example_id: int, errors: list[str]) -> None:
            logger.warning("export %s: skipped example %s: %s", fmt, example_id, "; ".join(errors))

        response = StreamingHttpResponse(
            training_export_lines(fmt=fmt, on_skip=skipped, filters=filters), content_type="application/jsonl"
        )
        response["Content-Disposition"] = f'attachment; filename="training_{fmt}.jsonl"'
        return response
