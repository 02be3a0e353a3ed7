import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(
    [
        "config",
        "agent.privacy",
        "agent.outcomes",
        "training.retrieval",
        "agent.inbox",
        "prompts.releases",
        "agent.suggestions",
        "agent.manychat_platform",
        "agent.followups",
        "agent.scoring",
    ],
    related_name="tasks",
)

from config.logs import connect_celery_signals  # noqa: E402 - after the app exists

connect_celery_signals()


def _connect_metrics() -> None:
    from celery import signals

    # config.metrics is imported inside the handlers: importing the config package (gunicorn does, for its
    # worker class) must not create metrics before PROMETHEUS_MULTIPROC_DIR exists.
    @signals.worker_init.connect(weak=False)
    def _serve(**_: object) -> None:
        from config import metrics

        metrics.serve_worker_metrics()

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_gone(pid: int | None = None, **_: object) -> None:
        import os

        from config import metrics

        metrics.worker_child_exited(pid or os.getpid())


_connect_metrics()
