"""Governed releases: proposals, experiments (a share of leads), regression alerts, model shutdowns.

Imported by prompts/models.py, so the tables belong to the `prompts` app and its migrations.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length


class ProposalStatus(models.TextChoices):
    PENDING = "pending", "Waiting for review"
    APPROVED = "approved", "Approved"
    CHANGES_REQUESTED = "changes_requested", "Sent back"
    WITHDRAWN = "withdrawn", "Withdrawn"


class ReleaseProposal(models.Model):
    """A request to release a saved version, with its evidence; a manager approves it or sends it back."""

    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.CASCADE, related_name="proposals")
    against = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    change_note = models.CharField(max_length=500)
    status = models.CharField(max_length=20, choices=ProposalStatus.choices, default=ProposalStatus.PENDING)
    # The single-turn evaluation run picked as evidence (agent.EvaluationRun; an id, since prompts sits
    # below agent and may not point at its tables).
    evaluation_run_id = models.PositiveIntegerField(null=True, blank=True)
    # The rehearsal gate's answer when the proposal was decided, kept as evidence.
    rehearsal = models.JSONField(default=dict, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_comment = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "prompt_release_proposals"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ProposalStatus.values), name="release_proposal_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(change_note__length__gt=0), name="release_proposal_note_required"
            ),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False),
                name="release_proposal_decided_has_time",
            ),
            models.UniqueConstraint(
                fields=["version"], condition=Q(status="pending"), name="release_proposal_one_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"Proposal #{self.pk} for v{self.version_id} ({self.status})"


models.CharField.register_lookup(Length)


class ExperimentStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PROMOTED = "promoted", "Promoted"
    STOPPED = "stopped", "Stopped"


class ExperimentVerdict(models.TextChoices):
    NOT_YET = "not_yet", "Not yet"
    B_BETTER = "b_better", "B is better"
    B_WORSE = "b_worse", "B is worse"


class Experiment(models.Model):
    """An approved version (B) answering a share of leads beside the active one (A)."""

    control = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="+")
    treatment = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="+")
    proposal = models.ForeignKey(
        ReleaseProposal, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments"
    )
    share_percent = models.PositiveSmallIntegerField()
    status = models.CharField(
        max_length=16, choices=ExperimentStatus.choices, default=ExperimentStatus.RUNNING
    )
    # The first decision the sequential test reached at a look; once set it stands (always-valid rule).
    verdict = models.CharField(
        max_length=16, choices=ExperimentVerdict.choices, default=ExperimentVerdict.NOT_YET
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    min_p_value = models.FloatField(default=1.0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "prompt_experiments"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ExperimentStatus.values), name="experiment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(verdict__in=ExperimentVerdict.values), name="experiment_verdict_valid"
            ),
            models.CheckConstraint(
                condition=Q(share_percent__gte=1, share_percent__lte=99), name="experiment_share_range"
            ),
            models.CheckConstraint(
                condition=~Q(control=models.F("treatment")), name="experiment_two_versions"
            ),
            models.CheckConstraint(
                condition=Q(status="running") | Q(ended_at__isnull=False), name="experiment_ended_has_time"
            ),
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="experiment_one_running"
            ),
        ]

    def __str__(self) -> str:
        return f"Experiment #{self.pk}: v{self.treatment_id} at {self.share_percent}%"

    @property
    def hash_key(self) -> str:
        return f"experiment-{self.pk}"


class Arm(models.TextChoices):
    A = "a", "A (active)"
    B = "b", "B (candidate)"


class ExperimentAssignment(models.Model):
    """Which arm a lead is in. The arm is a hash of lead and experiment; the row makes it countable."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    arm = models.CharField(max_length=1, choices=Arm.choices)
    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.PROTECT, related_name="+")
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "prompt_experiment_assignments"
        constraints = [
            models.UniqueConstraint(fields=["experiment", "lead"], name="experiment_assignment_unique"),
            models.CheckConstraint(condition=Q(arm__in=Arm.values), name="experiment_assignment_arm_valid"),
        ]
        indexes = [models.Index(fields=["experiment", "arm"], name="experiment_assignment_arm_idx")]

    def __str__(self) -> str:
        return f"lead {self.lead_id} in {self.arm} of experiment {self.experiment_id}"


class AlertMetric(models.TextChoices):
    QUALIFICATION = "qualification", "Qualification rate"
    HANDOFF = "handoff", "Handoff rate"
    FAILURE = "failure", "Failure rate"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    DISMISSED = "dismissed", "Dismissed"
    ROLLED_BACK = "rolled_back", "Rolled back"


class RegressionAlert(models.Model):
    """The regression watch found a version worse than the one before it on one metric."""

    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.CASCADE, related_name="+")
    baseline_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metric = models.CharField(max_length=16, choices=AlertMetric.choices)
    status = models.CharField(max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    result = models.JSONField(default=dict)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "prompt_regression_alerts"
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(metric__in=AlertMetric.values), name="regression_metric_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=AlertStatus.values), name="regression_status_valid"
            ),
            models.UniqueConstraint(
                fields=["version", "metric"],
                condition=Q(status="open"),
                name="regression_one_open_per_metric",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} drop of v{self.version_id}"


class ModelShutdown(models.Model):
    """What the model server's list said about a model's shutdown, read by the daily retirement watch."""

    model_name = models.CharField(max_length=100, unique=True)
    shutdown_date = models.DateField(null=True, blank=True)
    listed = models.BooleanField(default=True)
    checked_at = models.DateTimeField()
    # The shutdown date managers were last told about, so the daily task notifies once per date.
    notified_for = models.DateField(null=True, blank=True)

    class Meta:
        db_table = "prompt_model_shutdowns"
        ordering = ["model_name"]

    def __str__(self) -> str:
        return f"{self.model_name}: {self.shutdown_date or 'no shutdown announced'}"
