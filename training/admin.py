from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from leads import roles
from training import services
from training.models import TrainingExample


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "example_type",
        "status",
        "short_feedback",
        "submitted_by",
        "approved_by",
        "created_at",
    )
    list_filter = ("status", "example_type", "created_at")
    search_fields = ("user_message", "ai_response", "expected_response", "feedback")
    list_select_related = ("submitted_by", "approved_by")
    raw_id_fields = ("conversation", "message", "submitted_by")
    readonly_fields = ("status", "approved_by", "approved_at", "review_note", "created_at", "updated_at")
    actions = ("approve_selected", "reject_selected", "reopen_selected")

    @admin.display(description="Feedback")
    def short_feedback(self, obj: TrainingExample) -> str:
        return obj.feedback[:80]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm(roles.PERM_REVIEW_EXAMPLE):
            actions.pop("approve_selected", None)
            actions.pop("reject_selected", None)
            actions.pop("reopen_selected", None)
        return actions

    def _decide(self, request, queryset, decide, label: str) -> None:
        done, skipped = 0, []
        for example in queryset:
            try:
                decide(example=example, reviewer=request.user, note="")
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                skipped.append(f"#{example.pk}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
        if done:
            self.message_user(request, f"{label} {done} example(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, "Skipped " + ", ".join(skipped), messages.WARNING)

    @admin.action(description="Approve selected examples", permissions=["review"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, services.training_example_approve, "Approved")

    @admin.action(description="Reject selected examples", permissions=["review"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, services.training_example_reject, "Rejected")

    @admin.action(description="Reopen selected examples (back to pending)", permissions=["review"])
    def reopen_selected(self, request, queryset):
        def reopen(*, example, reviewer, note):
            return services.training_example_reopen(example=example, user=reviewer, note=note)

        self._decide(request, queryset, reopen, "Reopened")

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm(roles.PERM_REVIEW_EXAMPLE)
