# The agent's turns write leads, conversations and messages through leads.services; the only tables it owns
# are prompt evaluations (agent/evaluation.py): replays of approved training examples through a prompt.
from django.conf import settings
from django.db import models
from django.db.models import F, Q


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class EvaluationRun(models.Model):
    """One prompt version replayed over (up to `example_limit`) approved examples.

    With `against_version` the run is compared with `baseline_run`, the same examples through that version.
    `processed`, `passed` and `tokens` are updated with F() as each result row is written.
    """

    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", on_delete=models.CASCADE, related_name="evaluation_runs"
    )
    against_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    baseline_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="compared_runs"
    )
    status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED
    )
    example_limit = models.PositiveIntegerField()
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "evaluation_runs"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=EvaluationStatus.values), name="evaluation_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(passed__lte=F("processed")), name="evaluation_passed_lte_done"
            ),
            models.CheckConstraint(condition=Q(example_limit__gte=1), name="evaluation_limit_positive"),
        ]
        indexes = [models.Index(fields=["prompt_version", "-created_at"], name="idx_evaluation_version")]

    def __str__(self) -> str:
        return f"evaluation #{self.pk} of v{self.prompt_version_id} ({self.status})"

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.processed if self.processed else None

    @property
    def is_finished(self) -> bool:
        return self.status in (EvaluationStatus.DONE, EvaluationStatus.FAILED)


class EvaluationResult(models.Model):
    """One example's replay: the reply the version wrote, its verdict, the reason and every check."""

    run = models.ForeignKey(EvaluationRun, on_delete=models.CASCADE, related_name="results")
    training_example = models.ForeignKey(
        "training.TrainingExample", on_delete=models.CASCADE, related_name="evaluation_results"
    )
    reply = models.TextField(blank=True, default="")
    passed = models.BooleanField()
    reason = models.TextField(blank=True, default="")
    checks = models.JSONField(default=dict, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    # The approved examples the model saw for this replay, best first, as a reply records them
    # (training_example_uses): [{"id", "rank", "score", "method"}].
    examples = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "evaluation_results"
        ordering = ["run", "training_example"]
        constraints = [
            models.UniqueConstraint(fields=["run", "training_example"], name="evaluation_result_unique"),
        ]

    def __str__(self) -> str:
        return (
            f"example #{self.training_example_id} in run #{self.run_id}: {'pass' if self.passed else 'fail'}"
        )


from agent.catalog.models import *  # noqa: F403,E402  (stale-example flags from catalog changes)
from agent.followups.models import *  # noqa: F403,E402  (follow-ups to silent leads)
from agent.outcomes.models import *  # noqa: F403,E402  (bookings and outbound webhooks)
from agent.rehearsal.models import *  # noqa: F403,E402  (the rehearsal's tables belong to this app)
from agent.scoring.models import *  # noqa: F403,E402  (every conversation scored)
from agent.spend.models import *  # noqa: F403,E402  (daily spend of runs, budget alerts)
