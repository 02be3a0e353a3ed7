"""When a request reached us: the clock a reply deadline counts from.

A request can wait before a view runs: in the front proxy, in the kernel's accept queue, in the web worker's
queue for a free thread. ManyChat's 10 s run from the moment it sent the request, so a deadline started in
the view would let a queued request answer after ManyChat has given up. The arrival is, best first:

1. the front proxy's `X-Request-Start` (nginx `proxy_set_header X-Request-Start "t=${msec}"`, Heroku's
   router, New Relic's convention): `t=<seconds with a fraction>`, `t=<microseconds>`, or a bare number of
   seconds, milliseconds, microseconds or nanoseconds since the epoch (told apart by magnitude);
2. the web server's own accept time (`config.gworker` stamps it into the WSGI environ as ARRIVED_AT_KEY:
   the moment the request's first byte was read);
3. now (a server that stamps nothing: runserver, the test client).

A header is only "sane" when it is no later than the server's own stamp (plus ALLOWED_SKEW_SECONDS of
clock skew between the proxy and this host) and no older than MAX_AGE_SECONDS; otherwise it is ignored
(logged at debug) and the next source is used. It can only move the arrival earlier than the accept
time, so a forged header can make a turn go the async way sooner, never keep it past its deadline.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

logger = logging.getLogger(__name__)

ARRIVED_AT_KEY = "dmagent.arrived_at"  # WSGI environ: epoch seconds (float), set by config.gworker
HEADER_META_KEY = "HTTP_X_REQUEST_START"
ALLOWED_SKEW_SECONDS = 1.0
MAX_AGE_SECONDS = 300.0


class ArrivalSource(StrEnum):
    PROXY = "proxy"  # X-Request-Start
    SERVER = "server"  # the web worker's accept stamp
    VIEW = "view"  # nothing stamped: the view's own clock


@dataclass(frozen=True)
class Arrival:
    at: float  # epoch seconds
    source: ArrivalSource

    def monotonic(self, *, wall_now: float, monotonic_now: float) -> float:
        """The arrival as a time.monotonic() instant (what the turn's deadline is computed against)."""
        return monotonic_now - max(0.0, wall_now - self.at)


def request_start_parse(value: str) -> float | None:
    """X-Request-Start as epoch seconds, or None when it is not a number we can read."""
    raw = value.strip()
    if raw.startswith("t="):
        raw = raw[2:].strip()
    try:
        number = float(raw)
    except ValueError:
        return None
    if not math.isfinite(number) or number <= 0:
        return None
    if number >= 1e17:  # nanoseconds
        return number / 1e9
    if number >= 1e14:  # microseconds (nginx's t=${msec} without the dot, Apache's %t)
        return number / 1e6
    if number >= 1e11:  # milliseconds (Heroku)
        return number / 1e3
    return number  # seconds (nginx's t=${msec}: seconds with a millisecond fraction)


def request_arrival(*, meta: Mapping[str, Any], wall_now: float | None = None) -> Arrival:
    """When the request reached us (module docstring): the proxy's header when sane, else the server's
    accept time, else now."""
    now = time.time() if wall_now is None else wall_now
    server = meta.get(ARRIVED_AT_KEY)
    server_at = float(server) if isinstance(server, int | float) and 0 < server <= now else None
    header = meta.get(HEADER_META_KEY)
    if header:
        at = request_start_parse(str(header))
        latest = (server_at if server_at is not None else now) + ALLOWED_SKEW_SECONDS
        if at is not None and now - MAX_AGE_SECONDS <= at <= latest:
            # Within the skew a proxy clock slightly ahead of ours never makes the request look younger
            # than our own stamp says.
            return Arrival(
                at=min(at, server_at if server_at is not None else now), source=ArrivalSource.PROXY
            )
        logger.debug("X-Request-Start %r is not a sane arrival time: ignored", header)
    if server_at is not None:
        return Arrival(at=server_at, source=ArrivalSource.SERVER)
    return Arrival(at=now, source=ArrivalSource.VIEW)
