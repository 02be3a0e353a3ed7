"""Proposal → review → approval, experiments, rollback, the watches: the services against a real database."""

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from config.errors import Conflict
from leads.models import Activity, Message, MessageRole, Notification
from prompts.models import PromptVersion, PromptVersionConversation
from prompts.releases import selectors, services, stats
from prompts.releases.models import (
    AlertStatus,
    Experiment,
    ExperimentAssignment,
    ExperimentStatus,
    ModelShutdown,
    ProposalStatus,
    RegressionAlert,
)
from tests.factories import ConversationFactory, LeadFactory, MessageFactory


class GateWorse:
    """Shaped like agent.rehearsal.selectors.GateResult."""

    passed = False
    reasons = ["score 0.41 against 0.78 for the active version"]
    run_id = 12


class GateMissing:
    passed = False
    reasons = ["No finished rehearsal of v2 against v1."]
    run_id = None


def gate_worse(*, draft, against):
    return GateWorse()


def gate_missing(*, draft, against):
    return GateMissing()


def test_a_draft_carries_its_model_settings(operator, live):
    model = services.model_settings_clean(
        model_name="gpt-6-luna", temperature="", reasoning_effort="low", max_output_tokens="800"
    )
    draft = services.release_draft_create(content="New text\n", user=operator, change_note="n", model=model)
    draft.refresh_from_db()
    assert (draft.model_name, draft.temperature, draft.reasoning_effort, draft.max_output_tokens) == (
        "gpt-6-luna",
        None,
        "low",
        800,
    )
    settings_ = selectors.version_model_settings(version=draft)
    assert settings_.params() == {"reasoning_effort": "low", "max_completion_tokens": 800}


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("temperature", {"temperature": "hot"}),
        ("temperature", {"temperature": "3"}),
        ("reasoning_effort", {"reasoning_effort": "extreme"}),
        ("max_output_tokens", {"max_output_tokens": "5"}),
        ("model_name", {"model_name": "two words"}),
    ],
)
def test_bad_model_settings_name_the_field(field, values):
    with pytest.raises(ValidationError) as error:
        services.model_settings_clean(**values)
    assert field in error.value.message_dict


def test_new_versions_default_to_a_model_without_an_announced_shutdown(settings):
    assert settings.OPENAI_MODEL == "gpt-6-luna"
    assert services.model_settings_defaults().model_name == "gpt-6-luna"


def test_flagging_an_unsupported_parameter_is_remembered_once(live):
    _, v2 = live
    assert services.version_flag_unsupported_params(version_id=v2.pk, params=["temperature"]) == [
        "temperature"
    ]
    assert services.version_flag_unsupported_params(version_id=v2.pk, params=["temperature"]) == []
    v2.refresh_from_db()
    v2.temperature = 0.4
    assert "temperature" not in selectors.version_model_settings(version=v2).params()


class TestProposals:
    def test_the_change_note_is_required(self, operator, live):
        with pytest.raises(ValidationError) as error:
            services.proposal_create(version=live[1], user=operator, change_note="  ")
        assert "change_note" in error.value.message_dict

    def test_propose_notifies_managers_and_records_an_activity(
        self, operator, manager, live, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            proposal = services.proposal_create(version=live[1], user=operator, change_note="Ask for budget")
        assert proposal.status == ProposalStatus.PENDING and proposal.against_id == live[0].pk
        assert Activity.objects.filter(verb="release.proposed", data__proposal_id=proposal.pk).exists()
        assert Notification.objects.filter(recipient=manager, verb="release.proposed").exists()

    def test_one_pending_proposal_per_version(self, operator, live):
        services.proposal_create(version=live[1], user=operator, change_note="a")
        with pytest.raises(Conflict):
            services.proposal_create(version=live[1], user=operator, change_note="b")

    def test_the_author_may_not_approve_with_the_two_person_rule(self, manager, live, settings):
        settings.RELEASE_TWO_PERSON_RULE = True
        proposal = services.proposal_create(version=live[1], user=manager, change_note="mine")
        with pytest.raises(PermissionDenied, match="two-person"):
            services.proposal_approve(proposal=proposal, user=manager)
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.PENDING
        assert PromptVersion.objects.get(is_active=True).pk == live[0].pk

    def test_without_the_rule_the_author_may_approve(self, manager, live, settings):
        settings.RELEASE_TWO_PERSON_RULE = False
        proposal = services.proposal_create(version=live[1], user=manager, change_note="mine")
        services.proposal_approve(proposal=proposal, user=manager)
        assert PromptVersion.objects.get(is_active=True).pk == live[1].pk

    def test_the_gate_refuses_while_the_rehearsal_is_worse(self, operator, manager, live, settings):
        settings.RELEASE_REHEARSAL_GATE = True
        settings.RELEASE_REHEARSAL_GATE_FUNCTION = "tests.releases.test_services.gate_worse"
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        with pytest.raises(Conflict, match="worse than the active version: score 0.41"):
            services.proposal_approve(proposal=proposal, user=manager)
        settings.RELEASE_REHEARSAL_GATE = False  # the gate is optional: off, the same evidence does not block
        services.proposal_approve(proposal=proposal, user=manager)
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.APPROVED and proposal.rehearsal["worse"] is True

    def test_with_the_gate_on_a_version_without_a_rehearsal_waits(self, operator, manager, live, settings):
        settings.RELEASE_REHEARSAL_GATE = True
        settings.RELEASE_REHEARSAL_GATE_FUNCTION = "tests.releases.test_services.gate_missing"
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        with pytest.raises(Conflict, match="no verdict yet: No finished rehearsal"):
            services.proposal_approve(proposal=proposal, user=manager)

    def test_send_back_needs_a_comment_and_tells_the_author(
        self, operator, manager, live, django_capture_on_commit_callbacks
    ):
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        with pytest.raises(ValidationError):
            services.proposal_send_back(proposal=proposal, user=manager, comment="")
        with django_capture_on_commit_callbacks(execute=True):
            services.proposal_send_back(proposal=proposal, user=manager, comment="Too pushy")
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.CHANGES_REQUESTED and proposal.review_comment == "Too pushy"
        assert Notification.objects.filter(recipient=operator, verb="release.sent_back").exists()

    def test_an_operator_may_not_approve(self, operator, live):
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        with pytest.raises(PermissionDenied):
            services.proposal_approve(proposal=proposal, user=operator)


class TestExperiments:
    def _start(self, operator, manager, live, share=20):
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        services.proposal_approve(proposal=proposal, user=manager, share_percent=share)
        return Experiment.objects.get(status=ExperimentStatus.RUNNING)

    def test_approval_at_20_percent_starts_an_experiment_beside_the_active_version(
        self, operator, manager, live
    ):
        experiment = self._start(operator, manager, live)
        assert (experiment.control_id, experiment.treatment_id, experiment.share_percent) == (
            live[0].pk,
            live[1].pk,
            20,
        )
        assert PromptVersion.objects.get(is_active=True).pk == live[0].pk

    def test_the_same_lead_gets_the_same_version_across_20_messages(self, operator, manager, live):
        self._start(operator, manager, live)
        leads = [LeadFactory() for _ in range(30)]
        first = {
            lead.pk: services.release_version_for_lead(
                lead_id=lead.pk, lead_key=lead.manychat_subscriber_id
            ).pk
            for lead in leads
        }
        for _ in range(19):
            for lead in leads:
                assert (
                    services.release_version_for_lead(
                        lead_id=lead.pk, lead_key=lead.manychat_subscriber_id
                    ).pk
                    == first[lead.pk]
                )
        assert ExperimentAssignment.objects.count() == 30  # one row per lead, however many messages

    def test_promote_and_stop_are_one_call_each(self, operator, manager, live):
        experiment = self._start(operator, manager, live)
        services.experiment_promote(experiment=experiment, user=manager)
        assert PromptVersion.objects.get(is_active=True).pk == live[1].pk
        with pytest.raises(Conflict):
            services.experiment_stop(experiment=experiment, user=manager)
        lead = LeadFactory()
        assert services.release_version_for_lead(lead_id=lead.pk, lead_key="x").pk == live[1].pk

    def test_the_report_counts_each_arm_and_the_first_decision_stands(self, operator, manager, live):
        experiment = self._start(operator, manager, live, share=50)
        now = timezone.now()
        for i in range(400):
            lead = LeadFactory()
            version = services.release_version_for_lead(lead_id=lead.pk, lead_key=lead.manychat_subscriber_id)
            conversation = ConversationFactory(lead=lead)
            wins = 0.6 if version.pk == live[1].pk else 0.2
            if (i * 7919 % 100) / 100 < wins:
                PromptVersionConversation.objects.create(
                    prompt_version=version,
                    conversation=conversation,
                    first_reply_at=now,
                    last_reply_at=now,
                    qualified_at=timezone.now(),
                )
        report = selectors.experiment_report(experiment=experiment)
        assert report.a.conversations + report.b.conversations == 400
        assert report.verdict is stats.Verdict.B_BETTER and report.primary.lift > 0.2
        assert services.experiment_check(experiment_id=experiment.pk) == "b_better"
        experiment.refresh_from_db()
        assert experiment.verdict == "b_better" and experiment.decided_at is not None


class TestRollback:
    def test_rollback_needs_a_reason_and_restores_the_previous_version(self, manager, live):
        services.proposal_approve  # noqa: B018 - the path used in production is the same activate
        from prompts import services as prompt_services

        prompt_services.prompt_version_activate(version=live[1], user=manager)
        with pytest.raises(ValidationError):
            services.release_rollback(user=manager, reason="")
        restored = services.release_rollback(user=manager, reason="Leads complain")
        assert restored.pk == live[0].pk and PromptVersion.objects.get(is_active=True).pk == live[0].pk
        assert Activity.objects.filter(verb="release.rolled_back", data__reason="Leads complain").exists()

    def test_rollback_during_an_experiment_stops_it(self, operator, manager, live):
        proposal = services.proposal_create(version=live[1], user=operator, change_note="n")
        services.proposal_approve(proposal=proposal, user=manager, share_percent=20)
        services.release_rollback(user=manager, reason="B misbehaves")
        assert not Experiment.objects.filter(status=ExperimentStatus.RUNNING).exists()
        lead = LeadFactory()
        assert services.release_version_for_lead(lead_id=lead.pk, lead_key="k").pk == live[0].pk


def _traffic(*, version, start, count, qualified_share):
    for i in range(count):
        lead = LeadFactory()
        conversation = ConversationFactory(lead=lead)
        message = MessageFactory(conversation=conversation, role=MessageRole.LEAD)
        at = start + timedelta(minutes=i)
        Message.objects.filter(pk=message.pk).update(created_at=at)
        if i < count * qualified_share:
            PromptVersionConversation.objects.create(
                prompt_version=version,
                conversation=conversation,
                first_reply_at=at,
                last_reply_at=at,
                qualified_at=at,
            )


class TestRegressionWatch:
    def test_a_drop_opens_one_alert_notifies_and_does_not_roll_back_by_default(
        self, manager, live, django_capture_on_commit_callbacks
    ):
        v1, v2 = live
        now = timezone.now()
        released = now - timedelta(days=1)
        _traffic(version=v1, start=released - timedelta(days=3), count=600, qualified_share=0.3)
        PromptVersion.objects.filter(pk=v1.pk).update(is_active=False)
        PromptVersion.objects.filter(pk=v2.pk).update(is_active=True, activated_at=released)
        Activity.objects.create(
            verb="prompt.activated", data={"version_id": v2.pk, "previous_version_id": v1.pk}
        )
        _traffic(version=v2, start=released + timedelta(minutes=1), count=300, qualified_share=0.1)
        with django_capture_on_commit_callbacks(execute=True):
            opened = services.regression_watch(now=now)
        assert (
            RegressionAlert.objects.filter(
                pk__in=opened, metric="qualification", status=AlertStatus.OPEN
            ).count()
            == 1
        )
        assert Notification.objects.filter(recipient=manager, verb="release.regression_detected").exists()
        assert services.regression_watch(now=now) == []  # one open alert per metric
        assert PromptVersion.objects.get(is_active=True).pk == v2.pk  # auto-rollback is off by default

    def test_auto_rollback_when_switched_on(self, live, settings):
        settings.RELEASE_AUTO_ROLLBACK = True
        settings.RELEASE_AUTO_ROLLBACK_DROP_POINTS = 10
        v1, v2 = live
        now = timezone.now()
        released = now - timedelta(days=1)
        _traffic(version=v1, start=released - timedelta(days=3), count=600, qualified_share=0.3)
        PromptVersion.objects.filter(pk=v1.pk).update(is_active=False)
        PromptVersion.objects.filter(pk=v2.pk).update(is_active=True, activated_at=released)
        Activity.objects.create(
            verb="prompt.activated", data={"version_id": v2.pk, "previous_version_id": v1.pk}
        )
        _traffic(version=v2, start=released + timedelta(minutes=1), count=300, qualified_share=0.05)
        services.regression_watch(now=now)
        assert PromptVersion.objects.get(is_active=True).pk == v1.pk


class TestRetirementWatch:
    def test_a_model_shutting_down_within_60_days_notifies_managers_once(
        self, fake_openai, manager, live, django_capture_on_commit_callbacks
    ):
        fake_openai.list_models(
            {"id": "gpt-6-luna", "shutdown_date": "2027-01-14"}, {"id": "gpt-7", "shutdown_date": None}
        )
        today = date(2026, 12, 1)
        with django_capture_on_commit_callbacks(execute=True):
            assert services.retirement_watch(today=today) == ["gpt-6-luna"]
            services.retirement_watch(today=today)
        row = ModelShutdown.objects.get(model_name="gpt-6-luna")
        assert row.shutdown_date == date(2027, 1, 14)
        assert Notification.objects.filter(recipient=manager, verb="release.model_retiring").count() == 1
        notices = selectors.retirement_notices(today=today)
        assert [(n.model, n.days_left) for n in notices] == [("gpt-6-luna", 44)]

    def test_far_shutdowns_do_not_notify(
        self, fake_openai, manager, live, django_capture_on_commit_callbacks
    ):
        fake_openai.list_models({"id": "gpt-6-luna", "shutdown_date": "2027-06-01"})
        with django_capture_on_commit_callbacks(execute=True):
            assert services.retirement_watch(today=date(2026, 12, 1)) == []
        assert not Notification.objects.filter(verb="release.model_retiring").exists()

    def test_try_a_replacement_makes_a_draft_with_the_same_text(self, operator, live):
        draft = services.release_replacement_draft(version=live[0], model_name="gpt-7", user=operator)
        assert (draft.content, draft.model_name, draft.is_active, draft.parent_id) == (
            live[0].content,
            "gpt-7",
            False,
            live[0].pk,
        )
