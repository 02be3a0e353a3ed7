from django.urls import path

from agent.dashboard import views
from agent.spend import views as spend_views

page_patterns = [
    path("", views.DashboardHomeView.as_view(), name="home"),
    path("leads/<int:lead_id>/", views.LeadDetailView.as_view(), name="lead_detail"),
    path("spend/", spend_views.SpendView.as_view(), name="spend"),
]
