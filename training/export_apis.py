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
from training.export import FORMATS, training_export_lines

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

    @extend_schema(
        operation_id="training_export",
        parameters=[OpenApiParameter("format", str, enum=list(FORMATS), required=True)],
        responses={(200, "application/jsonl"): OpenApiTypes.STR},
    )
    def get(self, request):
        data = self.InputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        fmt = data.validated_data["format"]

        def skipped(example_id: int, errors: list[str]) -> None:
            logger.warning("export %s: skipped example %s: %s", fmt, example_id, "; ".join(errors))

        response = StreamingHttpResponse(
            training_export_lines(fmt=fmt, on_skip=skipped), content_type="application/jsonl"
        )
        response["Content-Disposition"] = f'attachment; filename="training_{fmt}.jsonl"'
        return response
