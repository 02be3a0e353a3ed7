from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views import View

from config.errors import Conflict, NotFound
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
            change = selectors.lead_status_change_latest(lead=lead, actor=request.user)
            if change is None:
                messages.success(request, f"Lead marked as {lead.get_status_display()}.")
                return redirect("dashboard:lead_detail", lead_id=lead.pk)
            # The lead page shows the change in a toast with Undo for a few seconds.
            return redirect(f"{reverse('dashboard:lead_detail', args=[lead.pk])}?undo={change.pk}")
        elif action == "undo":
            try:
                lead = services.lead_status_undo(
                    lead=lead, activity_id=form.cleaned_data["activity"], actor=request.user
                )
            except (Conflict, NotFound) as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"Undone: the lead is {lead.get_status_display()} again.")
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
        page = Paginator(selectors.notification_groups(user=request.user), self.paginate_by).get_page(
            request.GET.get("page")
        )
        groups = list(page.object_list)
        latest = selectors.notification_list(user=request.user).in_bulk([g["latest_id"] for g in groups])
        for group in groups:
            group["notification"] = latest[group["latest_id"]]
        return render(request, "leads/notifications.html", {"page": page, "groups": groups})

    def post(self, request):
        if request.POST.get("action") == "read_all":
            marked = services.notifications_mark_all_read(user=request.user)
            messages.success(request, f"Marked {marked} notification{pluralize(marked)} as read.")
        else:
            notification = get_object_or_404(
                selectors.notification_list(user=request.user), pk=request.POST.get("notification_id") or 0
            )
            # Opening or reading one settles every notification about the same lead or example.
            services.notification_group_mark_read(notification=notification)
            if notification.url and request.POST.get("open"):
                return redirect(notification.url)
        return redirect("dashboard:notifications")
