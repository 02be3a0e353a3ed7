"""Settings for bench/bench_webhook.py: the app's settings plus one bare JSON view to compare against."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_urls"
# The benchmark sends dozens of messages per lead: no per-subscriber limit (config.ratelimit).
AGENT_WEBHOOK_RATE_LIMIT = ""
