from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from agent import urls as agent_urls
from config.ratelimit import RateLimitedLoginView
from leads import urls as leads_urls
from prompts import urls as prompts_urls
from training import urls as training_urls

api_patterns = leads_urls.api_patterns + prompts_urls.api_patterns + training_urls.api_patterns
page_patterns = leads_urls.page_patterns + prompts_urls.page_patterns + training_urls.page_patterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include((api_patterns, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("dashboard/", include((page_patterns, "dashboard"))),
    path("webhooks/", include((agent_urls.webhook_patterns, "webhooks"))),
    path("", leads_urls.root_redirect),
]
