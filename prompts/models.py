from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q

if TYPE_CHECKING:
    from prompts.selectors import Figures


class PromptVersion(models.Model):
    """An immutable prompt text. Editing a prompt makes a new version; exactly one is active."""

    version = models.PositiveIntegerField(unique=True)
    content = models.TextField()
    change_note = models.CharField(max_length=500, blank=True, default="")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="prompt_versions",
    )
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    is_active = models.BooleanField(default=False)
    # Model settings (prompts.releases): a version is its text and the model call it makes. An empty model
    # name means "settings.OPENAI_MODEL" (versions saved before models were part of a version).
    model_name = models.CharField(max_length=100, blank=True, default="")
    temperature = models.FloatField(null=True, blank=True)
    reasoning_effort = models.CharField(max_length=16, blank=True, default="")
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    # Parameters the model answered "unsupported" to: later calls leave them out.
    unsupported_params = models.JSONField(default=list, blank=True)
    # The catalog (prompts.catalog) released with this version: the only facts its replies may state.
    catalog_version = models.ForeignKey(
        "prompts.CatalogVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="prompt_versions",
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "prompt_versions"
        ordering = ["-version"]
        permissions = [("activate_promptversion", "Can activate (deploy or roll back) a prompt version")]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="prompt_one_active_version"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="prompt_version_positive"),
            models.CheckConstraint(condition=~Q(content=""), name="prompt_content_not_empty"),
            models.CheckConstraint(
                condition=Q(reasoning_effort__in=["", "minimal", "low", "medium", "high"]),
                name="prompt_reasoning_effort_valid",
            ),
            models.CheckConstraint(
                condition=Q(temperature__isnull=True) | Q(temperature__gte=0, temperature__lte=2),
                name="prompt_temperature_range",
            ),
            models.CheckConstraint(
                condition=Q(max_output_tokens__isnull=True) | Q(max_output_tokens__gte=16),
                name="prompt_max_output_tokens_min",
            ),
        ]

    def __str__(self) -> str:
        return f"v{self.version}{' (active)' if self.is_active else ''}"

    # --- Performance figures: never stored on the row, always counted from the fact rows ----------------
    # (prompts.selectors.prompt_version_results, the one place every page and the API read them from).

    def _figures(self) -> "Figures":
        results = getattr(self, "results", None)  # attached by prompts.selectors to listed versions
        if results is not None:
            return results.all_time
        cached = self.__dict__.get("_figures_cache")
        if cached is None:
            from prompts.selectors import prompt_version_results

            cached = prompt_version_results(versions=[self])[self.pk].all_time
            self.__dict__["_figures_cache"] = cached
        return cached

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_figures_cache", None)
        super().refresh_from_db(*args, **kwargs)

    @property
    def total_conversations(self) -> int:
        return self._figures().conversations

    @property
    def qualified_conversations(self) -> int:
        return self._figures().qualified

    @property
    def total_replies(self) -> int:
        return self._figures().replies

    @property
    def success_rate(self) -> float | None:
        return self._figures().success_rate


class PromptVersionConversation(models.Model):
    """The fact that a version answered in a conversation; the source of its performance figures.

    One row per (version, conversation): the version handled that conversation. `qualified_at` is set on
    the one row of the version whose reply came just before the lead qualified, and a conversation
    credits at most one version with its qualification.
    """

    prompt_version = models.ForeignKey(
        PromptVersion, on_delete=models.CASCADE, related_name="conversation_facts"
    )
    conversation = models.ForeignKey(
        "leads.Conversation", on_delete=models.CASCADE, related_name="prompt_version_facts"
    )
    first_reply_at = models.DateTimeField()
    last_reply_at = models.DateTimeField()
    qualified_at = models.DateTimeField(null=True, blank=True)
    # The other funnel steps, credited by the same rule (prompts/funnel): each set on at most one row of a
    # conversation, the row of the version whose reply came just before the lead reached the step.
    engaged_at = models.DateTimeField(null=True, blank=True)
    booked_at = models.DateTimeField(null=True, blank=True)
    won_at = models.DateTimeField(null=True, blank=True)
    lost_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "prompt_version_conversations"
        constraints = [
            models.UniqueConstraint(fields=["prompt_version", "conversation"], name="prompt_fact_unique"),
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(qualified_at__isnull=False),
                name="prompt_fact_one_qualifier",
            ),
            *(
                models.UniqueConstraint(
                    fields=["conversation"],
                    condition=Q(**{f"{step}_at__isnull": False}),
                    name=f"prompt_fact_one_{step}",
                )
                for step in ("engaged", "booked", "won", "lost")
            ),
        ]
        indexes = [
            # Insights: the funnel of the conversations first answered in a range, from the index alone.
            models.Index(
                fields=["first_reply_at"],
                include=[
                    "prompt_version",
                    "conversation",
                    "engaged_at",
                    "qualified_at",
                    "booked_at",
                    "won_at",
                    "lost_at",
                ],
                name="prompt_fact_funnel_idx",
            )
        ]

    def __str__(self) -> str:
        return f"v{self.prompt_version_id} in conversation {self.conversation_id}"


class FunnelStep(models.TextChoices):
    """The funnel steps a version is credited with (leads.LeadStatus.CONVERTED is "won")."""

    ENGAGED = "engaged", "Engaged"
    QUALIFIED = "qualified", "Qualified"
    BOOKED = "booked", "Booked a call"
    WON = "won", "Won"
    LOST = "lost", "Lost"


class FunnelCursor(models.Model):
    """How far the funnel crediting has read the leads' status activities (one row, id 1)."""

    last_activity_id = models.BigIntegerField(default=0)

    class Meta:
        db_table = "prompt_funnel_cursor"

    def __str__(self) -> str:
        return f"funnel credited up to activity {self.last_activity_id}"


from prompts.catalog.models import *  # noqa: E402, F403 - the catalog (offers, FAQ, versions)
from prompts.releases.models import *  # noqa: E402, F403 - the release models live in their own package
