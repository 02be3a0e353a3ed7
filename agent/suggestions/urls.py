from django.urls import path

from agent.suggestions import views

api_patterns: list = []
page_patterns = [
    path(
        "training/suggestions/run/", views.SuggestImprovementsView.as_view(), name="training_suggestions_run"
    ),
    path("training/suggestions/tactics/", views.SuggestTacticsView.as_view(), name="training_tactics_run"),
]
