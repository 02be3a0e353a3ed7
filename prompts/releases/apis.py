"""The releases API: proposals and their review, experiments, emergency rollback, alerts."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import HasPerm
from config.errors import NotFound
from leads import roles
from prompts.models import PromptVersion
from prompts.releases import selectors, services
from prompts.releases.models import Experiment, RegressionAlert

CanView = HasPerm(roles.PERM_VIEW_PROMPTS)
CanCreate = HasPerm(roles.PERM_CREATE_PROMPT)
CanActivate = HasPerm(roles.PERM_ACTIVATE_PROMPT)


class ProposalOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    version_id = serializers.IntegerField()
    version = serializers.IntegerField(source="version.version")
    against_id = serializers.IntegerField(allow_null=True)
    proposed_by = serializers.CharField(source="proposed_by.get_username", default=None, allow_null=True)
    change_note = serializers.CharField()
    status = serializers.CharField()
    evaluation_run_id = serializers.IntegerField(allow_null=True)
    rehearsal = serializers.JSONField()
    reviewer = serializers.CharField(source="reviewer.get_username", default=None, allow_null=True)
    review_comment = serializers.CharField()
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class ExperimentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    control_id = serializers.IntegerField()
    treatment_id = serializers.IntegerField()
    share_percent = serializers.IntegerField()
    status = serializers.CharField()
    verdict = serializers.CharField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


def _proposal(proposal_id: int) -> Any:
    proposal = selectors.proposal_get(proposal_id=proposal_id)
    if proposal is None:
        raise NotFound("No such proposal.")
    return proposal


class ProposalCreateApi(APIView):
    permission_classes = [CanCreate]

    class InputSerializer(serializers.Serializer):
        version_id = serializers.IntegerField()
        change_note = serializers.CharField(allow_blank=True)
        evaluation_run_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    @extend_schema(request=InputSerializer, responses={201: ProposalOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = PromptVersion.objects.filter(pk=data.validated_data["version_id"]).first()
        if version is None:
            raise NotFound("No such prompt version (version_id).")
        proposal = services.proposal_create(
            version=version,
            user=request.user,
            change_note=data.validated_data["change_note"],
            evaluation_run_id=data.validated_data["evaluation_run_id"],
        )
        return Response(ProposalOutputSerializer(proposal).data, status=status.HTTP_201_CREATED)


class ProposalDetailApi(APIView):
    permission_classes = [CanView]

    @extend_schema(responses=ProposalOutputSerializer)
    def get(self, request: Request, proposal_id: int) -> Response:
        return Response(ProposalOutputSerializer(_proposal(proposal_id)).data)


class ProposalApproveApi(APIView):
    permission_classes = [CanActivate]

    class InputSerializer(serializers.Serializer):
        share_percent = serializers.IntegerField(min_value=1, max_value=100, default=100)
        comment = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=ProposalOutputSerializer)
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = services.proposal_approve(
            proposal=_proposal(proposal_id), user=request.user, **data.validated_data
        )
        return Response(ProposalOutputSerializer(proposal).data)


class ProposalSendBackApi(APIView):
    permission_classes = [CanActivate]

    class InputSerializer(serializers.Serializer):
        comment = serializers.CharField(allow_blank=True)

    @extend_schema(request=InputSerializer, responses=ProposalOutputSerializer)
    def post(self, request: Request, proposal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposal = services.proposal_send_back(
            proposal=_proposal(proposal_id), user=request.user, comment=data.validated_data["comment"]
        )
        return Response(ProposalOutputSerializer(proposal).data)


def _experiment(experiment_id: int) -> Experiment:
    experiment = Experiment.objects.filter(pk=experiment_id).first()
    if experiment is None:
        raise NotFound("No such experiment.")
    return experiment


class ExperimentPromoteApi(APIView):
    permission_classes = [CanActivate]

    @extend_schema(request=None, responses=ExperimentOutputSerializer)
    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = services.experiment_promote(experiment=_experiment(experiment_id), user=request.user)
        return Response(ExperimentOutputSerializer(experiment).data)


class ExperimentStopApi(APIView):
    permission_classes = [CanActivate]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses=ExperimentOutputSerializer)
    def post(self, request: Request, experiment_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        experiment = services.experiment_stop(
            experiment=_experiment(experiment_id), user=request.user, reason=data.validated_data["reason"]
        )
        return Response(ExperimentOutputSerializer(experiment).data)


class RollbackApi(APIView):
    """Emergency rollback in one request: stops any experiment and restores the previous version."""

    permission_classes = [CanActivate]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(allow_blank=True)
        to_version_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    class OutputSerializer(serializers.Serializer):
        active_id = serializers.IntegerField(source="pk")
        active_version = serializers.IntegerField(source="version")

    @extend_schema(request=InputSerializer, responses=OutputSerializer)
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.release_rollback(user=request.user, **data.validated_data)
        return Response(self.OutputSerializer(version).data)


class AlertDismissApi(APIView):
    permission_classes = [CanActivate]

    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, alert_id: int) -> Response:
        alert = RegressionAlert.objects.filter(pk=alert_id).first()
        if alert is None:
            raise NotFound("No such alert.")
        services.alert_dismiss(alert=alert, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
