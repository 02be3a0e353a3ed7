from django.contrib import admin

from prompts.models import PromptVersion, PromptVersionConversation


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "is_active",
        "change_note",
        "author",
        "total_conversations",
        "qualified_conversations",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("content", "change_note")
    list_select_related = ("author", "activated_by")
    # Versions are immutable once saved, and activation goes through prompts.services.
    readonly_fields = (
        "version",
        "content",
        "change_note",
        "author",
        "parent",
        "is_active",
        "activated_at",
        "activated_by",
        "total_conversations",
        "qualified_conversations",
        "total_replies",
        "created_at",
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PromptVersionConversation)
class PromptVersionConversationAdmin(admin.ModelAdmin):
    list_display = ("prompt_version", "conversation", "first_reply_at", "last_reply_at", "qualified_at")
    list_filter = ("prompt_version",)
    list_select_related = ("prompt_version", "conversation")
    raw_id_fields = ("prompt_version", "conversation")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from prompts.catalog import admin as _catalog_admin  # noqa: E402, F401 - registers the catalog's admin
