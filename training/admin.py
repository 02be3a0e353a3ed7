from django.contrib import admin, messages

from leads import roles
from training import services
from training.models import ExampleStatus, TrainingExample


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "example_type",
        "status",
        "short_feedback",
        "submitted_by",
        "decided_by",
        "created_at",
    )
    list_filter = ("status", "example_type", "created_at")
    search_fields = ("user_message", "ai_response", "expected_response", "feedback")
    list_select_related = ("submitted_by", "decided_by")
    raw_id_fields = ("conversation", "message", "submitted_by")
    readonly_fields = (
        "status",
        "decided_by",
        "decided_at",
        "review_note",
        "metadata",
        "created_at",
        "updated_at",
    )
    actions = ("approve_selected", "reject_selected", "reopen_selected")

    # Examples are submitted from the dashboard or the API (training.services), never typed in here.
    def has_add_permission(self, request) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["conversation", "message", "submitted_by"]
            if obj.status != ExampleStatus.PENDING:  # as training_example_update rules
                fields += list(services.EDITABLE_FIELDS)
        return fields

    def save_model(self, request, obj, form, change) -> None:
        # A pending example's content, saved by the same service as the API (lock, rules, activity).
        editable = services.EDITABLE_FIELDS
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in editable}
        if data:  # a decided example shows every field read-only: nothing to save
            services.training_example_update(example=obj, user=request.user, data=data)

    @admin.display(description="Feedback")
    def short_feedback(self, obj: TrainingExample) -> str:
        return obj.feedback[:80]

    def _decide(self, request, queryset, action: services.BulkAction) -> None:
        result = services.training_examples_decide_bulk(
            example_ids=list(queryset.values_list("pk", flat=True)), reviewer=request.user, action=action
        )
        if result.done:
            self.message_user(request, result.done_message, messages.SUCCESS)
        if result.skipped:
            self.message_user(request, result.skipped_message, messages.WARNING)

    @admin.action(description="Approve selected examples", permissions=["review"])
    def approve_selected(self, request, queryset):
        self._decide(request, queryset, services.BulkAction.APPROVE)

    @admin.action(description="Reject selected examples", permissions=["review"])
    def reject_selected(self, request, queryset):
        self._decide(request, queryset, services.BulkAction.REJECT)

    @admin.action(description="Reopen selected examples (back to pending)", permissions=["review"])
    def reopen_selected(self, request, queryset):
        self._decide(request, queryset, services.BulkAction.REOPEN)

    def has_review_permission(self, request) -> bool:
        return request.user.has_perm(roles.PERM_REVIEW_EXAMPLE)
