"""Every conversation scored: one score per conversation and last message scored, one row per check."""

from django.db import models
from django.db.models import Q


class ScoreStatus(models.TextChoices):
    SCORED = "scored", "Scored"
    SAMPLED_OUT = "sampled_out", "Not in the sample"


class ConversationScore(models.Model):
    conversation = models.ForeignKey("leads.Conversation", on_delete=models.CASCADE, related_name="+")
    # The conversation's last message when it was scored: a conversation that goes on is scored again.
    through_message = models.ForeignKey("leads.Message", on_delete=models.CASCADE, related_name="+")
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=ScoreStatus.choices, default=ScoreStatus.SCORED)
    passed = models.BooleanField(null=True, blank=True)
    failed_check = models.CharField(max_length=100, blank=True, default="")
    failed_turn = models.PositiveIntegerField(null=True, blank=True)
    # Tokens the judge used: scoring's own spend, counted apart from the agent's (SCORING_DAILY_TOKEN_CAP).
    tokens = models.PositiveIntegerField(default=0)
    reviewed = models.BooleanField(default=False, help_text="Sent to the review queue.")
    example = models.ForeignKey(
        "training.TrainingExample", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agent_conversation_scores"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "through_message"], name="conversation_score_once"
            ),
            models.CheckConstraint(condition=Q(status__in=ScoreStatus.values), name="score_status_valid"),
        ]
        indexes = [
            models.Index(fields=["created_at"], name="score_time_idx"),
            models.Index(fields=["prompt_version", "created_at"], name="score_version_time_idx"),
        ]

    def __str__(self) -> str:
        return f"score of conversation {self.conversation_id} ({'pass' if self.passed else 'fail'})"


class ScoreCheck(models.Model):
    """One check's verdict in one score (None: the judge could not answer)."""

    score = models.ForeignKey(ConversationScore, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32)
    passed = models.BooleanField(null=True, blank=True)
    turn = models.PositiveIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True, default="")
    # Copied from the score so the pass-rate chart groups from this table alone.
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agent_score_checks"
        ordering = ["score", "id"]
        constraints = [models.UniqueConstraint(fields=["score", "name"], name="score_check_once")]
        indexes = [models.Index(fields=["created_at", "name"], name="score_check_time_idx")]

    def __str__(self) -> str:
        return f"{self.name}: {self.passed}"
