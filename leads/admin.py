from django.contrib import admin

from leads.activity_text import activity_sentence
from leads.models import Activity, Conversation, Lead, Message, Notification


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "display_name",
        "channel",
        "status",
        "bot_paused",
        "needs_human",
        "assignee",
        "last_message_at",
    )
    list_filter = ("channel", "status", "bot_paused", "needs_human")
    search_fields = ("manychat_subscriber_id", "first_name", "last_name", "username", "email", "phone")
    list_select_related = ("assignee",)
    # Status, bot pause, hand-off and takeover change through the services (the dashboard, the inbox and
    # the API), which record the activity; here they are shown, not edited.
    readonly_fields = (
        "status",
        "bot_paused",
        "needs_human",
        "handoff_reason",
        "waiting_since",
        "taken_over_by",
        "taken_over_at",
        "created_at",
        "updated_at",
        "last_message_at",
    )
    raw_id_fields = ("assignee",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("id", "lead", "channel", "status", "started_at", "last_message_at")
    list_filter = ("channel", "status")
    search_fields = ("lead__first_name", "lead__last_name", "lead__username", "lead__manychat_subscriber_id")
    list_select_related = ("lead",)
    raw_id_fields = ("lead",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "conversation",
        "role",
        "short_text",
        "prompt_version",
        "delivery_status",
        "latency_ms",
        "created_at",
    )
    list_filter = ("role", "delivery_status", "prompt_version")
    search_fields = ("text", "dedupe_key")
    list_select_related = ("conversation__lead", "prompt_version")
    raw_id_fields = ("conversation", "in_reply_to", "prompt_version")
    readonly_fields = ("created_at",)

    @admin.display(description="Text")
    def short_text(self, obj: Message) -> str:
        return obj.text[:80]

    # The transcript is a record: an added or edited "agent reply" would feed per-version results and
    # training. Messages are written only by the agent and the services.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("id", "what_happened", "lead", "created_at")
    list_filter = ("verb",)
    search_fields = ("verb", "lead__first_name", "lead__last_name", "actor__username")
    list_select_related = ("lead", "actor")
    readonly_fields = ("what_happened", "verb", "lead", "actor", "data", "created_at")

    @admin.display(description="What happened")
    def what_happened(self, obj: Activity) -> str:
        return activity_sentence(obj)

    # The activity log is append-only.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "verb", "message", "created_at", "read_at")
    list_filter = ("verb", ("read_at", admin.EmptyFieldListFilter))
    search_fields = ("message", "recipient__username")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient",)
