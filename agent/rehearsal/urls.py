from django.urls import path

from agent.rehearsal import apis, views

api_patterns = [
    path("rehearsal/scenarios/", apis.ScenarioListApi.as_view(), name="rehearsal_scenarios"),
    path("rehearsal/scenarios/draft/", apis.ScenarioDraftApi.as_view(), name="rehearsal_scenario_draft"),
    path(
        "rehearsal/scenarios/<int:scenario_id>/", apis.ScenarioDetailApi.as_view(), name="rehearsal_scenario"
    ),
    path("rehearsal/runs/<int:run_id>/", apis.RehearsalRunDetailApi.as_view(), name="rehearsal_run"),
    path("rehearsal/plays/<int:play_id>/", apis.RehearsalPlayDetailApi.as_view(), name="rehearsal_play"),
    path(
        "prompt/versions/<int:version_id>/rehearse/",
        apis.PromptVersionRehearseApi.as_view(),
        name="prompt_version_rehearse",
    ),
    path(
        "prompt/versions/<int:version_id>/rehearsal-gate/",
        apis.PromptVersionRehearsalGateApi.as_view(),
        name="prompt_version_rehearsal_gate",
    ),
]

page_patterns = [
    path("rehearsal/", views.ScenarioListView.as_view(), name="rehearsal"),
    path("rehearsal/scenarios/new/", views.ScenarioCreateView.as_view(), name="rehearsal_scenario_new"),
    path(
        "rehearsal/scenarios/<int:scenario_id>/",
        views.ScenarioEditView.as_view(),
        name="rehearsal_scenario_edit",
    ),
    path("rehearsal/runs/start/", views.RehearsalStartView.as_view(), name="rehearsal_start"),
    path("rehearsal/runs/<int:run_id>/", views.RehearsalReportView.as_view(), name="rehearsal_report"),
    path("rehearsal/plays/<int:play_id>/", views.RehearsalPlayView.as_view(), name="rehearsal_play"),
]
