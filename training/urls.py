from django.urls import path

from training import apis, export_apis, views
from training.insights import apis as insights_apis
from training.insights import views as insights_views
from training.review import views as review_views
from training.suggestions import views as suggestion_views

api_patterns = [
    path("training/examples/", apis.TrainingExampleListApi.as_view(), name="training_examples"),
    path(
        "training/examples/<int:example_id>/",
        apis.TrainingExampleDetailApi.as_view(),
        name="training_example",
    ),
    path("training/submit/", apis.TrainingExampleSubmitApi.as_view(), name="training_submit"),
    path(
        "training/approve/<int:example_id>/",
        apis.TrainingExampleApproveApi.as_view(),
        name="training_approve",
    ),
    path("training/insights/", insights_apis.TrainingInsightsApi.as_view(), name="training_insights"),
    path("training/insights.csv", insights_apis.TrainingInsightsCsvApi.as_view(), name="insights_csv"),
    path("training/export/", export_apis.TrainingExportApi.as_view(), name="training_export"),
]

page_patterns = [
    path("training/", views.TrainingHomeView.as_view(), name="training_home"),
    path("training/submit/", views.TrainingSubmitView.as_view(), name="training_submit"),
    path("training/submit/leads/", views.TrainingLeadSearchView.as_view(), name="training_lead_search"),
    path("training/review/", review_views.ReviewQueueView.as_view(), name="training_review"),
    path("training/library/", review_views.LibraryView.as_view(), name="training_library"),
    path(
        "training/library/<int:example_id>/",
        review_views.ExampleDetailView.as_view(),
        name="training_example_detail",
    ),
    path("training/suggestions/", suggestion_views.SuggestionsView.as_view(), name="training_suggestions"),
    path(
        "training/examples/<int:example_id>/delete/",
        views.TrainingExampleDeleteView.as_view(),
        name="training_example_delete",
    ),
    path("training/insights/", insights_views.TrainingInsightsView.as_view(), name="training_insights"),
]
