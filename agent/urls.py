from django.urls import path

from agent.apis import ManyChatWebhookApi
from agent.evaluation import apis as evaluation_apis
from agent.evaluation import views as evaluation_views

webhook_patterns = [
    path("manychat/", ManyChatWebhookApi.as_view(), name="manychat"),
]

# The evaluation lives in agent (it runs the agent's model input); its paths sit beside the prompt's.
api_patterns = [
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
    path("training/prompt/evaluate/", evaluation_views.PromptEvaluateView.as_view(), name="prompt_evaluate"),
]
