from django.urls import path

from agent.outcomes import views

webhook_patterns = [
    path("calcom/", views.BookingWebhookView.as_view(provider="calcom"), name="calcom"),
    path("calendly/", views.BookingWebhookView.as_view(provider="calendly"), name="calendly"),
]

page_patterns = [path("webhooks/", views.WebhookSubscriptionsView.as_view(), name="webhooks")]
