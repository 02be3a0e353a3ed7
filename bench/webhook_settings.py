"""Settings for bench/bench_webhook.py: the app's settings plus one bare JSON view to compare against."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_urls"
