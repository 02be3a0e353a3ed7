from django.contrib.auth.mixins import LoginRequiredMixin
from django.views.generic import TemplateView

from leads.models import Lead


class DashboardHomeView(LoginRequiredMixin, TemplateView):
    template_name = "leads/dashboard_home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["lead_count"] = Lead.objects.count()
        return context
