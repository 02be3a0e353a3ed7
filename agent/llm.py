"""The model call: the openai SDK against OPENAI_BASE_URL, a deadline, bounded retries, validated output.

Without OPENAI_API_KEY an offline responder answers deterministically so the demo works with nothing
configured. The model is asked for a JSON object; a plain-text answer is taken as the reply. Nothing the
model writes is ever executed: only the validated fields below leave this module.
"""

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline-responder"
MAX_REPLY_CHARS = 8000
MAX_LEAD_FIELDS = 20
MAX_FIELD_KEY_CHARS = 64
MAX_FIELD_VALUE_CHARS = 500
MAX_REASON_CHARS = 500
# Errors worth another attempt: the server may answer next time. A 4xx other than 408/409/429 will not.
RETRYABLE = (
    openai.APIConnectionError,
    openai.APITimeoutError,
    openai.RateLimitError,
    openai.InternalServerError,
)

OUTPUT_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else, with exactly these keys: "
    '"reply" (string: your next message to the lead, plain text), '
    '"qualified" (boolean: true only when the lead meets the qualification criteria above), '
    '"lead_fields" (object: facts the lead told you, e.g. {"budget": "5000", "timeline": "this month"}; '
    "{} if none), "
    '"handoff" (boolean: true when the lead asks for a person or you cannot help), '
    '"handoff_reason" (string or null).'
)


class LlmError(Exception):
    def __init__(self, message: str, *, kind: str = "error"):
        super().__init__(message)
        self.kind = kind  # "timeout", "error" or "invalid_output"


@dataclass(frozen=True)
class LlmResult:
    reply: str
    qualified: bool = False
    lead_fields: dict[str, Any] = field(default_factory=dict)
    handoff: bool = False
    handoff_reason: str = ""
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int = 0
    attempts: int = 1


# --- Output parsing ------------------------------------------------------------------------------------

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def llm_output_parse(*, content: str | None) -> dict[str, Any]:
    """Validate the model's answer into the turn fields; raises LlmError(kind="invalid_output")."""
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise LlmError("the model returned an empty answer", kind="invalid_output")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        # A plain-text (or non-object JSON) answer is the reply itself.
        return {
            "reply": text[:MAX_REPLY_CHARS],
            "qualified": False,
            "lead_fields": {},
            "handoff": False,
            "handoff_reason": "",
        }

    reply = data.get("reply")
    if reply is None:
        reply = ""
    if not isinstance(reply, str):
        raise LlmError("reply must be a string", kind="invalid_output")
    handoff = data.get("handoff", False) is True
    if not reply.strip() and not handoff:
        raise LlmError("reply is empty and no handoff was requested", kind="invalid_output")
    reason = data.get("handoff_reason")
    reason = reason.strip()[:MAX_REASON_CHARS] if isinstance(reason, str) else ""
    lead_fields: dict[str, Any] = {}
    raw_fields = data.get("lead_fields")
    if isinstance(raw_fields, dict):
        for key, value in list(raw_fields.items())[:MAX_LEAD_FIELDS]:
            if value is None or isinstance(value, (dict, list)):
                continue
            if isinstance(value, str):
                value = value.strip()[:MAX_FIELD_VALUE_CHARS]
                if not value:
                    continue
            lead_fields[str(key).strip()[:MAX_FIELD_KEY_CHARS]] = value
    return {
        "reply": reply.strip()[:MAX_REPLY_CHARS],
        "qualified": data.get("qualified", False) is True,
        "lead_fields": lead_fields,
        "handoff": handoff,
        "handoff_reason": reason,
    }


# --- The offline responder ------------------------------------------------------------------------------

_HUMAN_WORDS = re.compile(
    r"\b(human|person|real person|agent|someone|call me|representative)\b", re.IGNORECASE
)
_BUY_WORDS = re.compile(r"\b(buy|purchase|sign up|ready|budget|price|pricing|cost|quote)\b", re.IGNORECASE)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_MONEY = re.compile(
    r"(?:\$|€|£)\s?\d(?:[\d,.]*\d)?|\b\d(?:[\d,.]*\d)?\s?(?:usd|eur|dollars|euros|k)\b", re.IGNORECASE
)


def _offline_answer(*, messages: list[dict[str, str]]) -> str:
    """A deterministic stand-in for the model, so the app answers with nothing configured."""
    last = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    if _HUMAN_WORDS.search(last):
        return json.dumps(
            {
                "reply": "Of course — I'm passing you to a member of our team, they'll reply here soon.",
                "qualified": False,
                "lead_fields": {},
                "handoff": True,
                "handoff_reason": "The lead asked for a person.",
            }
        )
    fields: dict[str, str] = {}
    if email := _EMAIL.search(last):
        fields["email"] = email.group(0)
    if money := _MONEY.search(last):
        fields["budget"] = money.group(0)
    qualified = bool(fields.get("budget")) and bool(_BUY_WORDS.search(last))
    if qualified:
        reply = (
            "Great, that works for us! I've noted your details; someone will send you the next steps shortly."
        )
    elif _BUY_WORDS.search(last):
        reply = "Happy to help with that! What budget do you have in mind, and when would you like to start?"
    else:
        reply = "Thanks for reaching out! What are you looking for, and what budget do you have in mind?"
    return json.dumps(
        {
            "reply": reply,
            "qualified": qualified,
            "lead_fields": fields,
            "handoff": False,
            "handoff_reason": None,
        }
    )


# --- The client ---------------------------------------------------------------------------------------

_client_lock = threading.Lock()
_clients: dict[tuple[str, str | None], openai.OpenAI] = {}


def _client() -> openai.OpenAI:
    key = (settings.OPENAI_API_KEY, settings.OPENAI_BASE_URL)
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            # Retries are ours (below) so they can respect the turn's deadline; the SDK makes one attempt.
            client = openai.OpenAI(
                api_key=settings.OPENAI_API_KEY,
                base_url=settings.OPENAI_BASE_URL,
                timeout=settings.OPENAI_TIMEOUT_SECONDS,
                max_retries=0,
            )
            _clients[key] = client
        return client


def llm_complete(*, messages: list[dict[str, str]], deadline: float | None = None) -> LlmResult:
    """One model turn. `deadline` is a time.monotonic() instant nothing may run past.

    Each attempt's timeout is the smaller of OPENAI_TIMEOUT_SECONDS and the time left; up to
    OPENAI_MAX_RETRIES further attempts follow retryable errors, with backoff, while time is left.
    """
    started = time.monotonic()
    if not settings.OPENAI_API_KEY:
        parsed = llm_output_parse(content=_offline_answer(messages=messages))
        return LlmResult(model=OFFLINE_MODEL, latency_ms=int((time.monotonic() - started) * 1000), **parsed)
    content, completion, attempt = _chat_completion(messages=messages, deadline=deadline, temperature=0.4)
    parsed = llm_output_parse(content=content)
    usage = getattr(completion, "usage", None)
    return LlmResult(
        model=(getattr(completion, "model", None) or settings.OPENAI_MODEL)[:100],
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        latency_ms=int((time.monotonic() - started) * 1000),
        attempts=attempt,
        **parsed,
    )


def _chat_completion(
    *, messages: list[dict[str, str]], deadline: float | None, temperature: float
) -> tuple[str | None, ChatCompletion, int]:
    """(content, completion, attempt) of one JSON-mode chat completion, with llm_complete's retry rules."""
    attempts = 1 + max(0, settings.OPENAI_MAX_RETRIES)
    last_error: LlmError | None = None
    for attempt in range(1, attempts + 1):
        timeout = settings.OPENAI_TIMEOUT_SECONDS
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0.05:
                raise last_error or LlmError(
                    "the reply deadline passed before the model answered", kind="timeout"
                )
        try:
            # The SDK's typed `chat.completions.create` runs a recursive TypedDict transform over the
            # params that costs ~15 ms of CPU for a 20-message transcript; our body is already plain JSON,
            # so it goes through the same client (auth, base URL, errors, typed result) via `post`.
            completion = _client().post(
                "/chat/completions",
                body={
                    "model": settings.OPENAI_MODEL,
                    "messages": messages,
                    "response_format": {"type": "json_object"},
                    "temperature": temperature,
                },
                cast_to=ChatCompletion,
                options={"timeout": timeout},
            )
        except openai.APITimeoutError as exc:
            last_error = LlmError(f"model timed out after {timeout:.1f}s", kind="timeout")
            last_error.__cause__ = exc
        except RETRYABLE as exc:
            last_error = LlmError(f"{exc.__class__.__name__}: {str(exc)[:300]}")
            last_error.__cause__ = exc
        except (openai.OpenAIError, ValueError) as exc:
            # 4xx, or a body that is not a chat completion: another attempt would fail the same way.
            raise LlmError(f"{exc.__class__.__name__}: {str(exc)[:300]}") from exc
        else:
            try:
                content = completion.choices[0].message.content
            except (AttributeError, IndexError, TypeError) as exc:
                raise LlmError("the response has no choices", kind="invalid_output") from exc
            return content, completion, attempt
        if attempt < attempts:
            pause = min(0.5 * 2 ** (attempt - 1), 4.0)
            if deadline is not None and time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)
    assert last_error is not None
    raise last_error


# --- The judge (prompt evaluation) ------------------------------------------------------------------------


@dataclass(frozen=True)
class JudgeVerdict:
    passed: bool
    reason: str
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def llm_judge_parse(*, content: str | None) -> tuple[bool, str]:
    """A judge's answer must be a JSON object {"pass": bool, "reason": str}; raises LlmError otherwise."""
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LlmError("the judge did not answer with JSON", kind="invalid_output") from exc
    if not isinstance(data, dict) or not isinstance(data.get("pass"), bool):
        raise LlmError('the judge\'s answer has no boolean "pass"', kind="invalid_output")
    reason = data.get("reason")
    return data["pass"], (reason.strip()[:MAX_REASON_CHARS] if isinstance(reason, str) else "")


def llm_judge(*, messages: list[dict[str, str]]) -> JudgeVerdict:
    """One judge call: the model grades a reply and answers {"pass": bool, "reason": str}.

    Offline (no OPENAI_API_KEY) the judge abstains with a pass, so only the deterministic checks decide.
    """
    if not settings.OPENAI_API_KEY:
        return JudgeVerdict(
            passed=True,
            reason="No model configured: only the deterministic checks judged this reply.",
            model=OFFLINE_MODEL,
        )
    content, completion, _ = _chat_completion(messages=messages, deadline=None, temperature=0.0)
    passed, reason = llm_judge_parse(content=content)
    usage = getattr(completion, "usage", None)
    return JudgeVerdict(
        passed=passed,
        reason=reason,
        model=(getattr(completion, "model", None) or settings.OPENAI_MODEL)[:100],
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
    )
