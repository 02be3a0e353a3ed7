"""The token bucket keeps every worker together under ManyChat's 25 requests/s per page (S3, D12).

Counted on the fake server's side: the most requests that arrived in any one-second window.
"""

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from agent import manychat, manychat_throttle

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
ROOT = Path(__file__).resolve().parents[2]


def test_threads_of_one_process_share_the_in_process_bucket(fake_manychat):
    fake_manychat.rate_limit = 25  # the fake answers 429 past ManyChat's limit
    errors: list[Exception] = []

    def work(offset: int) -> None:
        for number in range(20):
            try:
                manychat.manychat_send_content(
                    subscriber_id=str(offset + number),
                    data=manychat.dynamic_block_build(channel="x", text="hi"),
                )
            except manychat.ManyChatError as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(1000 * i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    print("most in one second:", fake_manychat.per_second())
    assert len(fake_manychat.sent()) == 60  # all queued sends went out, none twice, no 429 retried
    assert fake_manychat.per_second() <= 25


def test_200_queued_sends_from_two_worker_processes_stay_under_25_per_second(fake_manychat):
    if not REDIS_URL:
        pytest.skip("TEST_REDIS_URL is not set (e.g. redis://127.0.0.1:6379/5): no Redis to share the bucket")
    fake_manychat.rate_limit = 25
    token = f"{uuid.uuid4().int % 10**9}:fake-token"  # a page of its own: no slots left by an earlier run
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "MANYCHAT_API_BASE_URL": fake_manychat.url,
        "MANYCHAT_API_TOKEN": token,
        "MANYCHAT_THROTTLE_REDIS_URL": REDIS_URL,
        "MANYCHAT_THROTTLE_MAX_WAIT_SECONDS": "60",
        "DATABASE_URL": "sqlite:///:memory:",
    }
    start_at = str(time.time() + 3.0)  # both processes start sending at the same moment
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.manychat._send_worker", "100", start_at],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["sent=100 failed=0"] * 2, outputs
    sent = fake_manychat.sent()
    print("most in one second:", fake_manychat.per_second())
    assert len(sent) == 200  # every queued send delivered exactly once: no 429, no error
    assert len({m["text"] for body in sent for m in body["data"]["content"]["messages"]}) == 200
    assert fake_manychat.per_second() <= 25


def test_a_queue_longer_than_the_wait_limit_keeps_the_reply_pending(settings, fake_manychat):
    settings.MANYCHAT_THROTTLE_MAX_WAIT_SECONDS = 0.2
    settings.MANYCHAT_RATE_PER_SECOND = 1.0
    settings.MANYCHAT_RATE_BURST = 1
    data = manychat.dynamic_block_empty()
    manychat.manychat_send_content(subscriber_id="1", data=data)
    with pytest.raises(manychat.ManyChatError) as caught:
        manychat.manychat_send_content(subscriber_id="2", data=data)
    assert caught.value.failure is manychat.SendFailure.RATE_LIMITED
    assert caught.value.retryable is True  # the delivery step keeps it pending; the sweep sends it
    assert len(fake_manychat.sent()) == 1


def test_a_manychat_429_holds_back_every_sender_on_the_page(fake_manychat):
    fake_manychat.enqueue(fake_manychat.too_many_requests(retry_after=1))
    manychat.manychat_send_content(subscriber_id="1", data=manychat.dynamic_block_empty())
    before = time.monotonic()
    manychat.manychat_send_content(subscriber_id="2", data=manychat.dynamic_block_empty())
    arrivals = fake_manychat.arrivals()
    assert len(fake_manychat.sent()) == 3
    assert arrivals[1] - arrivals[0] >= 0.9 and arrivals[2] >= before


@pytest.mark.skipif(not REDIS_URL, reason="TEST_REDIS_URL is not set")
def test_redis_down_falls_back_to_the_process_bucket(fake_manychat):
    throttle = manychat_throttle.Throttle(redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    rate = manychat_throttle.Rate(per_second=20, burst=1)
    waits = [throttle.acquire(bucket="manychat:rl:t", rate=rate, max_wait=5) for _ in range(3)]
    assert waits[0] == 0 and all(w > 0 for w in waits[1:])
