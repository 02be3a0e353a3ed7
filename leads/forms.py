from django import forms

from leads.models import LeadStatus


class LeadFilterForm(forms.Form):
    q = forms.CharField(required=False, label="Search", max_length=200)
    status = forms.ChoiceField(required=False, choices=[("", "All statuses"), *LeadStatus.choices])


LEAD_STATUS_ACTIONS = (LeadStatus.QUALIFIED, LeadStatus.BOOKED, LeadStatus.CONVERTED, LeadStatus.LOST)


class LeadActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("status", "Change status"),
            ("pause", "Pause bot"),
            ("resume", "Resume bot"),
            ("undo", "Undo the status change"),
        ]
    )
    status = forms.ChoiceField(required=False, choices=LeadStatus.choices)
    activity = forms.IntegerField(required=False, min_value=1)

    def clean(self):
        cleaned = super().clean() or {}
        if cleaned.get("action") == "status" and not cleaned.get("status"):
            self.add_error("status", "Choose a status.")
        if cleaned.get("action") == "undo" and not cleaned.get("activity"):
            self.add_error("activity", "Say which status change to undo.")
        return cleaned
