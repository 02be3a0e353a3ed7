from django.urls import path

from agent.apis import ManyChatWebhookApi

webhook_patterns = [
    path("manychat/", ManyChatWebhookApi.as_view(), name="manychat"),
]
