"""Dashboard pages that put several apps side by side. They live in agent, the layer that may read every
app's selectors, so that leads (the base app) imports no app above it."""

from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.shortcuts import get_object_or_404, render
from django.views import View
from django.views.generic import TemplateView

from agent.spend import selectors as spend_selectors
from config.errors import Conflict, NotFound
from leads import roles
from leads import selectors as lead_selectors
from leads import services as lead_services
from leads.forms import LEAD_STATUS_ACTIONS
from leads.models import Activity, Lead, MessageRole
from prompts.selectors import active_prompt_version
from training.selectors import training_example_flags_for_lead, training_example_stats


class DashboardHomeView(LoginRequiredMixin, TemplateView):
    template_name = "leads/dashboard_home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["lead_counts"] = lead_selectors.lead_status_counts()
        context["training"] = training_example_stats()
        context["active_prompt"] = active_prompt_version()
        context["recent_leads"] = list(lead_selectors.lead_list()[:8])
        return context


UNDO_TOAST_SECONDS = 10


def _undoable_status_change(request, *, lead: Lead) -> Activity | None:
    """The status change named by ?undo=, when this person may still take it back (else no toast)."""
    try:
        activity_id = int(request.GET.get("undo", ""))
    except ValueError:
        return None
    if not request.user.has_perm(roles.PERM_CHANGE_LEAD):
        return None
    try:
        return lead_services.lead_status_change_undoable(
            lead=lead, activity_id=activity_id, actor=request.user
        )
    except (Conflict, NotFound):
        return None


class LeadDetailView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """A lead's transcript, each agent reply with the training examples flagged on it."""

    permission_required = roles.PERM_VIEW_LEADS

    def get(self, request, lead_id: int):
        lead = get_object_or_404(Lead.objects.select_related("assignee"), pk=lead_id)
        transcript = list(lead_selectors.lead_transcript(lead=lead))
        flags = training_example_flags_for_lead(lead_id=lead.pk)
        for message in transcript:
            message.training_flags = flags.get(message.pk, [])
        spend = spend_selectors.lead_spend_of(messages=transcript)  # the rows loaded: no query
        undo = _undoable_status_change(request, lead=lead)
        return render(
            request,
            "leads/lead_detail.html",
            {
                "lead": lead,
                "transcript": transcript,
                "spend": spend,
                "agent_role": MessageRole.AGENT,
                "activities": list(lead_selectors.lead_activity_recent(lead=lead)),
                "status_actions": [(s.value, s.label) for s in LEAD_STATUS_ACTIONS],
                "undo": undo,
                "undo_seconds": UNDO_TOAST_SECONDS,
            },
        )
