"""Keep every call to ManyChat's Page API under its per-page limits, across all workers.

ManyChat allows 25 requests/s per page on sendContent/sendFlow and 10/s on the subscriber endpoints, and
"may stop processing requests for 24 hours" past them (MC-API-HELP in manychat-conformance.md, S3). A
sweep after an outage, or four Celery processes each sending, can go past 25/s; so every call first takes
a slot from a shared schedule.

The schedule is GCRA (the "generic cell rate algorithm"): one timestamp per bucket, the theoretical
arrival time of the next call. A caller reserves the next slot and sleeps until it, so sends queue rather
than fail; with `rate` calls/s and a burst of `burst`, any one-second window holds at most
`burst + rate` calls (18 + 2 = 20 by default: jitter on the way bunches arrivals, and with 20 + 2 we
counted up to 24 in one second at the fake server). With a Redis URL the timestamp lives in Redis
and the reservation is one Lua script run against Redis's own clock, so all processes on all hosts share
it; without one (the local demo, tests without a broker) it lives in this process. If Redis fails the
caller falls back to the in-process schedule rather than drop a lead's reply.
"""

import hashlib
import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def tolerance(self) -> float:
        return (max(1, self.burst) - 1) * self.interval


class ThrottleTimeout(Exception):
    """The next free slot is further away than the caller may wait; nothing was reserved."""

    def __init__(self, wait: float):
        super().__init__(f"the ManyChat send queue is {wait:.1f}s long")
        self.wait = wait


# KEYS[1]: the bucket's key. ARGV: interval, tolerance, max_wait (seconds), penalty (seconds, 0 for a
# reservation). Returns the wait in microseconds as a string, or "-<wait>" when it is over max_wait.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local penalty = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if penalty > 0 then
  local until_ts = now + penalty + tolerance
  if until_ts > tat then tat = until_ts end
  redis.call('SET', KEYS[1], string.format('%.6f', tat), 'EX', math.ceil(penalty) + 60)
  return '0'
end
local send_at = tat - tolerance
if send_at < now then send_at = now end
local wait = send_at - now
if wait > max_wait then return string.format('-%d', math.floor(wait * 1000000)) end
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'EX', math.ceil(wait + interval) + 60)
return string.format('%d', math.floor(wait * 1000000))
"""


class _LocalSchedule:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tat: dict[str, float] = {}

    def reserve(self, *, key: str, rate: Rate, max_wait: float, penalty: float = 0.0) -> float:
        with self._lock:
            now = time.monotonic()
            tat = max(self._tat.get(key, now), now)
            if penalty > 0:
                self._tat[key] = max(tat, now + penalty + rate.tolerance)
                return 0.0
            wait = max(now, tat - rate.tolerance) - now
            if wait > max_wait:
                raise ThrottleTimeout(wait)
            self._tat[key] = tat + rate.interval
            return wait

    def clear(self) -> None:
        with self._lock:
            self._tat.clear()


class Throttle:
    """One per process (see `throttle()`); a test may build its own with another Redis URL."""

    def __init__(self, *, redis_url: str = "") -> None:
        self.redis_url = redis_url
        self._local = _LocalSchedule()
        self._script = None
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
            self._script = client.register_script(_SCRIPT)

    def _reserve(self, *, key: str, rate: Rate, max_wait: float, penalty: float = 0.0) -> float:
        if self._script is not None:
            try:
                raw = self._script(keys=[key], args=[rate.interval, rate.tolerance, max_wait, penalty])
            except Exception as exc:  # noqa: BLE001 - Redis down: throttle in process, never drop the send
                logger.warning("manychat throttle: Redis unavailable, throttling in process: %s", exc)
            else:
                text = raw.decode() if isinstance(raw, bytes) else str(raw)
                if text.startswith("-"):
                    raise ThrottleTimeout(int(text[1:]) / 1_000_000)
                return int(text) / 1_000_000
        return self._local.reserve(key=key, rate=rate, max_wait=max_wait, penalty=penalty)

    def acquire(self, *, bucket: str, rate: Rate, max_wait: float) -> float:
        """Reserve the next slot in `bucket` and sleep until it; returns the seconds waited."""
        wait = self._reserve(key=bucket, rate=rate, max_wait=max_wait)
        if wait > 0:
            time.sleep(wait)
        return wait

    def penalize(self, *, bucket: str, rate: Rate, seconds: float) -> None:
        """ManyChat answered 429: no one on this page sends before `seconds` from now."""
        self._reserve(key=bucket, rate=rate, max_wait=0.0, penalty=max(0.001, seconds))

    def clear(self) -> None:
        self._local.clear()


_lock = threading.Lock()
_throttles: dict[str, Throttle] = {}


def throttle_redis_url() -> str:
    url = settings.MANYCHAT_THROTTLE_REDIS_URL
    if url:
        return url
    broker = settings.CELERY_BROKER_URL or ""
    if settings.REDIS_URL:
        return settings.REDIS_URL
    return broker if broker.startswith(("redis://", "rediss://")) else ""


def throttle() -> Throttle:
    url = throttle_redis_url()
    with _lock:
        found = _throttles.get(url)
        if found is None:
            found = _throttles[url] = Throttle(redis_url=url)
        return found


def page_key(*, token: str) -> str:
    """The page a token belongs to (ManyChat tokens read `<page_id>:<hash>`), without the secret part."""
    page, sep, _ = token.partition(":")
    ident = page if sep and page.isdigit() else hashlib.sha256(token.encode()).hexdigest()[:16]
    return f"manychat:rl:{ident}"


def rates() -> dict[str, Rate]:
    return {
        "page": Rate(settings.MANYCHAT_RATE_PER_SECOND, settings.MANYCHAT_RATE_BURST),
        "subscriber": Rate(
            settings.MANYCHAT_SUBSCRIBER_RATE_PER_SECOND, settings.MANYCHAT_SUBSCRIBER_RATE_BURST
        ),
    }
