from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import redirect
from django.views import View

from agent.suggestions.tasks import suggest_improvements
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
