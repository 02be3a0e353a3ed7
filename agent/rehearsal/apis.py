"""The rehearsal API: scenarios, drafting one from a conversation, starting a run, the report, a play's
transcript and the release gate. Thin: parse, call one service or selector, serialize."""

from dataclasses import asdict
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from agent.rehearsal import selectors, services
from agent.rehearsal.models import MAX_REPEATS, MAX_TURNS_LIMIT, Scenario
from config.api import HasPerm, Pagination, paginated_response
from config.errors import NotFound
from leads import roles
from leads.models import Channel, Conversation
from prompts.models import PromptVersion
from prompts.selectors import active_prompt_version


class ScenarioOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "RehearsalScenario"

    id = serializers.IntegerField()
    title = serializers.CharField()
    persona = serializers.CharField()
    goal = serializers.CharField()
    opening_messages = serializers.ListField(child=serializers.CharField())
    channel = serializers.CharField()
    facts = serializers.DictField(child=serializers.CharField())
    max_turns = serializers.IntegerField()
    checks = serializers.ListField(child=serializers.DictField())
    tags = serializers.ListField(child=serializers.CharField())
    source_conversation_id = serializers.IntegerField(allow_null=True)
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ScenarioInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "RehearsalScenarioInput"

    title = serializers.CharField(max_length=200)
    persona = serializers.CharField(max_length=4000)
    goal = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    opening_messages = serializers.ListField(child=serializers.CharField(max_length=2000), min_length=1)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.INSTAGRAM)
    facts = serializers.DictField(child=serializers.CharField(max_length=500), required=False, default=dict)
    max_turns = serializers.IntegerField(min_value=1, max_value=MAX_TURNS_LIMIT, default=6)
    checks = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False, default=list)
    source_conversation_id = serializers.IntegerField(required=False, allow_null=True, default=None)


def _scenario_or_404(scenario_id: int) -> Scenario:
    scenario = Scenario.objects.filter(pk=scenario_id).first()
    if scenario is None:
        raise NotFound(f"Scenario {scenario_id} does not exist.", field="scenario_id")
    return scenario


class ScenarioListApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS, post=roles.PERM_CREATE_PROMPT)]
    pagination_class = Pagination  # documents the page envelope in the schema

    @extend_schema(operation_id="rehearsal_scenario_list", responses=ScenarioOutputSerializer(many=True))
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.scenario_list(tag=request.query_params.get("tag", "")),
            serializer_class=ScenarioOutputSerializer,
        )

    @extend_schema(
        operation_id="rehearsal_scenario_create",
        request=ScenarioInputSerializer,
        responses={201: ScenarioOutputSerializer},
    )
    def post(self, request):
        data = ScenarioInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scenario = services.scenario_create(data=dict(data.validated_data), user=request.user)
        return Response(ScenarioOutputSerializer(scenario).data, status=status.HTTP_201_CREATED)


class ScenarioDetailApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS, patch=roles.PERM_CREATE_PROMPT)]

    class PatchSerializer(ScenarioInputSerializer):
        class Meta:
            ref_name = "RehearsalScenarioPatch"

        is_active = serializers.BooleanField(required=False)

    @extend_schema(operation_id="rehearsal_scenario_detail", responses=ScenarioOutputSerializer)
    def get(self, request, scenario_id: int):
        return Response(ScenarioOutputSerializer(_scenario_or_404(scenario_id)).data)

    @extend_schema(
        operation_id="rehearsal_scenario_update", request=PatchSerializer, responses=ScenarioOutputSerializer
    )
    def patch(self, request, scenario_id: int):
        scenario = _scenario_or_404(scenario_id)
        data = self.PatchSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        scenario = services.scenario_update(scenario=scenario, data=dict(data.validated_data))
        return Response(ScenarioOutputSerializer(scenario).data)


class ScenarioDraftApi(APIView):
    """Draft (not save) a scenario from a real conversation: the model writes the persona and opening."""

    permission_classes = [HasPerm(roles.PERM_CREATE_PROMPT)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RehearsalDraftInput"

        conversation_id = serializers.IntegerField()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RehearsalDraft"

        title = serializers.CharField()
        persona = serializers.CharField()
        goal = serializers.CharField()
        opening_messages = serializers.ListField(child=serializers.CharField())
        channel = serializers.CharField()
        facts = serializers.DictField(child=serializers.CharField())
        max_turns = serializers.IntegerField()
        tags = serializers.ListField(child=serializers.CharField())
        source_conversation_id = serializers.IntegerField()

    @extend_schema(
        operation_id="rehearsal_scenario_draft", request=InputSerializer, responses=OutputSerializer
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation = (
            Conversation.objects.select_related("lead")
            .filter(pk=data.validated_data["conversation_id"])
            .first()
        )
        if conversation is None:
            raise NotFound("No conversation with this id.", field="conversation_id")
        draft = services.scenario_draft_from_conversation(conversation=conversation)
        return Response(self.OutputSerializer(asdict(draft)).data)


class RunSerializer(serializers.Serializer):
    class Meta:
        ref_name = "RehearsalRun"

    id = serializers.IntegerField()
    status = serializers.CharField()
    version = serializers.IntegerField(source="version.version")
    against_version = serializers.IntegerField(source="against_version.version", allow_null=True)
    repeats = serializers.IntegerField()
    total = serializers.IntegerField()
    judge_trusted = serializers.BooleanField(allow_null=True)
    judge_agreement = serializers.FloatField(allow_null=True)
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def _side(summary: selectors.SideSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {
        "version": summary.version_number,
        "plays": summary.plays,
        "passed": summary.passed,
        "score": summary.score,
        "scores_by_repeat": summary.scores,
        "spread": list(summary.spread) if summary.spread else None,
        "stdev": summary.stdev,
        "flaky_scenarios": summary.flaky,
        "asserted": summary.asserted,
        "judged": summary.judged,
        "checks": [
            {
                "name": tally.name,
                "judged": tally.judged,
                "never": tally.never,
                "passed": tally.passed,
                "failed": tally.failed,
                "needs_person": tally.needs_person,
                "pass_rate": tally.pass_rate,
            }
            for tally in summary.checks
        ],
        "never_failures": summary.never_failures,
        "tokens": {"prompt": summary.prompt_tokens, "completion": summary.completion_tokens},
        "model_calls": {
            "agent": summary.agent_calls,
            "lead": summary.lead_calls,
            "judge": summary.judge_calls,
        },
        "cost_usd": str(summary.cost_usd) if summary.cost_usd is not None else None,
    }


def _scenario_side(side: selectors.ScenarioSide | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "pass_rate": side.pass_rate,
        "flaky": side.flaky,
        "plays": [asdict(cell) for cell in side.plays],
    }


def report_data(*, run: Any) -> dict[str, Any]:
    report = selectors.rehearsal_report(run=run)
    return {
        "run": RunSerializer(run).data,
        "progress": {
            "total": report.progress.total,
            "done": report.progress.done,
            "failed": report.progress.failed,
            "running": report.progress.running,
        },
        "draft": _side(report.draft),
        "baseline": _side(report.baseline),
        "scenarios": [
            {
                "id": row.scenario_id,
                "title": row.title,
                "tags": row.tags,
                "draft": _scenario_side(row.draft),
                "baseline": _scenario_side(row.baseline),
            }
            for row in report.rows
        ],
        "gate": asdict(report.gate),
    }


class PromptVersionRehearseApi(APIView):
    """Start a rehearsal of a version (beside `against`, by default the active version)."""

    permission_classes = [HasPerm(roles.PERM_CREATE_PROMPT)]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RehearseInput"

        against = serializers.IntegerField(required=False, allow_null=True)
        repeats = serializers.IntegerField(required=False, min_value=1, max_value=MAX_REPEATS)
        scenario_ids = serializers.ListField(child=serializers.IntegerField(), required=False)
        tags = serializers.ListField(child=serializers.CharField(), required=False)

    @extend_schema(
        operation_id="prompt_version_rehearse",
        request=InputSerializer,
        responses={
            202: dict,
            409: OpenApiResponse(
                description='Today\'s rehearsal cap is reached: {"budget": [the cap named]}.'
            ),
        },
    )
    def post(self, request, version_id: int):
        version = PromptVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise NotFound(f"Prompt version {version_id} does not exist.", field="version_id")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        against_id = data.validated_data.get("against", "default")
        if against_id == "default":
            active = active_prompt_version()
            against = active if active is not None and active.pk != version.pk else None
        elif against_id is None:
            against = None
        else:
            against = PromptVersion.objects.filter(pk=against_id).first()
            if against is None:
                raise ValidationError({"against": "No prompt version with this id."})
        run = services.rehearsal_run_create(
            version=version,
            against=against,
            repeats=data.validated_data.get("repeats"),
            scenario_ids=data.validated_data.get("scenario_ids"),
            tags=data.validated_data.get("tags"),
            user=request.user,
        )
        return Response(
            report_data(run=selectors.rehearsal_run_get(run_id=run.pk)), status=status.HTTP_202_ACCEPTED
        )


class RehearsalRunDetailApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS)]

    @extend_schema(operation_id="rehearsal_run_detail", responses=dict)
    def get(self, request, run_id: int):
        run = selectors.rehearsal_run_get(run_id=run_id)
        if run is None:
            raise NotFound(f"Rehearsal run {run_id} does not exist.", field="run_id")
        return Response(report_data(run=run))


class RehearsalPlayDetailApi(APIView):
    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS)]

    @extend_schema(operation_id="rehearsal_play_detail", responses=dict)
    def get(self, request, play_id: int):
        play = selectors.rehearsal_play_get(play_id=play_id)
        if play is None:
            raise NotFound(f"Play {play_id} does not exist.", field="play_id")
        return Response(
            {
                "id": play.pk,
                "run_id": play.run_id,
                "side": play.side,
                "version": play.version.version,
                "scenario": {"id": play.scenario_id, "title": play.scenario.title},
                "repeat": play.repeat,
                "status": play.status,
                "passed": play.passed,
                "ended": play.ended,
                "turns": play.turns,
                "transcript": selectors.play_transcript_rows(play=play),
                "checks": play.check_results,
                "tokens": {"prompt": play.prompt_tokens, "completion": play.completion_tokens},
            }
        )


class PromptVersionRehearsalGateApi(APIView):
    """The release gate: is this version not worse than `against` (default: the active version)?"""

    permission_classes = [HasPerm(roles.PERM_VIEW_PROMPTS)]

    @extend_schema(operation_id="prompt_version_rehearsal_gate", responses=dict)
    def get(self, request, version_id: int):
        version = PromptVersion.objects.filter(pk=version_id).first()
        if version is None:
            raise NotFound(f"Prompt version {version_id} does not exist.", field="version_id")
        against_id = request.query_params.get("against", "")
        if against_id:
            if not against_id.isdigit():
                raise ValidationError({"against": "Give a prompt version id."})
            against = PromptVersion.objects.filter(pk=int(against_id)).first()
        else:
            against = active_prompt_version()
        if against is None:
            raise ValidationError({"against": "No version to compare with."})
        return Response(asdict(selectors.rehearsal_gate(draft=version, against=against)))
