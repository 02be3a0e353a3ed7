"""Is this delivery a repeat of the lead's last message, or a new message that happens to read the same?

ManyChat sends no message id in a builder's body, so a redelivery can only be told by its text. ManyChat
retries only when it did not get our answer in its 10 s window (its timeout is 10 s by every public
account, manychat-conformance.md §5), so a retry arrives some seconds after the first delivery: the window
(AGENT_DEDUPE_WINDOW_SECONDS, 20 s) covers that timeout and the retry's own trip, not two minutes of
conversation. And a repeat is only a repeat when nothing was said to the lead in between: a lead who
answers "yes" to two consecutive questions sends two messages (red team D5). So the key carries the id of
the last reply the lead was given (an agent reply to a message, or a person's message), and the history
check only looks at the lead's last message.
"""

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings

from leads.models import Message, MessageRole


def _said_to_the_lead(message: Message) -> bool:
    """A reply to something the lead wrote, or a person's message (a holding line or fallback is not)."""
    if message.role == MessageRole.OPERATOR:
        return True
    return message.role == MessageRole.AGENT and message.in_reply_to_id is not None


def last_reply_id(*, history: Sequence[Message]) -> int:
    for message in reversed(history):
        if _said_to_the_lead(message):
            return message.pk
    return 0


def repeat_of(*, history: Sequence[Message], text: str, attachment_url: str, at: datetime) -> Message | None:
    """The stored message this delivery repeats: the lead's last message, same content, within the window,
    with nothing said to the lead since. None: a new message."""
    window_start = at - timedelta(seconds=settings.AGENT_DEDUPE_WINDOW_SECONDS)
    for message in reversed(history):
        if _said_to_the_lead(message):
            return None
        if message.role == MessageRole.LEAD:
            same = message.text == text and message.attachment_url == attachment_url
            return message if same and message.created_at >= window_start else None
    return None


def text_dedupe_key(
    *, subscriber_id: str, text: str, attachment_url: str, history: Sequence[Message], at: datetime
) -> str:
    """Concurrent repeats land in the same window bucket and collide on the unique key; a repeat that
    straddles a bucket boundary is caught by `repeat_of`."""
    bucket = int(at.timestamp()) // max(1, settings.AGENT_DEDUPE_WINDOW_SECONDS)
    parts = (subscriber_id, text, attachment_url, str(last_reply_id(history=history)))
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
    return f"txt:{digest}:{bucket}"
