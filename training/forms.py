from django import forms

from training.models import ExampleType

FEEDBACK_REQUIRED = "Feedback is required: say what is good or wrong about this response."


class _ExampleFieldsForm(forms.Form):
    example_type = forms.ChoiceField(
        choices=ExampleType.choices,
        widget=forms.RadioSelect,
        label="This response is",
        # Nothing is preselected: a default invites accidental "good" examples.
        error_messages={"required": "Choose whether this response is good, bad or needs a correction."},
    )
    feedback = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "What is good or wrong about this reply?"}),
        error_messages={"required": FEEDBACK_REQUIRED},
    )
    expected_response = forms.CharField(
        required=False,
        label="Expected response",
        help_text="Required for a correction: what the agent should have said.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ConversationExampleForm(_ExampleFieldsForm):
    lead = forms.IntegerField(widget=forms.HiddenInput)
    message_id = forms.IntegerField(
        widget=forms.HiddenInput,
        error_messages={"required": "Click the agent reply you want to flag."},
    )
    field_order = ("lead", "message_id", "example_type", "feedback", "expected_response")


class ManualExampleForm(_ExampleFieldsForm):
    user_message = forms.CharField(label="Lead's message", widget=forms.Textarea(attrs={"rows": 3}))
    ai_response = forms.CharField(label="Agent's response", widget=forms.Textarea(attrs={"rows": 3}))
    field_order = ("user_message", "ai_response", "example_type", "feedback", "expected_response")


class ReviewFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "All (pending first)"),
            ("pending", "Pending"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
        ],
    )
