from django.shortcuts import redirect
from django.urls import path

from leads import views


def root_redirect(request):
    return redirect("dashboard:home")


api_patterns: list = []

page_patterns = [
    path("", views.DashboardHomeView.as_view(), name="home"),
]
