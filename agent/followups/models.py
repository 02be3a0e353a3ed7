"""Follow-ups: one row per (lead, unanswered agent message, step), claimed before anything is sent."""

from django.db import models
from django.db.models import Q


class FollowUpStatus(models.TextChoices):
    CLAIMED = "claimed", "Being written"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Not sent"
    FAILED = "failed", "Failed"


class FollowUp(models.Model):
    """A follow-up to a silent lead. The unique row is the claim: two workers never send the same step."""

    lead = models.ForeignKey("leads.Lead", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey("leads.Conversation", on_delete=models.CASCADE, related_name="+")
    # The agent's last message the lead did not answer: the silence this follow-up breaks.
    after_message = models.ForeignKey("leads.Message", on_delete=models.CASCADE, related_name="+")
    step = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=FollowUpStatus.choices, default=FollowUpStatus.CLAIMED)
    reason = models.CharField(max_length=300, blank=True, default="")
    message = models.OneToOneField(
        "leads.Message", null=True, blank=True, on_delete=models.SET_NULL, related_name="followup"
    )
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "agent_followups"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["lead", "after_message", "step"], name="followup_once_per_step"),
            models.CheckConstraint(
                condition=Q(status__in=FollowUpStatus.values), name="followup_status_valid"
            ),
            models.CheckConstraint(condition=Q(step__gte=1), name="followup_step_positive"),
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False) | ~Q(status="sent"),
                name="followup_sent_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["prompt_version", "sent_at"], name="followup_version_sent_idx"),
            models.Index(fields=["status", "created_at"], name="followup_status_time_idx"),
        ]

    def __str__(self) -> str:
        return f"follow-up {self.step} to lead {self.lead_id} ({self.status})"
