from django.urls import path

from prompts import apis, views
from prompts.funnel.apis import PromptVersionFunnelApi
from prompts.releases import urls as release_urls

api_patterns = [
    path(
        "prompt/versions/",
        apis.PromptVersionsApi.as_view(),
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
        "prompt/versions/<int:version_id>/funnel/",
        PromptVersionFunnelApi.as_view(),
        name="prompt_version_funnel",
    ),
    path(
        "prompt/active/",
        apis.PromptActiveApi.as_view(),
        name="prompt_active",
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
    *release_urls.page_patterns,
]
api_patterns += release_urls.api_patterns
