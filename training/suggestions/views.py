from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import render
from django.views import View

from leads import roles
from training.models import TrainingExample
from training.suggestions import selectors


class SuggestionsView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Suggested prompt edits ranked by measured gain; the button posts to the agent layer's flow."""

    permission_required = roles.PERM_VIEW_EXAMPLES

    def get(self, request):
        suggestions = selectors.suggestion_list()
        ids = {pk for s in suggestions for pk in [*s.example_ids, *(s.results or {}).get("regressions", [])]}
        examples = (
            TrainingExample.objects.filter(pk__in=ids).only("id", "example_type", "user_message").in_bulk()
        )
        for suggestion in suggestions:
            suggestion.examples = [examples[pk] for pk in suggestion.example_ids if pk in examples]
            results = suggestion.results or {}
            suggestion.regression_examples = [examples.get(pk) or pk for pk in results.get("regressions", [])]
        return render(
            request,
            "training/suggestions.html",
            {
                "suggestions": suggestions,
                "can_suggest": request.user.has_perm(roles.PERM_CREATE_PROMPT),
            },
        )
