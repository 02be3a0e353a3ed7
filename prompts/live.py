"""What the agent's turn reads on every message but changes only on a release, kept briefly in process.

Every turn needs the running experiment (with both arms) or, without one, the active version: two SQL
statements per message for rows that change a few times a month. They are kept per process for at most
PROMPT_LIVE_CACHE_SECONDS (5 s), and only while the release stamp in the shared cache (Redis in production,
one GET per turn) is the one they were read under. Whatever changes them (activation, rollback, an
experiment starting or ending, a parameter the model rejected) calls `live_bump()`: the stamp moves now and
again when the transaction commits, so every worker rereads on its next turn. Without a shared cache
(LocMemCache: one process only) other processes see a change within the TTL at most.

A TTL of 0 turns the cache off (the test suite's settings: tests change versions behind the services' back).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

if TYPE_CHECKING:
    from prompts.models import PromptVersion
    from prompts.releases.models import Experiment

logger = logging.getLogger(__name__)

STAMP_KEY = "prompts:live:stamp"


@dataclass(frozen=True)
class LiveRelease:
    """What answers leads right now: the running experiment (its arms loaded), else the active version."""

    experiment: Experiment | None
    active: PromptVersion | None


_lock = threading.Lock()
_held: dict[str, Any] = {"release": None, "stamp": None, "at": 0.0}


def _stamp() -> str | None:
    try:
        return cache.get(STAMP_KEY)
    except Exception:  # noqa: BLE001 - a cache outage costs the two reads, never the turn
        logger.warning("prompts.live: the shared cache is unreachable; reading the release from the database")
        return None


def _stamp_new() -> None:
    try:
        cache.set(STAMP_KEY, uuid.uuid4().hex, None)
    except Exception:  # noqa: BLE001
        logger.warning(
            "prompts.live: could not move the release stamp; other workers catch up within the TTL"
        )


def live_forget() -> None:
    """Drop this process's copy (the next turn reads the database)."""
    with _lock:
        _held.update(release=None, stamp=None, at=0.0)


def live_bump() -> None:
    """The release changed: every process rereads it on its next turn (now, and once more on commit, so a
    turn that read between the two sees the committed rows)."""
    live_forget()
    _stamp_new()

    def after_commit() -> None:
        live_forget()
        _stamp_new()

    transaction.on_commit(after_commit)


def live_release(*, read) -> LiveRelease:
    """The live release, from this process's copy when it is fresh, else `read()` (the database)."""
    ttl = float(getattr(settings, "PROMPT_LIVE_CACHE_SECONDS", 5.0))
    if ttl <= 0:
        return read()
    stamp = _stamp()
    now = time.monotonic()
    with _lock:
        held = _held["release"]
        if held is not None and stamp is not None and stamp == _held["stamp"] and now - _held["at"] < ttl:
            return held
    if stamp is None:
        # No stamp yet (a fresh cache): set one, so a later bump or a cache flush is noticed.
        _stamp_new()
        stamp = _stamp()
    release = read()
    with _lock:
        _held.update(release=release, stamp=stamp, at=now)
    return release


def live_generation() -> object:
    """This process's current release stamp (no I/O): changes whenever the live release is reread."""
    return _held["stamp"]
