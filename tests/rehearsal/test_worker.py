"""A rehearsal on real Celery workers (PostgreSQL + Redis): killed mid-run and started again, the run
finishes and no play that had finished is played again."""

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from agent.rehearsal import services, tasks
from agent.rehearsal.models import RehearsalPlay, RehearsalRun, RehearsalStatus
from tests.rehearsal.worker import Worker, wait_until

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.fixture
def broker(settings):
    if connection.vendor != "postgresql" or not REDIS_URL:
        pytest.skip("a worker process needs the PostgreSQL test database and TEST_REDIS_URL (CI has both)")
    from config.celery import app
    from tests.agent.test_celery_worker import _reset_pool

    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = {key: app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")}
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False, result_backend=None)
    _reset_pool(app)
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("celery")
    try:
        yield app
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")
        app.conf.update(**previous)
        _reset_pool(app)


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def test_killing_the_worker_mid_run_then_restarting_finishes_without_replaying_finished_plays(
    broker, fake_openai, versions, make_scenario, settings
):
    fake_openai.play_rehearsal(delay=0.4)  # ~2 s a play: the kill lands mid-run
    for number in range(4):
        make_scenario(title=f"Scenario {number}")
    settings.REHEARSAL_PLAY_STALE_SECONDS = 3
    worker = Worker(
        database_url=_database_url(),
        broker_url=REDIS_URL,
        openai_url=fake_openai.base_url,
        REHEARSAL_PLAY_STALE_SECONDS="3",
    ).start()
    try:
        run = services.rehearsal_run_create(version=versions["good"], repeats=3)  # queued on commit
        done = RehearsalPlay.objects.filter(run=run, status=RehearsalStatus.DONE)
        running = RehearsalPlay.objects.filter(run=run, status=RehearsalStatus.RUNNING)
        assert wait_until(lambda: done.count() >= 3 and running.exists(), 90, every=0.05), worker.output()
        worker.kill()
        before = {p.pk: (p.finished_at, p.attempts) for p in done}
        in_flight = set(
            RehearsalPlay.objects.filter(run=run, status=RehearsalStatus.RUNNING).values_list("pk", flat=True)
        )
        assert in_flight, "the kill should catch plays mid-way"
        calls_at_kill = fake_openai.calls

        worker.start()
        # The plays the dead worker held stay "running" until the stale window passes; the beat sweep
        # then queues them again (here sent by hand instead of waiting for beat's minute).
        RehearsalRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(minutes=1))
        assert wait_until(lambda: services.rehearsal_runs_stalled() == [run.pk], 30), worker.output()
        tasks.resume_stalled.delay()
        assert wait_until(lambda: RehearsalRun.objects.get(pk=run.pk).status == RehearsalStatus.DONE, 120), (
            worker.output()
        )
    finally:
        worker.stop()
    plays = {p.pk: p for p in RehearsalPlay.objects.filter(run=run)}
    assert len(plays) == 12 and {p.status for p in plays.values()} == {RehearsalStatus.DONE}
    for pk, (finished_at, attempts) in before.items():  # finished before the kill: never played again
        assert (plays[pk].finished_at, plays[pk].attempts) == (finished_at, attempts) == (finished_at, 1)
    for pk in in_flight:  # caught mid-play: claimed again after the stale window, played to the end
        assert plays[pk].attempts == 2
    assert all(p.attempts == 1 for pk, p in plays.items() if pk not in in_flight)
    assert all(p.passed for p in plays.values())
    # Five model calls a play (3 agent, 2 lead); only the interrupted plays cost calls twice.
    assert fake_openai.calls - calls_at_kill <= 5 * (12 - len(before))
