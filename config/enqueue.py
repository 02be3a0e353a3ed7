"""Queue a Celery task once the current transaction commits: the one way the apps schedule work.

With a broker the task is queued for a worker. Without one (CELERY_TASK_ALWAYS_EAGER: the local demo and
the tests) a task runs in this process: inline after the commit when it is quick (crediting a reply), or,
with `background=True`, in a daemon thread, so a long task (a turn, an evaluation run) never holds the
request that scheduled it. If the process dies first, the task's own sweep picks the work up.

Always robust: a broker outage is logged, never raised into the code that committed, because the work
the task would do is already recoverable (the retry sweep, the figures reconcile).
"""

import logging
import threading
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)

TaskArg = int | str | float | bool | None


class _Task(Protocol):
    name: str

    def delay(self, *args: Any) -> Any: ...

    def apply(self, args: Any = None) -> Any: ...


def _run_in_thread(task: _Task, args: tuple[TaskArg, ...], name: str) -> None:
    def run() -> None:
        try:
            task.apply(args=list(args))
        finally:
            connection.close()

    threading.Thread(target=run, name=name, daemon=True).start()


def enqueue_on_commit(task: _Task, *args: TaskArg, background: bool = False, thread_name: str = "") -> None:
    """Queue `task(*args)` after the current transaction commits (at once outside a transaction)."""
    captured = tuple(args)  # ids captured now, not late-bound in the callback
    if settings.CELERY_TASK_ALWAYS_EAGER and background:
        name = thread_name or f"{task.name}-{'-'.join(str(arg) for arg in captured)}"[:60]
        transaction.on_commit(lambda: _run_in_thread(task, captured, name), robust=True)
    else:
        transaction.on_commit(lambda: task.delay(*captured), robust=True)
