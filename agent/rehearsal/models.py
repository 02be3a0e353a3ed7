"""Rehearsal tables. Imported by agent/models.py so they belong to the `agent` app and its migrations."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from leads.models import Channel

__all__ = [
    "CheckKind",
    "JudgeCalibration",
    "PlayEnd",
    "PlaySide",
    "RehearsalPlay",
    "RehearsalRun",
    "RehearsalStatus",
    "Scenario",
    "SharedCheck",
]

MAX_TURNS_LIMIT = 20
MAX_REPEATS = 10


class CheckKind(models.TextChoices):
    BUDGET_BEFORE_PRICE = "budget_before_price", "Asked for the budget before quoting"
    ALLOWED_PRICES = "allowed_prices", "No price outside the allowed list"
    LENGTH_LIMIT = "length_limit", "Reply length within the channel's limit"
    MAX_QUESTIONS = "max_questions", "At most N questions in one message"
    NEVER_PROMISE = "never_promise", "Never promised X"
    OFFERED_CALL = "offered_call", "Offered a call when the lead qualified"
    HANDOFF_WHEN_ASKED = "handoff_when_asked", "Handed off when asked for a human"
    JUDGED = "judged", "Judged by the model against a rubric"


class Scenario(models.Model):
    """A simulated lead: who they are, what they want, how they open, what they reveal when asked."""

    title = models.CharField(max_length=200)
    persona = models.TextField(help_text="Who the lead is, e.g. a bakery owner with a 2k/month budget.")
    goal = models.TextField(blank=True, default="", help_text="What the lead wants from the conversation.")
    opening_messages = models.JSONField(default=list, help_text="The lead's first message(s), in order.")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.INSTAGRAM)
    facts = models.JSONField(
        default=dict, blank=True, help_text='What the lead reveals when asked, e.g. {"budget": "2k a month"}.'
    )
    max_turns = models.PositiveSmallIntegerField(default=6)
    checks = models.JSONField(
        default=list,
        blank=True,
        help_text='This scenario\'s checks: [{"kind": ..., "params": {...}, "never": bool}].',
    )
    tags = models.JSONField(default=list, blank=True, help_text="e.g. objection, pricing, handoff, language.")
    source_conversation = models.ForeignKey(
        "leads.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_active = models.BooleanField(default=True, help_text="Inactive scenarios are left out of new runs.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "rehearsal_scenarios"
        ordering = ["title", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="rehearsal_scenario_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(max_turns__gte=1, max_turns__lte=MAX_TURNS_LIMIT),
                name="rehearsal_scenario_max_turns_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class SharedCheck(models.Model):
    """A check applied to every scenario of every run (e.g. the allowed price list)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=CheckKind.choices)
    params = models.JSONField(default=dict, blank=True)
    never = models.BooleanField(
        default=False, help_text="A 'never' check that fails in any play blocks the release gate."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rehearsal_shared_checks"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=CheckKind.values), name="rehearsal_shared_check_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JudgeCalibration(models.Model):
    """A hand-labelled transcript: what a person decided for a rubric. The judge must agree with these
    (at REHEARSAL_JUDGE_AGREEMENT) before its verdicts count in a run."""

    rubric = models.TextField()
    transcript = models.JSONField(help_text='[{"role": "lead" | "agent", "text": "..."}, ...]')
    expected_pass = models.BooleanField()
    note = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "rehearsal_judge_calibration"
        ordering = ["id"]

    def __str__(self) -> str:
        return f"calibration #{self.pk} ({'pass' if self.expected_pass else 'fail'})"


class RehearsalStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RehearsalRun(models.Model):
    """A version (and, with `against_version`, the version it is compared with) played over the scenarios,
    each `repeats` times. One RehearsalPlay row per side × scenario × repeat, each its own Celery task."""

    version = models.ForeignKey(
        "prompts.PromptVersion", on_delete=models.CASCADE, related_name="rehearsal_runs"
    )
    against_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    repeats = models.PositiveSmallIntegerField(default=3)
    status = models.CharField(max_length=16, choices=RehearsalStatus.choices, default=RehearsalStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    # None until the judge was calibrated for this run (or there was nothing to judge).
    judge_trusted = models.BooleanField(null=True, blank=True)
    judge_agreement = models.FloatField(null=True, blank=True)
    judge_calibration_size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "rehearsal_runs"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RehearsalStatus.values), name="rehearsal_run_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(repeats__gte=1, repeats__lte=MAX_REPEATS), name="rehearsal_run_repeats_range"
            ),
            models.CheckConstraint(
                condition=Q(against_version__isnull=True) | ~Q(against_version=F("version")),
                name="rehearsal_run_against_other_version",
            ),
        ]
        indexes = [models.Index(fields=["version", "-created_at"], name="idx_rehearsal_run_version")]

    def __str__(self) -> str:
        return f"rehearsal #{self.pk} of v{self.version_id} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (RehearsalStatus.DONE, RehearsalStatus.FAILED)


class PlaySide(models.TextChoices):
    DRAFT = "draft", "Tested version"
    BASELINE = "baseline", "Compared version"


class PlayEnd(models.TextChoices):
    MAX_TURNS = "max_turns", "Reached the turn limit"
    QUALIFIED = "qualified", "The agent qualified the lead"
    HANDED_OFF = "handed_off", "The agent handed off to a person"
    GOODBYE = "goodbye", "The lead said goodbye"
    ERROR = "error", "The model did not answer"


class RehearsalPlay(models.Model):
    """One scenario played once by one version: the transcript, every check's verdict, tokens."""

    run = models.ForeignKey(RehearsalRun, on_delete=models.CASCADE, related_name="plays")
    side = models.CharField(max_length=16, choices=PlaySide.choices)
    version = models.ForeignKey("prompts.PromptVersion", on_delete=models.CASCADE, related_name="+")
    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="plays")
    repeat = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=RehearsalStatus.choices, default=RehearsalStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    transcript = models.JSONField(default=list, blank=True)
    check_results = models.JSONField(default=list, blank=True)
    passed = models.BooleanField(null=True, blank=True)
    ended = models.CharField(max_length=16, choices=PlayEnd.choices, blank=True, default="")
    turns = models.PositiveSmallIntegerField(default=0)
    agent_calls = models.PositiveIntegerField(default=0)
    lead_calls = models.PositiveIntegerField(default=0)
    judge_calls = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "rehearsal_plays"
        ordering = ["run", "side", "scenario", "repeat"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "side", "scenario", "repeat"], name="rehearsal_play_unique"
            ),
            models.CheckConstraint(condition=Q(side__in=PlaySide.values), name="rehearsal_play_side_valid"),
            models.CheckConstraint(
                condition=Q(status__in=RehearsalStatus.values), name="rehearsal_play_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(ended__in=[*PlayEnd.values, ""]), name="rehearsal_play_ended_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=RehearsalStatus.DONE) | Q(finished_at__isnull=False),
                name="rehearsal_play_done_has_time",
            ),
        ]
        indexes = [models.Index(fields=["run", "status"], name="idx_rehearsal_play_status")]

    def __str__(self) -> str:
        return f"{self.scenario_id} #{self.repeat} ({self.side}) in rehearsal {self.run_id}"
