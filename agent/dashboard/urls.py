from django.urls import path

from agent.dashboard import views

page_patterns = [
    path("", views.DashboardHomeView.as_view(), name="home"),
    path("leads/<int:lead_id>/", views.LeadDetailView.as_view(), name="lead_detail"),
]
