"""Which replies still need the prompts.record_reply task (agent.turn.turn_credit), without asking anyone.

The credit is one fact row per (version, conversation) whose last_reply_at says the conversation was
answered by the version since its activation (prompts.services.prompt_version_record_reply; the figures
count those rows). Once this process has queued the credit for a (version, conversation) under the current
release, the next replies in the same conversation add nothing the figures read, so they are not queued:
a returning lead's turn makes no broker round trip. A new release (prompts.live's stamp moves on
activation, rollback, experiment start or end) starts over, so re-activated versions are credited again.
The beat's reconcile (prompts.reconcile_figures) still credits any conversation whose task was lost.
"""

import threading
from collections import OrderedDict

from prompts.live import live_generation

MAX_REMEMBERED = 50_000

_lock = threading.Lock()
_queued: OrderedDict[tuple[int, int, object], None] = OrderedDict()


def credit_needed(*, version_id: int, conversation_id: int) -> bool:
    """True the first time this process sees the pair under the current release (and remembers it)."""
    generation = live_generation()
    if generation is None:  # no release stamp (the cache is off or unreachable): always queue
        return True
    key = (version_id, conversation_id, generation)
    with _lock:
        if key in _queued:
            _queued.move_to_end(key)
            return False
        _queued[key] = None
        if len(_queued) > MAX_REMEMBERED:
            _queued.popitem(last=False)
        return True


def credit_forget() -> None:
    with _lock:
        _queued.clear()
