from django.contrib import admin

from agent.models import EvaluationResult, EvaluationRun


class EvaluationResultInline(admin.TabularInline):
    model = EvaluationResult
    fields = ("training_example", "passed", "reason", "tokens")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "prompt_version",
        "status",
        "processed",
        "total",
        "passed",
        "tokens",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "prompt_version")
    search_fields = ("error",)
    list_select_related = ("prompt_version", "created_by")
    inlines = [EvaluationResultInline]

    # Runs are written by agent.evaluation only; the admin is for looking.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EvaluationResult)
class EvaluationResultAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "training_example", "passed", "tokens", "created_at")
    list_filter = ("passed",)
    search_fields = ("reply", "reason")
    list_select_related = ("run__prompt_version", "training_example")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from agent.rehearsal import admin as rehearsal_admin  # noqa: E402,F401  (scenarios, checks, calibration, runs)
