"""ManyChat's side of a turn: the Dynamic Block v2 reply body and the sendContent API client."""

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.conf import settings

from leads.models import Channel

logger = logging.getLogger(__name__)

MAX_MESSAGES = 10
MAX_ACTIONS = 5
MAX_QUICK_REPLIES = 11
# Platform text limits; Telegram's own limit is 4096. Unknown channels get Messenger's.
TEXT_LIMITS = {
    Channel.INSTAGRAM: 1000,
    Channel.FACEBOOK: 2000,
    Channel.WHATSAPP: 4096,
    Channel.TELEGRAM: 4096,
    Channel.OTHER: 2000,
}
# content.type per channel; Messenger (and anything unknown) omits it.
CONTENT_TYPES = {Channel.INSTAGRAM: "instagram", Channel.WHATSAPP: "whatsapp", Channel.TELEGRAM: "telegram"}
NO_QUICK_REPLIES = {Channel.WHATSAPP, Channel.TELEGRAM}
ERROR_WINDOW_CLOSED = 3011
ELLIPSIS = "…"


def text_split(*, text: str, limit: int, max_parts: int = MAX_MESSAGES) -> list[str]:
    """Split text into at most `max_parts` chunks of at most `limit` characters.

    Cuts at a paragraph, line, sentence or word boundary when one falls in the second half of a chunk;
    text that does not fit in `max_parts` chunks is cut short with an ellipsis.
    """
    text = text.strip()
    parts: list[str] = []
    while text and len(parts) < max_parts:
        if len(text) <= limit:
            parts.append(text)
            text = ""
            break
        cut = -1
        for separator in ("\n\n", "\n", ". ", "! ", "? ", " "):
            position = text.rfind(separator, limit // 2, limit)
            if position != -1:
                cut = position + (1 if separator.strip() else 0)
                break
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text and parts:
        last = parts[-1]
        parts[-1] = (
            last[: limit - len(ELLIPSIS)].rstrip() if len(last) + len(ELLIPSIS) > limit else last
        ) + ELLIPSIS
    return [part for part in parts if part]


def dynamic_block_build(
    *,
    channel: str,
    text: str = "",
    actions: list[dict[str, Any]] | None = None,
    quick_replies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Dynamic Block v2 body; an empty text gives an empty (silent) reply."""
    content: dict[str, Any] = {}
    content_type = CONTENT_TYPES.get(channel)
    if content_type:
        content["type"] = content_type
    limit = TEXT_LIMITS.get(channel, TEXT_LIMITS[Channel.OTHER])
    content["messages"] = [{"type": "text", "text": part} for part in text_split(text=text, limit=limit)]
    content["actions"] = list(actions or [])[:MAX_ACTIONS]
    if quick_replies and channel not in NO_QUICK_REPLIES:
        content["quick_replies"] = list(quick_replies)[:MAX_QUICK_REPLIES]
    return {"version": "v2", "content": content}


def dynamic_block_empty() -> dict[str, Any]:
    return {"version": "v2", "content": {"messages": []}}


def actions_for_turn(*, qualified: bool, handoff: bool) -> list[dict[str, Any]]:
    """ManyChat actions, mapped by our code from the validated turn outcome (never from model text)."""
    actions: list[dict[str, Any]] = []
    if qualified:
        if settings.MANYCHAT_QUALIFIED_TAG:
            actions.append({"action": "add_tag", "tag_name": settings.MANYCHAT_QUALIFIED_TAG})
        if settings.MANYCHAT_STAGE_FIELD:
            actions.append(
                {
                    "action": "set_field_value",
                    "field_name": settings.MANYCHAT_STAGE_FIELD,
                    "value": "qualified",
                }
            )
    if handoff and settings.MANYCHAT_HANDOFF_TAG:
        actions.append({"action": "add_tag", "tag_name": settings.MANYCHAT_HANDOFF_TAG})
    return actions[:MAX_ACTIONS]


# --- The Page API -------------------------------------------------------------------------------------


class ManyChatError(Exception):
    def __init__(self, message: str, *, code: int | None = None, status: int | None = None, retryable: bool):
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable


class ManyChatWindowClosed(ManyChatError):
    """Error 3011: the contact's last message is over 24 hours old. Terminal; a person must follow up."""


@dataclass(frozen=True)
class SendResult:
    attempts: int


_client_lock = threading.Lock()
_clients: dict[tuple[str, float], httpx.Client] = {}


def _http_client() -> httpx.Client:
    key = (settings.MANYCHAT_API_BASE_URL, settings.MANYCHAT_API_TIMEOUT_SECONDS)
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            client = httpx.Client(
                base_url=settings.MANYCHAT_API_BASE_URL,
                timeout=httpx.Timeout(settings.MANYCHAT_API_TIMEOUT_SECONDS, connect=5.0),
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
            )
            _clients[key] = client
        return client


def manychat_send_content(*, subscriber_id: str, data: dict[str, Any], max_attempts: int = 3) -> SendResult:
    """POST /fb/sending/sendContent. Retries 429, 5xx and network errors with backoff, nothing else."""
    token = settings.MANYCHAT_API_TOKEN
    if not token:
        raise ManyChatError("MANYCHAT_API_TOKEN is not set; cannot deliver asynchronously", retryable=False)
    body = {"subscriber_id": int(subscriber_id) if subscriber_id.isdigit() else subscriber_id, "data": data}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    error: ManyChatError | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            response = _http_client().post("/fb/sending/sendContent", json=body, headers=headers)
        except httpx.HTTPError as exc:
            error = ManyChatError(f"network error: {exc.__class__.__name__}: {exc}", retryable=True)
        else:
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            if not isinstance(payload, dict):
                payload = {}
            code = payload.get("code")
            code = int(code) if isinstance(code, (int, str)) and str(code).isdigit() else None
            if response.status_code < 300 and payload.get("status") == "success":
                return SendResult(attempts=attempt)
            message = str(payload.get("message") or response.reason_phrase or "error")[:500]
            if code == ERROR_WINDOW_CLOSED:
                raise ManyChatWindowClosed(message, code=code, status=response.status_code, retryable=False)
            retryable = response.status_code == 429 or response.status_code >= 500
            error = ManyChatError(
                f"HTTP {response.status_code}: {message}",
                code=code,
                status=response.status_code,
                retryable=retryable,
            )
        if not error.retryable or attempt == max_attempts:
            break
        time.sleep(min(0.25 * 2 ** (attempt - 1), 2.0))
    assert error is not None
    raise error
