"""A worker process for tests/manychat/test_throttle.py: sends N replies through the real client.

python -m tests.manychat._send_worker <count> <start_at_epoch>; the fake server's URL, the token and the
throttle's Redis come from the environment (MANYCHAT_API_BASE_URL, MANYCHAT_API_TOKEN,
MANYCHAT_THROTTLE_REDIS_URL), as in a Celery worker.
"""

import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from agent import manychat

    count, start_at = int(sys.argv[1]), float(sys.argv[2])
    time.sleep(max(0.0, start_at - time.time()))
    failed = 0
    for number in range(count):
        data = manychat.dynamic_block_build(channel="instagram", text=f"reply {os.getpid()}-{number}")
        try:
            manychat.manychat_send_content(subscriber_id=str(1000 + number), data=data)
        except manychat.ManyChatError as exc:
            failed += 1
            print(f"failed: {exc}", file=sys.stderr)
    print(f"sent={count - failed} failed={failed}")


if __name__ == "__main__":
    main()
