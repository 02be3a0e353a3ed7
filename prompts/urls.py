from django.urls import path

from agent import evaluation_apis, evaluation_views
from prompts import apis, views

api_patterns = [
    path(
        "prompt/versions/",
        apis.by_method(get=apis.PromptVersionListApi, post=apis.PromptVersionCreateApi),
        name="prompt_versions",
    ),
    path("prompt/versions/<int:version_id>/", apis.PromptVersionDetailApi.as_view(), name="prompt_version"),
    path(
        "prompt/versions/<int:version_id>/activate/",
        apis.PromptVersionActivateApi.as_view(),
        name="prompt_version_activate",
    ),
    path(
        "prompt/versions/<int:version_id>/diff/",
        apis.PromptVersionDiffApi.as_view(),
        name="prompt_version_diff",
    ),
    path(
        "prompt/active/",
        apis.by_method(get=apis.PromptActiveGetApi, post=apis.PromptActiveDeployApi),
        name="prompt_active",
    ),
    path(
        "prompt/versions/<int:version_id>/evaluate/",
        evaluation_apis.PromptVersionEvaluateApi.as_view(),
        name="prompt_version_evaluate",
    ),
    path(
        "prompt/evaluations/<int:run_id>/",
        evaluation_apis.EvaluationRunDetailApi.as_view(),
        name="prompt_evaluation",
    ),
]

page_patterns = [
    path("training/prompt/", views.PromptEditorView.as_view(), name="prompt_editor"),
    path("training/prompt/draft/", views.PromptDraftSaveView.as_view(), name="prompt_save_draft"),
    path("training/prompt/deploy/", views.PromptDeployView.as_view(), name="prompt_deploy"),
    path(
        "training/prompt/versions/<int:version_id>/activate/",
        views.PromptActivateView.as_view(),
        name="prompt_activate",
    ),
    path("training/prompt/evaluate/", evaluation_views.PromptEvaluateView.as_view(), name="prompt_evaluate"),
]
