from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef

from leads.models import Channel
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.review.selectors import SOURCES, ExampleFilters


class ExampleFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[])
    example_type = forms.ChoiceField(
        required=False, label="Type", choices=[("", "Any type"), *ExampleType.choices]
    )
    submitted_by = forms.TypedChoiceField(required=False, label="Submitter", coerce=int, empty_value=None)
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *SOURCES])
    channel = forms.ChoiceField(required=False, choices=[("", "Any channel"), *Channel.choices])
    created_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, label="Search", max_length=200)
    due = forms.BooleanField(required=False, label="Due for re-review")
    retired = forms.ChoiceField(
        required=False,
        choices=[("", "In use"), ("retired", "Retired"), ("any", "In use and retired")],
    )

    def __init__(self, *args, default_status: str, submitters, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_status = default_status
        self.fields["status"].choices = [*ExampleStatus.choices, ("all", "Any status")]
        self.fields["status"].initial = default_status
        self.fields["submitted_by"].choices = [("", "Anyone")] + [
            (user.pk, user.get_full_name() or user.get_username()) for user in submitters
        ]

    def to_filters(self, *, library: bool) -> ExampleFilters:
        data = self.cleaned_data if self.is_valid() else {}
        retired = data.get("retired") or ""
        return ExampleFilters(
            status=data.get("status") or self.default_status,
            example_type=data.get("example_type") or "",
            submitted_by=data.get("submitted_by"),
            source=data.get("source") or "",
            channel=data.get("channel") or "",
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            q=data.get("q") or "",
            due=bool(data.get("due")),
            retired=None if retired == "any" or not library else retired == "retired",
        )


def submitters():
    # EXISTS probes the submitter index once per user; a JOIN + DISTINCT read every example.
    return (
        get_user_model()
        .objects.filter(Exists(TrainingExample.objects.filter(submitted_by=OuterRef("pk"))))
        .order_by("username")
        .only("id", "username", "first_name", "last_name")
    )


class DecisionForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000)
    expected_response = forms.CharField(required=False, max_length=8000)
    review_by = forms.DateField(required=False)
