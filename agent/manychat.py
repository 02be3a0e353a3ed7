"""ManyChat's side of a turn: the Dynamic Block v2 reply body and the Page API client.

Sources for every rule here are in shared/reference/manychat-conformance.md: the envelope and limits (DBD),
Instagram's 1000-byte cap (META-IG, R1), the send refusals (SDK errors.ts, S2), no idempotency key and
so no blind retry after a timeout (SDK ADR-0004, S1), and 25 requests/s per page (MC-API-HELP, S3).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from django.conf import settings

from agent import manychat_throttle
from leads.models import Channel

logger = logging.getLogger(__name__)

MAX_MESSAGES = 10
MAX_ACTIONS = 5
MAX_QUICK_REPLIES = 11
MAX_FIELDS_PER_CALL = 20  # setCustomFields
# Platform text limits. Instagram's is 1000 UTF-8 *bytes* (Meta); the others are characters. TikTok, SMS
# and email have no documented Dynamic Block limit: they get Instagram's, the smallest cap we know.
TEXT_LIMITS = {
    Channel.INSTAGRAM: 1000,
    Channel.FACEBOOK: 2000,
    Channel.WHATSAPP: 4096,
    Channel.TELEGRAM: 4096,
    Channel.TIKTOK: 1000,
    Channel.SMS: 1000,
    Channel.EMAIL: 1000,
    Channel.OTHER: 2000,
}
BYTE_LIMITED = {Channel.INSTAGRAM, Channel.TIKTOK, Channel.SMS, Channel.EMAIL}
# content.type per channel; Messenger (and anything DBD documents no type for) omits it.
CONTENT_TYPES = {Channel.INSTAGRAM: "instagram", Channel.WHATSAPP: "whatsapp", Channel.TELEGRAM: "telegram"}
NO_QUICK_REPLIES = {Channel.WHATSAPP, Channel.TELEGRAM}
ERROR_WINDOW_CLOSED = 3011
ELLIPSIS = "…"


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _fit(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """How many leading characters of `text` fit in `limit` units of `measure`."""
    if measure is len:
        return min(len(text), limit)
    return len(text.encode("utf-8")[:limit].decode("utf-8", errors="ignore"))


def text_split(
    *, text: str, limit: int, max_parts: int = MAX_MESSAGES, measure: Callable[[str], int] = len
) -> list[str]:
    """Split text into at most `max_parts` chunks of at most `limit` (characters, or what `measure` counts).

    Cuts at a paragraph, line, sentence or word boundary when one falls in the second half of a chunk;
    text that does not fit in `max_parts` chunks is cut short with an ellipsis.
    """
    text = text.strip()
    parts: list[str] = []
    while text and len(parts) < max_parts:
        if measure(text) <= limit:
            parts.append(text)
            text = ""
            break
        fit = _fit(text, limit, measure)
        cut = -1
        for separator in ("\n\n", "\n", ". ", "! ", "? ", " "):
            position = text.rfind(separator, fit // 2, fit)
            if position != -1:
                cut = position + (1 if separator.strip() else 0)
                break
        if cut <= 0:
            cut = fit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text and parts:
        last = parts[-1]
        room = limit - measure(ELLIPSIS)
        if measure(last) > room:
            last = last[: _fit(last, room, measure)].rstrip()
        parts[-1] = last + ELLIPSIS
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
    measure = _utf8_len if channel in BYTE_LIMITED else len
    content["messages"] = [
        {"type": "text", "text": part} for part in text_split(text=text, limit=limit, measure=measure)
    ]
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


class SendFailure(StrEnum):
    """Why ManyChat did not take a request. The delivery step acts on this, never on message text."""

    NOT_CONFIGURED = "not_configured"  # no MANYCHAT_API_TOKEN
    TOKEN_INVALID = "token_invalid"  # noqa: S105 - 401/403, "Wrong token": every API reply is lost until fixed
    WINDOW_CLOSED = "window_closed"  # 3011: the contact's last message is over 24 h old
    TAG_REQUIRED = "tag_required"  # 3021 (one-time notification) / 3031 (notification reason)
    CHANNEL_REFUSED = "channel_refused"  # 304X: "can't be sent via specific channel"
    REFUSED = "refused"  # any other refusal, including an error reported with HTTP 200
    RATE_LIMITED = "rate_limited"  # 429, or our own queue is too long: nothing sent, try later
    SERVER_ERROR = "server_error"  # 5xx: nothing taken, try later
    UNREACHABLE = "unreachable"  # could not connect / could not write the request: nothing sent
    OUTCOME_UNKNOWN = "outcome_unknown"  # sent, no answer (read timeout): maybe delivered

    @property
    def retryable(self) -> bool:
        """Sending again is both useful and safe (ManyChat did not take the request)."""
        return self in (SendFailure.RATE_LIMITED, SendFailure.SERVER_ERROR, SendFailure.UNREACHABLE)

    @property
    def account_wide(self) -> bool:
        """The cause is the integration's, not the lead's: every lead on the page is affected."""
        return self in (SendFailure.NOT_CONFIGURED, SendFailure.TOKEN_INVALID)

    @property
    def explanation(self) -> str:
        return _EXPLANATIONS[self]


_EXPLANATIONS = {
    SendFailure.NOT_CONFIGURED: "MANYCHAT_API_TOKEN is not set: replies outside the webhook cannot be sent.",
    SendFailure.TOKEN_INVALID: "ManyChat refused the API token (MANYCHAT_API_TOKEN): fix it in the settings.",
    SendFailure.WINDOW_CLOSED: "The 24-hour messaging window closed before the agent's reply could be sent.",
    SendFailure.TAG_REQUIRED: "ManyChat needs a message tag or a notification opt-in for this contact.",
    SendFailure.CHANNEL_REFUSED: "ManyChat cannot send to this contact on its channel.",
    SendFailure.REFUSED: "ManyChat refused the agent's reply.",
    SendFailure.RATE_LIMITED: "ManyChat's rate limit: the reply is queued and sent later.",
    SendFailure.SERVER_ERROR: "ManyChat had an error: the reply is sent again later.",
    SendFailure.UNREACHABLE: "ManyChat could not be reached: the reply is sent again later.",
    SendFailure.OUTCOME_UNKNOWN: (
        "ManyChat took the reply but did not answer in time: it may or may not have reached the lead. "
        "It is not sent again; check the conversation in ManyChat's Live Chat."
    ),
}


class ManyChatError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        failure: SendFailure | None = None,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        if failure is None:
            failure = SendFailure.SERVER_ERROR if retryable else SendFailure.REFUSED
        self.failure = failure
        self.code = code
        self.status = status
        self.retryable = failure.retryable if retryable is None else retryable
        self.retry_after = retry_after


class ManyChatWindowClosed(ManyChatError):
    """Error 3011: the contact's last message is over 24 hours old. Terminal; a person must follow up."""


class ManyChatOutcomeUnknown(ManyChatError):
    """The request was sent and no answer came (read timeout). ManyChat has no idempotency key, so
    sending again could put the same reply on the lead's phone twice (SDK ADR-0004): never retried."""


@dataclass(frozen=True)
class SendResult:
    attempts: int
    waited: float = 0.0  # seconds spent queued behind the rate limit
    data: Any = None  # the `data` of ManyChat's success envelope, when it sends one


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


# Raised before the request was complete on the wire: ManyChat cannot have acted on it.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


def _code(payload: dict[str, Any]) -> int | None:
    code = payload.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    return int(code) if isinstance(code, str) and code.isdigit() else None


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def failure_classify(*, status: int, code: int | None, message: str) -> SendFailure:
    """Which SendFailure an error answer is (an error may come with HTTP 200)."""
    lowered = message.lower()
    if status in (401, 403) or "wrong token" in lowered or "invalid token" in lowered:
        return SendFailure.TOKEN_INVALID
    if code == ERROR_WINDOW_CLOSED:
        return SendFailure.WINDOW_CLOSED
    if code in (3021, 3031):
        return SendFailure.TAG_REQUIRED
    if code is not None and 3040 <= code <= 3049:
        return SendFailure.CHANNEL_REFUSED
    if status == 429:
        return SendFailure.RATE_LIMITED
    if status >= 500:
        return SendFailure.SERVER_ERROR
    return SendFailure.REFUSED


def _subscriber(subscriber_id: str | int) -> int | str:
    value = str(subscriber_id)
    return int(value) if value.isdigit() else value


def manychat_request(
    *,
    method: str,
    path: str,
    json: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    max_attempts: int | None = None,
) -> SendResult:
    """One Page API call: throttled per page, classified on failure (ManyChatError.failure).

    Retries only what ManyChat did not take (429 after its Retry-After, 5xx, a connection that failed
    before the request was written), with backoff. A request that was written and got no answer raises
    ManyChatOutcomeUnknown at once: it may have been acted on.
    """
    token = settings.MANYCHAT_API_TOKEN
    if not token:
        raise ManyChatError(
            "MANYCHAT_API_TOKEN is not set; cannot call the ManyChat API", failure=SendFailure.NOT_CONFIGURED
        )
    attempts_allowed = max(1, max_attempts or settings.MANYCHAT_MAX_ATTEMPTS)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    throttle = manychat_throttle.throttle()
    rates = manychat_throttle.rates()
    page = manychat_throttle.page_key(token=token)
    buckets = [(page, rates["page"])]
    if path.startswith("/fb/subscriber/"):
        buckets.append((f"{page}:subscriber", rates["subscriber"]))
    waited = 0.0
    error: ManyChatError | None = None
    for attempt in range(1, attempts_allowed + 1):
        try:
            for bucket, rate in buckets:
                waited += throttle.acquire(
                    bucket=bucket, rate=rate, max_wait=settings.MANYCHAT_THROTTLE_MAX_WAIT_SECONDS
                )
        except manychat_throttle.ThrottleTimeout as exc:
            # Queued sends wait their turn; past the wait limit the caller keeps the reply pending.
            raise ManyChatError(
                f"rate limited in our queue: {exc}", failure=SendFailure.RATE_LIMITED
            ) from exc
        try:
            response = _http_client().request(method, path, json=json, params=params, headers=headers)
        except _NOT_SENT as exc:
            error = ManyChatError(
                f"network error before sending: {exc.__class__.__name__}: {exc}",
                failure=SendFailure.UNREACHABLE,
            )
        except httpx.HTTPError as exc:
            raise ManyChatOutcomeUnknown(
                f"no answer after sending ({exc.__class__.__name__}): {exc}",
                failure=SendFailure.OUTCOME_UNKNOWN,
            ) from exc
        else:
            try:
                payload = response.json()
            except ValueError:
                payload = {}
            if not isinstance(payload, dict):
                payload = {}
            if response.status_code < 300 and payload.get("status") == "success":
                return SendResult(attempts=attempt, waited=waited, data=payload.get("data"))
            code = _code(payload)
            message = str(payload.get("message") or response.reason_phrase or "error")[:500]
            failure = failure_classify(status=response.status_code, code=code, message=message)
            kind = ManyChatWindowClosed if failure is SendFailure.WINDOW_CLOSED else ManyChatError
            error = kind(
                f"HTTP {response.status_code}"
                + (f" code {code}" if code is not None else "")
                + f": {message}",
                code=code,
                status=response.status_code,
                failure=failure,
                retry_after=_retry_after(response),
            )
            if failure is SendFailure.RATE_LIMITED:
                # Every worker on this page holds back, not only this one (ManyChat may block for 24 h).
                pause = error.retry_after if error.retry_after is not None else 1.0
                for bucket, rate in buckets:
                    throttle.penalize(bucket=bucket, rate=rate, seconds=min(pause, 60.0))
        if not error.retryable or attempt == attempts_allowed:
            break
        if error.failure is not SendFailure.RATE_LIMITED:  # a 429 already waits in the throttle
            time.sleep(min(0.25 * 2 ** (attempt - 1), 2.0))
    assert error is not None
    raise error


def manychat_send_content(
    *, subscriber_id: str, data: dict[str, Any], max_attempts: int | None = None
) -> SendResult:
    """POST /fb/sending/sendContent with a v2 body (content.type per channel)."""
    return manychat_request(
        method="POST",
        path="/fb/sending/sendContent",
        json={"subscriber_id": _subscriber(subscriber_id), "data": data},
        max_attempts=max_attempts,
    )


def manychat_send_flow(*, subscriber_id: str, flow_ns: str) -> SendResult:
    """POST /fb/sending/sendFlow: start a flow built in ManyChat (a booking flow, a template)."""
    return manychat_request(
        method="POST",
        path="/fb/sending/sendFlow",
        json={"subscriber_id": _subscriber(subscriber_id), "flow_ns": flow_ns},
    )


def manychat_add_tag(*, subscriber_id: str, tag_name: str) -> SendResult:
    return manychat_request(
        method="POST",
        path="/fb/subscriber/addTagByName",
        json={"subscriber_id": _subscriber(subscriber_id), "tag_name": tag_name},
    )


def manychat_remove_tag(*, subscriber_id: str, tag_name: str) -> SendResult:
    return manychat_request(
        method="POST",
        path="/fb/subscriber/removeTagByName",
        json={"subscriber_id": _subscriber(subscriber_id), "tag_name": tag_name},
    )


def manychat_set_field(*, subscriber_id: str, field_name: str, value: Any) -> SendResult:
    return manychat_request(
        method="POST",
        path="/fb/subscriber/setCustomFieldByName",
        json={"subscriber_id": _subscriber(subscriber_id), "field_name": field_name, "field_value": value},
    )


def manychat_set_fields(*, subscriber_id: str, fields: list[dict[str, Any]]) -> SendResult:
    """POST /fb/subscriber/setCustomFields: [{field_id | field_name, field_value}], at most 20 per call."""
    return manychat_request(
        method="POST",
        path="/fb/subscriber/setCustomFields",
        json={"subscriber_id": _subscriber(subscriber_id), "fields": fields[:MAX_FIELDS_PER_CALL]},
    )


def _list(path: str) -> list[dict[str, Any]]:
    data = manychat_request(method="GET", path=path).data
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def manychat_page_info() -> dict[str, Any]:
    data = manychat_request(method="GET", path="/fb/page/getInfo").data
    return data if isinstance(data, dict) else {}


def manychat_tags() -> list[dict[str, Any]]:
    """[{id, name}] of the account's tags."""
    return _list("/fb/page/getTags")


def manychat_custom_fields() -> list[dict[str, Any]]:
    """[{id, name, type, description}] of the account's custom (per-contact) fields."""
    return _list("/fb/page/getCustomFields")
