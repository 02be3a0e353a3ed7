from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.views import View

from leads import roles, selectors, services
from leads.forms import LeadActionForm, LeadFilterForm
from leads.models import Lead


class LeadListView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_LEADS
    paginate_by = 25

    def get(self, request):
        form = LeadFilterForm(request.GET or None)
        search, status = "", ""
        if form.is_valid():
            search, status = form.cleaned_data["q"], form.cleaned_data["status"]
        page = Paginator(selectors.lead_list(search=search, status=status), self.paginate_by).get_page(
            request.GET.get("page")
        )
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "leads/lead_list.html",
            {"form": form, "page": page, "leads": page.object_list, "query": query.urlencode()},
        )


class LeadActionView(LoginRequiredMixin, PermissionRequiredMixin, View):
    """Status changes and bot pause/resume from the lead page; each calls one lead service."""

    permission_required = roles.PERM_CHANGE_LEAD

    def post(self, request, lead_id: int):
        lead = get_object_or_404(Lead, pk=lead_id)
        form = LeadActionForm(request.POST)
        if not form.is_valid():
            messages.error(request, "That action could not be understood.")
            return redirect("dashboard:lead_detail", lead_id=lead.pk)
        action = form.cleaned_data["action"]
        if action == "status":
            lead = services.lead_set_status(lead=lead, status=form.cleaned_data["status"], actor=request.user)
            messages.success(request, f"Lead marked as {lead.get_status_display()}.")
        elif action == "pause":
            services.lead_pause_bot(lead=lead, actor=request.user)
            messages.success(request, "The bot is paused for this lead.")
        else:
            services.lead_resume_bot(lead=lead, actor=request.user)
            messages.success(request, "The bot is answering this lead again.")
        return redirect("dashboard:lead_detail", lead_id=lead.pk)


class NotificationListView(LoginRequiredMixin, View):
    paginate_by = 25

    def get(self, request):
        page = Paginator(selectors.notification_list(user=request.user), self.paginate_by).get_page(
            request.GET.get("page")
        )
        return render(request, "leads/notifications.html", {"page": page, "notifications": page.object_list})

    def post(self, request):
        if request.POST.get("action") == "read_all":
            marked = services.notifications_mark_all_read(user=request.user)
            messages.success(request, f"Marked {marked} notification{pluralize(marked)} as read.")
        else:
            notification = get_object_or_404(
                selectors.notification_list(user=request.user), pk=request.POST.get("notification_id") or 0
            )
            services.notification_mark_read(notification=notification)
            if notification.url and request.POST.get("open"):
                return redirect(notification.url)
        return redirect("dashboard:notifications")
