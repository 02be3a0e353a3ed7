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


# --- A lead's data on request: an action on the leads admin, the same service as `lead_forget` ---
from django.contrib import messages as admin_messages  # noqa: E402
from django.contrib.admin.sites import NotRegistered  # noqa: E402
from django.template.defaultfilters import pluralize  # noqa: E402

from agent.privacy.services import lead_forget  # noqa: E402
from leads.models import Lead  # noqa: E402


@admin.action(
    description="Forget the selected leads' personal data (cannot be undone)", permissions=["delete"]
)
def forget_leads(modeladmin, request, queryset):  # type: ignore[no-untyped-def]
    count = 0
    for lead in queryset:
        lead_forget(lead=lead, actor=request.user)
        count += 1
    modeladmin.message_user(
        request, f"{count} lead{pluralize(count)} forgotten.", level=admin_messages.SUCCESS
    )


try:
    _lead_admin = admin.site._registry[Lead]
except KeyError as exc:  # pragma: no cover - leads' admin registers Lead
    raise NotRegistered("leads.admin must register Lead before agent.admin adds its action") from exc
_lead_admin.actions = [*(_lead_admin.actions or []), forget_leads]


from agent.catalog import admin as _catalog_admin  # noqa: E402, F401 - registers the stale-example admin
from agent.rehearsal import admin as rehearsal_admin  # noqa: E402,F401  (scenarios, checks, calibration, runs)
