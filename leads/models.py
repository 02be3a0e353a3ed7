from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    INSTAGRAM = "instagram", "Instagram"
    FACEBOOK = "facebook", "Facebook Messenger"
    WHATSAPP = "whatsapp", "WhatsApp"
    TELEGRAM = "telegram", "Telegram"
    TIKTOK = "tiktok", "TikTok"
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"
    OTHER = "other", "Other"


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    ENGAGED = "engaged", "Engaged"
    QUALIFIED = "qualified", "Qualified"
    BOOKED = "booked", "Booked a call"
    # "converted" is the old system's value for a won deal; shown as "Won".
    CONVERTED = "converted", "Won"
    LOST = "lost", "Lost"


class StepSource(models.TextChoices):
    """Who moved a lead a step down the funnel (kept in the status activity's data)."""

    AGENT = "agent", "The agent"
    PERSON = "person", "A person"
    INTEGRATION = "integration", "An integration"


class Lead(models.Model):
    manychat_subscriber_id = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.OTHER)
    first_name = models.CharField(max_length=255, blank=True, default="")
    last_name = models.CharField(max_length=255, blank=True, default="")
    username = models.CharField(max_length=255, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.NEW)
    qualification_data = models.JSONField(default=dict, blank=True)
    bot_paused = models.BooleanField(default=False)
    needs_human = models.BooleanField(default=False, help_text="The agent handed this lead to a person.")
    handoff_reason = models.CharField(max_length=500, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_leads",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # ManyChat: the contact's Live Chat page (from Full Contact Data), and the hash of the random
    # per-contact token kept in a ManyChat custom field (agent/contact_token.py); never the token itself.
    live_chat_url = models.CharField(max_length=500, blank=True, default="")
    manychat_token_hash = models.CharField(max_length=64, blank=True, default="")
    # The inbox (agent/inbox): since when the lead waits for a person (set when it is handed to a person
    # or writes while one handles it, cleared when a person answers), and who took it from the bot.
    waiting_since = models.DateTimeField(null=True, blank=True)
    taken_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    taken_over_at = models.DateTimeField(null=True, blank=True)
    # Follow-ups (agent/followups): the lead's timezone as ManyChat sends it ("UTC-07", or a zone name),
    # for quiet hours; and since when the lead asked for no more messages ("stop"): no follow-up after it.
    timezone = models.CharField(max_length=64, blank=True, default="")
    followups_opted_out_at = models.DateTimeField(null=True, blank=True)
    # Draft mode (co-pilot): the agent's replies to this lead wait as drafts for a person to send.
    # None follows the team's default (AGENT_DRAFT_MODE).
    draft_mode = models.BooleanField(null=True, blank=True, default=None)

    class Meta:
        db_table = "leads"
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=Channel.values), name="lead_channel_valid"),
            models.CheckConstraint(condition=Q(status__in=LeadStatus.values), name="lead_status_valid"),
            models.CheckConstraint(
                condition=~Q(manychat_subscriber_id=""), name="lead_subscriber_id_not_empty"
            ),
            # A person who took a lead over took it at some time (the user may be deleted later).
            models.CheckConstraint(
                condition=Q(taken_over_by__isnull=True) | Q(taken_over_at__isnull=False),
                name="lead_takeover_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], name="lead_status_idx"),
            models.Index(fields=["-last_message_at"], name="lead_last_message_idx"),
            # Insights: the lead funnel counts leads by arrival day and status from the index alone.
            models.Index(fields=["created_at", "status"], name="lead_created_status_idx"),
            # Inbox: "needs a person", oldest waiting first.
            models.Index(
                fields=["waiting_since"], condition=Q(waiting_since__isnull=False), name="lead_waiting_idx"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or (f"@{self.username}" if self.username else f"Subscriber {self.manychat_subscriber_id}")


class ConversationStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.OTHER)
    status = models.CharField(
        max_length=16, choices=ConversationStatus.choices, default=ConversationStatus.OPEN
    )
    started_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "conversations"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="conversation_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=ConversationStatus.values), name="conversation_status_valid"
            ),
            # A lead has at most one open conversation: the webhook appends to it.
            models.UniqueConstraint(
                fields=["lead"], condition=Q(status="open"), name="conversation_one_open_per_lead"
            ),
        ]

    def __str__(self) -> str:
        return f"Conversation with {self.lead.display_name} on {self.get_channel_display()}"


class MessageRole(models.TextChoices):
    LEAD = "lead", "Lead"
    AGENT = "agent", "Agent"
    OPERATOR = "operator", "Operator"


class DeliveryStatus(models.TextChoices):
    """Two state machines share the column; a CHECK (message_status_matches_role) keeps each to its role.

    A lead's message: the state of the turn that answers it (TURN_STATUSES). An agent or operator message:
    how its text reached ManyChat (OUTBOUND_STATUSES). RECEIVED, the column's default, is the first state
    of both: a line not handled yet.
    """

    # Inbound (lead) messages: the state of the turn that answers them.
    RECEIVED = "received", "Received"
    ANSWERED = "answered", "Answered"
    SKIPPED = "skipped", "Skipped (bot paused or handed off)"
    FAILED = "failed", "Failed"
    # Outbound (agent, operator) messages: how the text reached ManyChat.
    PENDING = "pending", "Pending delivery"
    RETURNED = "returned", "Returned in the webhook response"
    SENT = "sent", "Sent through the ManyChat API"
    UNDELIVERABLE = "undeliverable", "Undeliverable"
    # ManyChat took the request but never answered (a read timeout): maybe delivered; never sent again.
    UNKNOWN = "unknown", "Sent, outcome unknown"
    # An agent reply that became ready after a person took the lead over (the inbox): kept, never sent.
    SUPERSEDED = "superseded", "Not sent: a person took over"
    # Draft mode and shadow mode (agent/inbox/drafts.py): agent replies written for a person, never sent by
    # the bot. A draft waits for a person to send it (then pending, as any reply), edit it or discard it.
    DRAFT = "draft", "Draft: waiting for a person"
    DRAFT_EDITED = "draft_edited", "Draft: a person sent an edited text"
    DRAFT_DISCARDED = "draft_discarded", "Draft: discarded"
    SHADOW = "shadow", "Shadow draft: never sent"


TURN_STATUSES = (
    DeliveryStatus.RECEIVED,
    DeliveryStatus.ANSWERED,
    DeliveryStatus.SKIPPED,
    DeliveryStatus.FAILED,
)
OUTBOUND_STATUSES = (
    DeliveryStatus.RECEIVED,
    DeliveryStatus.PENDING,
    DeliveryStatus.RETURNED,
    DeliveryStatus.SENT,
    DeliveryStatus.UNDELIVERABLE,
    DeliveryStatus.UNKNOWN,
    DeliveryStatus.SUPERSEDED,
    DeliveryStatus.DRAFT,
    DeliveryStatus.DRAFT_EDITED,
    DeliveryStatus.DRAFT_DISCARDED,
    DeliveryStatus.SHADOW,
)
# The agent's replies the lead never got: not part of the conversation the model reads back.
DRAFT_STATUSES = (
    DeliveryStatus.DRAFT,
    DeliveryStatus.DRAFT_EDITED,
    DeliveryStatus.DRAFT_DISCARDED,
    DeliveryStatus.SHADOW,
)
NEVER_SENT_STATUSES = (*DRAFT_STATUSES, DeliveryStatus.SUPERSEDED)


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=MessageRole.choices)
    text = models.TextField()
    prompt_version = models.ForeignKey(
        "prompts.PromptVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    in_reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    dedupe_key = models.CharField(max_length=128, null=True, blank=True, unique=True)
    delivery_status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    model = models.CharField(max_length=100, blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    # A voice note, image, file or sticker the lead sent (its URL as ManyChat gave it); `text` then holds
    # the transcript of a voice note, or is empty.
    attachment_url = models.CharField(max_length=2000, blank=True, default="")
    attachment_kind = models.CharField(max_length=8, blank=True, default="")
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The person who wrote an operator message (the inbox).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "messages"
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=MessageRole.values), name="message_role_valid"),
            models.CheckConstraint(
                condition=Q(delivery_status__in=DeliveryStatus.values), name="message_delivery_status_valid"
            ),
            # A lead's message holds a turn state, an agent or operator message a delivery state.
            models.CheckConstraint(
                condition=Q(role="lead", delivery_status__in=[s.value for s in TURN_STATUSES])
                | (~Q(role="lead") & Q(delivery_status__in=[s.value for s in OUTBOUND_STATUSES])),
                name="message_status_matches_role",
            ),
            # Only the agent's own replies are stamped with the prompt version that wrote them.
            models.CheckConstraint(
                condition=Q(prompt_version__isnull=True) | Q(role="agent"),
                name="message_prompt_version_agent_only",
            ),
            # One agent reply per inbound message: a retried turn can never answer twice.
            models.UniqueConstraint(
                fields=["in_reply_to"], condition=Q(role="agent"), name="message_one_agent_reply_per_message"
            ),
            models.CheckConstraint(
                condition=Q(sent_by__isnull=True) | Q(role="operator"), name="message_sent_by_operator_only"
            ),
            # Drafts and shadow drafts are the agent's own words, never a person's.
            models.CheckConstraint(
                condition=~Q(delivery_status__in=[s.value for s in DRAFT_STATUSES]) | Q(role="agent"),
                name="message_draft_agent_only",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="message_conversation_time_idx"),
            models.Index(fields=["prompt_version", "created_at"], name="message_version_time_idx"),
            # Per-version figures (prompts.selectors): one grouped pass over the agent's replies, read from
            # the index alone on PostgreSQL (the tokens ride along; SQLite ignores INCLUDE).
            models.Index(
                fields=["prompt_version", "created_at"],
                include=["prompt_tokens", "completion_tokens", "latency_ms"],
                condition=Q(role="agent"),
                name="message_agent_version_idx",
            ),
            models.Index(fields=["role", "delivery_status"], name="message_role_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_role_display()}: {self.text[:60]}"

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class Note(models.Model):
    """An internal note on a lead, written in the inbox; never sent to the lead, never shown to the model."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "lead_notes"
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="note_text_not_empty")]
        indexes = [models.Index(fields=["lead", "created_at"], name="note_lead_time_idx")]

    def __str__(self) -> str:
        return f"Note on {self.lead.display_name}: {self.text[:60]}"


class Activity(models.Model):
    """Append-only: rows are created by services and never updated."""

    lead = models.ForeignKey(Lead, null=True, blank=True, on_delete=models.CASCADE, related_name="activities")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities"
    )
    verb = models.CharField(max_length=64)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "activities"
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "activities"
        indexes = [
            models.Index(fields=["verb", "created_at"], name="activity_verb_time_idx"),
            models.Index(fields=["lead", "created_at"], name="activity_lead_time_idx"),
        ]

    def __str__(self) -> str:
        from leads.activity_text import activity_sentence  # the sentences module imports this one

        when = f" ({self.created_at:%Y-%m-%d %H:%M})" if self.created_at else ""
        return f"{activity_sentence(self)}{when}"


class Notification(models.Model):
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    verb = models.CharField(max_length=64)
    message = models.CharField(max_length=500, blank=True, default="")
    target_content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.CASCADE)
    target_object_id = models.CharField(max_length=64, blank=True, default="")
    target = GenericForeignKey("target_content_type", "target_object_id")
    url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return f"Notification for {self.recipient}: {self.message[:60]}"
