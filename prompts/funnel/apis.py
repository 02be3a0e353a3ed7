from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm
from leads import roles
from prompts.funnel.selectors import ATTRIBUTION_RULE, funnel_for_versions
from prompts.models import FunnelStep


class PromptVersionFunnelApi(APIView):
    """A version's funnel over all the conversations it answered: each step's rate with its 95% Wilson
    interval and median time from the lead's first message, its cost, and cost per qualified, booked and won
    lead (None when a model it used has no price, or no lead reached the step)."""

    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS)]

    class OutputSerializer(serializers.Serializer):
        class FunnelStepSerializer(serializers.Serializer):
            step = serializers.ChoiceField(choices=FunnelStep.values)
            label = serializers.CharField()  # type: ignore[assignment]
            count = serializers.IntegerField()
            rate = serializers.FloatField(allow_null=True)
            rate_low = serializers.FloatField(allow_null=True)
            rate_high = serializers.FloatField(allow_null=True)
            median_seconds = serializers.FloatField(allow_null=True)

        class FunnelCostPerSerializer(serializers.Serializer):
            qualified = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
            booked = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
            won = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)

        prompt_version_id = serializers.IntegerField()
        version = serializers.IntegerField()
        conversations = serializers.IntegerField()
        steps = FunnelStepSerializer(many=True)
        cost_usd = serializers.DecimalField(max_digits=20, decimal_places=8, allow_null=True)
        cost_per = FunnelCostPerSerializer()
        attribution_rule = serializers.CharField()

    @extend_schema(operation_id="prompt_version_funnel", responses=OutputSerializer)
    def get(self, request: Request, version_id: int) -> Response:
        funnel = funnel_for_versions(version_ids=[version_id]).get(version_id)
        if funnel is None:
            raise Http404(f"Prompt version {version_id} does not exist.")
        return Response(
            self.OutputSerializer({**funnel.as_dict(), "attribution_rule": ATTRIBUTION_RULE}).data
        )
