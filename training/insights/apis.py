import csv
import io
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm
from leads import roles
from prompts.models import PromptVersion
from training.insights.selectors import MAX_DAYS, InsightsFilter, insights_default_range, training_insights


class InsightsFilterSerializer(serializers.Serializer):
    """`start` and `end` are days (YYYY-MM-DD), both included; the default is the last 30 days."""

    start = serializers.DateField(required=False)
    end = serializers.DateField(required=False)
    prompt_version = serializers.IntegerField(required=False, min_value=1, help_text="A prompt version id.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default_start, default_end = insights_default_range()
        end = attrs.get("end") or default_end
        start = attrs.get("start") or (end - (default_end - default_start))
        if start > end:
            raise serializers.ValidationError({"start": "Must be on or before end."})
        if (end - start).days + 1 > MAX_DAYS:
            raise serializers.ValidationError({"end": f"The range may span at most {MAX_DAYS} days."})
        version_id = attrs.get("prompt_version")
        if version_id is not None and not PromptVersion.objects.filter(pk=version_id).exists():
            raise serializers.ValidationError({"prompt_version": "No prompt version with this id."})
        return {"start": start, "end": end, "prompt_version_id": version_id}


def insights_filter_from(params: Any) -> InsightsFilter:
    """Parse query parameters; a bad one raises a ValidationError naming it."""
    unknown = set(params.keys()) - {"start", "end", "prompt_version", "format"}
    if unknown:
        raise serializers.ValidationError(dict.fromkeys(sorted(unknown), "Unknown parameter."))
    parsed = InsightsFilterSerializer(data={k: v for k, v in params.items() if v != ""})
    parsed.is_valid(raise_exception=True)
    return InsightsFilter(**parsed.validated_data)


class TrainingInsightsApi(APIView):
    """Training and agent figures for a date range, optionally for one prompt version."""

    permission_classes = [HasPerm(roles.PERM_VIEW_EXAMPLES)]

    FilterSerializer = InsightsFilterSerializer

    class OutputSerializer(serializers.Serializer):
        class ExamplesSerializer(serializers.Serializer):
            total = serializers.IntegerField()
            by_status = serializers.DictField(child=serializers.IntegerField())
            by_type = serializers.DictField(child=serializers.IntegerField())
            by_status_and_type = serializers.DictField(
                child=serializers.DictField(child=serializers.IntegerField())
            )
            decided = serializers.IntegerField()
            approval_rate = serializers.FloatField(allow_null=True)

        class SubmissionDaySerializer(serializers.Serializer):
            day = serializers.DateField()
            total = serializers.IntegerField()
            good = serializers.IntegerField()
            bad = serializers.IntegerField()
            correction = serializers.IntegerField()

        class DecisionDaySerializer(serializers.Serializer):
            day = serializers.DateField()
            approved = serializers.IntegerField()
            rejected = serializers.IntegerField()

        class ReviewTimeSerializer(serializers.Serializer):
            decided = serializers.IntegerField()
            median_seconds = serializers.FloatField(allow_null=True)

        class SubmitterSerializer(serializers.Serializer):
            user_id = serializers.IntegerField()
            name = serializers.CharField()
            submitted = serializers.IntegerField()
            approved = serializers.IntegerField()
            rejected = serializers.IntegerField()

        class ReviewerSerializer(serializers.Serializer):
            user_id = serializers.IntegerField()
            name = serializers.CharField()
            reviewed = serializers.IntegerField()
            approved = serializers.IntegerField()
            rejected = serializers.IntegerField()

        class FeedbackSerializer(serializers.Serializer):
            phrase = serializers.CharField()
            count = serializers.IntegerField()
            bad = serializers.IntegerField()
            correction = serializers.IntegerField()

        class FlaggedReplySerializer(serializers.Serializer):
            message_id = serializers.IntegerField()
            conversation_id = serializers.IntegerField(allow_null=True)
            text = serializers.CharField()
            prompt_version = serializers.IntegerField(allow_null=True)
            count = serializers.IntegerField()

        class VersionSerializer(serializers.Serializer):
            prompt_version_id = serializers.IntegerField()
            version = serializers.IntegerField()
            conversations = serializers.IntegerField()
            qualified = serializers.IntegerField()
            success_rate = serializers.FloatField(allow_null=True)
            success_rate_low = serializers.FloatField(allow_null=True)
            success_rate_high = serializers.FloatField(allow_null=True)

        class InsightsVersionFunnelSerializer(serializers.Serializer):
            class InsightsFunnelStepSerializer(serializers.Serializer):
                step = serializers.ChoiceField(choices=["engaged", "qualified", "booked", "won", "lost"])
                label = serializers.CharField()
                count = serializers.IntegerField()
                rate = serializers.FloatField(allow_null=True)
                rate_low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, low end.")
                rate_high = serializers.FloatField(
                    allow_null=True, help_text="95% Wilson interval, high end."
                )
                median_seconds = serializers.FloatField(
                    allow_null=True, help_text="Median time from the lead's first message to the step."
                )

            prompt_version_id = serializers.IntegerField()
            version = serializers.IntegerField()
            conversations = serializers.IntegerField()
            steps = InsightsFunnelStepSerializer(many=True)

        class FunnelSerializer(serializers.Serializer):
            stage = serializers.CharField()
            label = serializers.CharField()
            count = serializers.IntegerField()

        class HandoffsSerializer(serializers.Serializer):
            class ReasonSerializer(serializers.Serializer):
                reason = serializers.CharField()
                count = serializers.IntegerField()

            total = serializers.IntegerField()
            by_reason = ReasonSerializer(many=True)

        class RangeSerializer(serializers.Serializer):
            start = serializers.DateField()
            end = serializers.DateField()
            prompt_version = serializers.IntegerField(allow_null=True)

        range = RangeSerializer()
        examples = ExamplesSerializer()
        submissions_per_day = SubmissionDaySerializer(many=True)
        decisions_per_day = DecisionDaySerializer(many=True)
        review_time = ReviewTimeSerializer()
        top_submitters = SubmitterSerializer(many=True)
        top_reviewers = ReviewerSerializer(many=True)
        top_feedback = FeedbackSerializer(many=True)
        top_flagged_replies = FlaggedReplySerializer(many=True)
        prompt_versions = VersionSerializer(many=True)
        funnel = InsightsVersionFunnelSerializer(
            many=True, help_text="Per version: each funnel step's rate with its interval and median time."
        )
        lead_funnel = FunnelSerializer(many=True)
        handoffs = HandoffsSerializer()

    @extend_schema(
        operation_id="training_insights", parameters=[InsightsFilterSerializer], responses=OutputSerializer
    )
    def get(self, request):
        insights = training_insights(f=insights_filter_from(request.query_params))
        return Response(self.OutputSerializer(insights).data)


def insights_csv_rows(insights: dict[str, Any]) -> list[list[Any]]:
    """Every figure as one long table: section, label, metric, value."""
    rows: list[list[Any]] = [["section", "label", "metric", "value"]]
    r = insights["range"]
    rows += [["range", "", "start", r["start"]], ["range", "", "end", r["end"]]]
    rows.append(
        ["range", "", "prompt_version", r["prompt_version"] if r["prompt_version"] is not None else ""]
    )
    ex = insights["examples"]
    rows += [["examples_by_status", status, "count", n] for status, n in ex["by_status"].items()]
    rows += [["examples_by_type", kind, "count", n] for kind, n in ex["by_type"].items()]
    rows += [["examples", "", "total", ex["total"]], ["examples", "", "approval_rate", ex["approval_rate"]]]
    rt = insights["review_time"]
    rows += [
        ["review_time", "", "decided", rt["decided"]],
        ["review_time", "", "median_seconds", rt["median_seconds"]],
    ]
    for day in insights["submissions_per_day"]:
        rows += [
            ["submissions_per_day", day["day"], k, day[k]] for k in ("total", "good", "bad", "correction")
        ]
    for day in insights["decisions_per_day"]:
        rows += [["decisions_per_day", day["day"], k, day[k]] for k in ("approved", "rejected")]
    for person in insights["top_submitters"]:
        rows += [
            ["top_submitters", person["name"], k, person[k]] for k in ("submitted", "approved", "rejected")
        ]
    for person in insights["top_reviewers"]:
        rows += [
            ["top_reviewers", person["name"], k, person[k]] for k in ("reviewed", "approved", "rejected")
        ]
    rows += [["top_feedback", item["phrase"], "count", item["count"]] for item in insights["top_feedback"]]
    rows += [
        ["top_flagged_replies", f"message {item['message_id']}: {item['text']}", "count", item["count"]]
        for item in insights["top_flagged_replies"]
    ]
    for v in insights["prompt_versions"]:
        rows += [
            ["prompt_versions", f"v{v['version']}", k, v[k]]
            for k in ("conversations", "qualified", "success_rate", "success_rate_low", "success_rate_high")
        ]
    for v in insights["funnel"]:
        for step in v["steps"]:
            rows += [
                [f"funnel_v{v['version']}", step["step"], k, step[k]]
                for k in ("count", "rate", "rate_low", "rate_high", "median_seconds")
            ]
    rows += [["lead_funnel", stage["stage"], "count", stage["count"]] for stage in insights["lead_funnel"]]
    rows.append(["handoffs", "", "total", insights["handoffs"]["total"]])
    rows += [
        ["handoffs_by_reason", item["reason"], "count", item["count"]]
        for item in insights["handoffs"]["by_reason"]
    ]
    return [["" if value is None else value for value in row] for row in rows]


def _csv_safe(value: Any) -> Any:
    # Text typed by leads and staff could start a spreadsheet formula; a leading quote keeps it text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class TrainingInsightsCsvApi(APIView):
    """The same figures as a CSV download, for the same parameters."""

    permission_classes = [HasPerm(roles.PERM_VIEW_EXAMPLES)]

    @extend_schema(
        operation_id="training_insights_csv",
        parameters=[InsightsFilterSerializer],
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request):
        f = insights_filter_from(request.query_params)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in insights_csv_rows(training_insights(f=f)):
            writer.writerow([_csv_safe(value) for value in row])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="insights_{f.start}_{f.end}.csv"'
        return response
