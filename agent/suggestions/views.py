from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import redirect
from django.views import View

from agent.suggestions.tactics import TacticsRefused, tactics_outcomes_check
from agent.suggestions.tasks import suggest_improvements, suggest_tactics
from config.enqueue import enqueue_on_commit
from leads import roles


class SuggestImprovementsView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The button: queue the flow (drafts are saved as the user, so saving drafts is the permission)."""

    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request):
        enqueue_on_commit(suggest_improvements, request.user.pk, background=True, thread_name="suggestions")
        messages.success(
            request,
            "Looking for themes in the approved corrections; each suggestion appears here with its "
            "evaluation as soon as it is measured. Nothing goes live by itself.",
        )
        return redirect("dashboard:training_suggestions")


class SuggestTacticsView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """The second button: selling tactics from outcomes. Refused at once without enough of each side."""

    permission_required = roles.PERM_CREATE_PROMPT

    def post(self, request):
        try:
            tactics_outcomes_check()
        except TacticsRefused as refused:
            messages.error(request, refused.message)
            return redirect("dashboard:training_suggestions")
        enqueue_on_commit(suggest_tactics, request.user.pk, background=True, thread_name="tactics")
        messages.success(
            request,
            "Comparing the conversations of leads who booked or bought with those who did not; each "
            "selling tactic appears here as a draft with its evaluation. Nothing goes live by itself.",
        )
        return redirect("dashboard:training_suggestions")
