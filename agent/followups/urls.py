from django.urls import path

from agent.followups import views

page_patterns = [
    path("followups-scoring/", views.FollowUpsScoringView.as_view(), name="followups-scoring"),
]
