from django.contrib import admin

from agent.catalog.models import StaleExample


@admin.register(StaleExample)
class StaleExampleAdmin(admin.ModelAdmin):
    list_display = (
        "training_example",
        "old_fact",
        "new_fact",
        "catalog_version",
        "resolved_at",
        "created_at",
    )
    list_filter = ("resolved_at",)
    list_select_related = ("training_example", "catalog_version")
    readonly_fields = ("catalog_version", "training_example", "old_fact", "new_fact", "created_at")
    raw_id_fields = ("resolved_by",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
