from django.urls import path

from prompts import views
from prompts.releases import apis

api_patterns = [
    path("prompt/proposals/", apis.ProposalCreateApi.as_view(), name="release_proposals"),
    path("prompt/proposals/<int:proposal_id>/", apis.ProposalDetailApi.as_view(), name="release_proposal"),
    path(
        "prompt/proposals/<int:proposal_id>/approve/",
        apis.ProposalApproveApi.as_view(),
        name="release_proposal_approve",
    ),
    path(
        "prompt/proposals/<int:proposal_id>/send-back/",
        apis.ProposalSendBackApi.as_view(),
        name="release_proposal_send_back",
    ),
    path(
        "prompt/experiments/<int:experiment_id>/promote/",
        apis.ExperimentPromoteApi.as_view(),
        name="release_experiment_promote",
    ),
    path(
        "prompt/experiments/<int:experiment_id>/stop/",
        apis.ExperimentStopApi.as_view(),
        name="release_experiment_stop",
    ),
    path("prompt/rollback/", apis.RollbackApi.as_view(), name="release_rollback"),
    path(
        "prompt/alerts/<int:alert_id>/dismiss/", apis.AlertDismissApi.as_view(), name="release_alert_dismiss"
    ),
]

page_patterns = [
    path(
        "training/prompt/versions/<int:version_id>/", views.PromptVersionView.as_view(), name="prompt_version"
    ),
    path("training/prompt/compare/", views.PromptCompareView.as_view(), name="prompt_compare"),
    path(
        "training/prompt/versions/<int:version_id>/propose/",
        views.ProposalCreateView.as_view(),
        name="prompt_propose",
    ),
    path(
        "training/prompt/versions/<int:version_id>/replacement/",
        views.ReplacementDraftView.as_view(),
        name="prompt_replacement",
    ),
    path(
        "training/prompt/proposals/<int:proposal_id>/",
        views.ProposalReviewView.as_view(),
        name="prompt_proposal",
    ),
    path(
        "training/prompt/proposals/<int:proposal_id>/decide/",
        views.ProposalDecideView.as_view(),
        name="prompt_proposal_decide",
    ),
    path(
        "training/prompt/experiments/<int:experiment_id>/<str:action>/",
        views.ExperimentActionView.as_view(),
        name="prompt_experiment_action",
    ),
    path("training/prompt/rollback/", views.RollbackView.as_view(), name="prompt_rollback"),
    path(
        "training/prompt/alerts/<int:alert_id>/dismiss/",
        views.AlertDismissView.as_view(),
        name="prompt_alert_dismiss",
    ),
]
