import django_filters
from django.db.models import Q, QuerySet

from training.models import ExampleStatus, ExampleType, TrainingExample


class TrainingExampleFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ExampleStatus.choices)
    example_type = django_filters.ChoiceFilter(choices=ExampleType.choices)
    submitted_by = django_filters.NumberFilter(field_name="submitted_by_id")
    conversation = django_filters.NumberFilter(field_name="conversation_id")
    lead = django_filters.NumberFilter(field_name="conversation__lead_id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    q = django_filters.CharFilter(method="filter_text", label="Text search")

    class Meta:
        model = TrainingExample
        fields = (
            "status",
            "example_type",
            "submitted_by",
            "conversation",
            "lead",
            "created_after",
            "created_before",
        )

    def filter_text(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(user_message__icontains=value)
            | Q(ai_response__icontains=value)
            | Q(expected_response__icontains=value)
            | Q(feedback__icontains=value)
        )
