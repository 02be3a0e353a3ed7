from django.conf import settings
from django.db import models
from django.db.models import Q


class ExampleType(models.TextChoices):
    GOOD = "good", "Good"
    BAD = "bad", "Bad"
    CORRECTION = "correction", "Correction"


class ExampleStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TrainingExample(models.Model):
    # The old system's columns, with the rules its migration never finished applying.
    conversation = models.ForeignKey(
        "leads.Conversation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="training_examples",
    )
    message = models.ForeignKey(
        "leads.Message",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="training_examples",
        help_text="The agent reply that was flagged, for examples submitted from a conversation.",
    )
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="submitted_examples",
    )
    # Who approved OR rejected it, and when (the old system named the columns approved_*).
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviewed_examples",
        db_column="approved_by_id",
    )
    user_message = models.TextField("lead's message")
    ai_response = models.TextField("AI response")
    expected_response = models.TextField(blank=True, default="")
    feedback = models.TextField()
    example_type = models.CharField(max_length=16, choices=ExampleType.choices)
    status = models.CharField(max_length=16, choices=ExampleStatus.choices, default=ExampleStatus.PENDING)
    review_note = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True, db_column="approved_at")
    # Lifecycle (training/review): an approved example leaves the agent's examples once retired, and may
    # carry a date by which someone should look at it again.
    retired_at = models.DateTimeField(null=True, blank=True)
    review_by = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "training_examples"
        ordering = ["-created_at", "-id"]
        permissions = [("review_trainingexample", "Can approve or reject training examples")]
        constraints = [
            models.CheckConstraint(
                condition=Q(example_type__in=ExampleType.values), name="training_example_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ExampleStatus.values), name="training_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(example_type__in=["good", "bad"]) | ~Q(expected_response=""),
                name="training_correction_needs_expected",
            ),
            models.CheckConstraint(condition=~Q(user_message=""), name="training_user_message_not_empty"),
            # One example per flagged agent reply: a second flag opens the first (training/review).
            models.UniqueConstraint(
                fields=["message"], condition=Q(message__isnull=False), name="training_one_example_per_reply"
            ),
            models.CheckConstraint(condition=~Q(ai_response=""), name="training_ai_response_not_empty"),
            models.CheckConstraint(condition=~Q(feedback=""), name="training_feedback_not_empty"),
            # A decision always records when it was made; a pending example carries none.
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="training_decided_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="idx_training_status"),
            models.Index(fields=["submitted_by"], name="idx_training_submitted"),
            models.Index(fields=["-created_at"], name="idx_training_created"),
            # Insights: covering indexes (the grouped columns as trailing keys, which SQLite accepts too), so
            # the per-range aggregates are index-only scans.
            models.Index(
                fields=["created_at", "status", "example_type", "submitted_by", "message"],
                name="idx_training_insights_created",
            ),
            models.Index(
                fields=["decided_at", "status", "created_at", "decided_by", "message"],
                name="idx_training_insights_decided",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_example_type_display()} example #{self.pk} ({self.get_status_display().lower()})"


class CandidateStatus(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted to review"
    DISMISSED = "dismissed", "Dismissed"


class CorrectionCandidate(models.Model):
    """What a person answered after an agent reply, pre-filled as a correction (training/candidates.py).

    The operator adds feedback and submits it to review (it becomes a pending TrainingExample) or dismisses
    it. One candidate per agent reply: the first human answer after it is the one that corrects it.
    """

    conversation = models.ForeignKey(
        "leads.Conversation", on_delete=models.CASCADE, related_name="correction_candidates"
    )
    agent_message = models.OneToOneField(
        "leads.Message", on_delete=models.CASCADE, related_name="correction_candidate"
    )
    operator_message = models.OneToOneField(
        "leads.Message", on_delete=models.CASCADE, related_name="correction_candidate_source"
    )
    user_message = models.TextField("lead's message")
    ai_response = models.TextField("AI response")
    expected_response = models.TextField()
    status = models.CharField(max_length=16, choices=CandidateStatus.choices, default=CandidateStatus.OPEN)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    training_example = models.OneToOneField(
        TrainingExample,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="correction_candidate",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "training_correction_candidates"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CandidateStatus.values), name="candidate_status_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status="open") & Q(decided_at__isnull=True))
                | (~Q(status="open") & Q(decided_at__isnull=False)),
                name="candidate_decided_has_time",
            ),
            models.CheckConstraint(condition=~Q(expected_response=""), name="candidate_expected_not_empty"),
        ]
        indexes = [models.Index(fields=["conversation", "status"], name="candidate_conversation_idx")]

    def __str__(self) -> str:
        return f"correction candidate #{self.pk} ({self.status})"


# Retrieval and suggestion models live in their packages; imported here so Django registers them.
from training.insights.models import (  # noqa: E402, F401
    InsightsDecisionDay,
    InsightsExampleDay,
    InsightsFeedbackDay,
    InsightsFlaggedDay,
    InsightsRollupState,
)
from training.retrieval.models import ExampleEmbedding, ExampleUse  # noqa: E402, F401
from training.suggestions.models import ImprovementSuggestion  # noqa: E402, F401
