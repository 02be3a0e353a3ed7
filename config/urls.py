from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from agent import urls as agent_urls
from agent.catalog import urls as catalog_urls
from agent.dashboard import urls as dashboard_urls
from agent.followups import urls as followup_urls
from agent.inbox import urls as inbox_urls
from agent.outcomes import urls as outcome_urls
from agent.rehearsal import urls as rehearsal_urls
from agent.suggestions import urls as suggestion_urls
from config import health, metrics
from config.ratelimit import RateLimitedLoginView, RateLimitedPasswordResetView, login_rate_limited
from leads import urls as leads_urls
from prompts import urls as prompts_urls
from training import urls as training_urls

admin.site.site_header = "DM Sales Agent administration"
admin.site.site_title = "DM Sales Agent admin"
admin.site.index_title = "Leads, prompts, training and the agent's records"

api_patterns = leads_urls.api_patterns + prompts_urls.api_patterns + training_urls.api_patterns
api_patterns += inbox_urls.api_patterns
api_patterns += rehearsal_urls.api_patterns
api_patterns += agent_urls.api_patterns
api_patterns += catalog_urls.api_patterns
page_patterns = dashboard_urls.page_patterns + leads_urls.page_patterns
page_patterns += prompts_urls.page_patterns + training_urls.page_patterns
page_patterns += inbox_urls.page_patterns
page_patterns += rehearsal_urls.page_patterns
page_patterns += suggestion_urls.page_patterns
page_patterns += agent_urls.page_patterns
page_patterns += catalog_urls.page_patterns
page_patterns += outcome_urls.page_patterns
page_patterns += followup_urls.page_patterns

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The admin's login under the dashboard's failed-login limits (config.ratelimit).
    path("admin/login/", login_rate_limited(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/password_reset/", RateLimitedPasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include((api_patterns, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Signed-in users only; the split view serves its script as a file, so the page passes the CSP.
    path(
        "api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"
    ),
    path("dashboard/", include((page_patterns, "dashboard"))),
    path("webhooks/", include((agent_urls.webhook_patterns + outcome_urls.webhook_patterns, "webhooks"))),
    path("", leads_urls.root_redirect),
]
