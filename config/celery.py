import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(
    ["config", "agent.privacy", "training.retrieval", "agent.inbox", "prompts.releases"], related_name="tasks"
)

from config.logs import connect_celery_signals  # noqa: E402 - after the app exists

connect_celery_signals()
