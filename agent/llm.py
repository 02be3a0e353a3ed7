"""The model call: the openai SDK against OPENAI_BASE_URL, a deadline, bounded retries, validated output.

Without OPENAI_API_KEY an offline responder answers deterministically so the demo works with nothing
configured. The model is asked for a JSON object, read through the output contract (agent.contract):
nothing the model writes is ever executed, only the contract's validated fields leave this module.
"""

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

from agent import contract

logger = logging.getLogger(__name__)

OFFLINE_MODEL = "offline-responder"
# Errors worth another attempt: the server may answer next time. A 4xx other than 408/409/429 will not.
RETRYABLE = (
    openai.APIConnectionError,
    openai.APITimeoutError,
    openai.RateLimitError,
    openai.InternalServerError,
)

# Kept as names here for callers that only know the client (the contract owns them).
OUTPUT_INSTRUCTIONS = contract.OUTPUT_INSTRUCTIONS
MAX_REPLY_CHARS = contract.MAX_REPLY_CHARS
MAX_LEAD_FIELDS = contract.MAX_LEAD_FIELDS
MAX_FIELD_VALUE_CHARS = contract.MAX_FIELD_VALUE_CHARS
MAX_REASON_CHARS = contract.MAX_REASON_CHARS


class LlmErrorKind(StrEnum):
    TIMEOUT = "timeout"  # the deadline passed: the turn is deferred, not failed
    ERROR = "error"  # the server or the network failed
    INVALID_OUTPUT = "invalid_output"  # the answer breaks the output contract
    NO_PROMPT = "no_prompt"  # no prompt version is active: the agent never guesses


class LlmError(Exception):
    def __init__(self, message: str, *, kind: LlmErrorKind | str = LlmErrorKind.ERROR):
        super().__init__(message)
        self.kind = LlmErrorKind(kind)


@dataclass(frozen=True)
class LlmResult:
    """A model call's validated answer (the contract) and what it cost."""

    decision: contract.ModelReply
    model: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int = 0
    attempts: int = 1
    # Parameters the model rejected as unsupported on this call: dropped, and the call retried once.
    dropped_params: tuple[str, ...] = ()


# --- Output parsing ------------------------------------------------------------------------------------


def llm_output_parse(*, content: str | None) -> contract.ModelReply:
    """The model's answer read through the output contract; raises LlmError(kind=INVALID_OUTPUT)."""
    try:
        return contract.ModelReply.parse(content)
    except contract.OutputInvalid as exc:
        raise LlmError(str(exc), kind=LlmErrorKind.INVALID_OUTPUT) from exc


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
        return contract.ModelReply(
            reply="Of course — I'm passing you to a member of our team, they'll reply here soon.",
            handoff=True,
            handoff_reason="The lead asked for a person.",
        ).as_json()
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
    return contract.ModelReply(reply=reply, qualified=qualified, lead_fields=fields).as_json()


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


def llm_complete(
    *,
    messages: list[dict[str, str]],
    deadline: float | None = None,
    model: str | None = None,
    params: dict[str, Any] | None = None,
) -> LlmResult:
    """One model turn. `deadline` is a time.monotonic() instant nothing may run past.

    Each attempt's timeout is the smaller of OPENAI_TIMEOUT_SECONDS and the time left; up to
    OPENAI_MAX_RETRIES further attempts follow retryable errors, with backoff, while time is left.
    """
    started = time.monotonic()
    if not settings.OPENAI_API_KEY:
        decision = llm_output_parse(content=_offline_answer(messages=messages))
        return LlmResult(
            decision=decision, model=OFFLINE_MODEL, latency_ms=int((time.monotonic() - started) * 1000)
        )
    dropped: list[str] = []
    # A prompt version names its model and optional parameters (prompts.releases); without them, the
    # configured model at temperature 0.4 as before.
    content, completion, attempt = _chat_completion(
        messages=messages,
        deadline=deadline,
        temperature=None if params is not None else 0.4,
        model=model,
        params=params,
        dropped=dropped,
    )
    decision = llm_output_parse(content=content)
    usage = getattr(completion, "usage", None)
    return LlmResult(
        decision=decision,
        model=(getattr(completion, "model", None) or settings.OPENAI_MODEL)[:100],
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        latency_ms=int((time.monotonic() - started) * 1000),
        attempts=attempt,
        dropped_params=tuple(dropped),
    )


_UNSUPPORTED = re.compile(r"[Uu]nsupported (?:parameter|value)[^']*'([\w.]+)'")


def _unsupported_param(exc: openai.BadRequestError, body: dict[str, Any]) -> str | None:
    """The optional parameter a 400 says the model does not support, if it is one we sent."""
    named = getattr(exc, "param", None)
    if not (isinstance(named, str) and named in body):
        found = _UNSUPPORTED.search(str(getattr(exc, "message", "")) or str(exc))
        named = found.group(1) if found else None
    return named if named in body and named not in ("model", "messages") else None


# Who pays for the model calls made in this context (agent.budget.spend_as sets it for evaluation, rehearsal
# and scoring runs): called with the model and the usage of every completed call. The agent's turn sets
# none: its spend is read from its reply rows.
usage_sink: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("llm_usage_sink", default=None)


def _usage_report(*, completion: ChatCompletion, model: str) -> None:
    sink = usage_sink.get()
    usage = getattr(completion, "usage", None)
    if sink is None or usage is None:
        return
    name = (getattr(completion, "model", None) or model)[:100]
    sink(name, getattr(usage, "prompt_tokens", None) or 0, getattr(usage, "completion_tokens", None) or 0)


def _chat_completion(
    *,
    messages: list[dict[str, str]],
    deadline: float | None,
    temperature: float | None = None,
    model: str | None = None,
    params: dict[str, Any] | None = None,
    dropped: list[str] | None = None,
) -> tuple[str | None, ChatCompletion, int]:
    """(content, completion, attempt) of one JSON-mode chat completion, with llm_complete's retry rules.

    A 400 naming an optional parameter the model does not support (e.g. `temperature` on a reasoning
    model) drops that parameter and retries once; the name is appended to `dropped`."""
    attempts = 1 + max(0, settings.OPENAI_MAX_RETRIES)
    last_error: LlmError | None = None
    body: dict[str, Any] = {
        "model": model or settings.OPENAI_MODEL,
        "messages": messages,
        "response_format": {"type": "json_object"},
        **(params or {}),
    }
    if temperature is not None and "temperature" not in body:
        body["temperature"] = temperature
    rejected_once = False
    attempt = 0
    while attempt < attempts:
        attempt += 1
        timeout = settings.OPENAI_TIMEOUT_SECONDS
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0.05:
                raise last_error or LlmError(
                    "the reply deadline passed before the model answered", kind=LlmErrorKind.TIMEOUT
                )
        try:
            # The SDK's typed `chat.completions.create` runs a recursive TypedDict transform over the
            # params that costs ~15 ms of CPU for a 20-message transcript; our body is already plain JSON,
            # so it goes through the same client (auth, base URL, errors, typed result) via `post`.
            completion = _client().post(
                "/chat/completions", body=dict(body), cast_to=ChatCompletion, options={"timeout": timeout}
            )
        except openai.APITimeoutError as exc:
            last_error = LlmError(f"model timed out after {timeout:.1f}s", kind=LlmErrorKind.TIMEOUT)
            last_error.__cause__ = exc
        except RETRYABLE as exc:
            last_error = LlmError(f"{exc.__class__.__name__}: {str(exc)[:300]}")
            last_error.__cause__ = exc
        except openai.BadRequestError as exc:
            param = _unsupported_param(exc, body)
            if param is None or rejected_once:
                raise LlmError(f"{exc.__class__.__name__}: {str(exc)[:300]}") from exc
            rejected_once = True
            body.pop(param)
            if dropped is not None:
                dropped.append(param)
            logger.warning("model %s rejected %r: retrying without it", body["model"], param)
            attempt -= 1  # the retry without the parameter is not one of the transient-error attempts
            continue
        except (openai.OpenAIError, ValueError) as exc:
            # 4xx, or a body that is not a chat completion: another attempt would fail the same way.
            raise LlmError(f"{exc.__class__.__name__}: {str(exc)[:300]}") from exc
        else:
            try:
                content = completion.choices[0].message.content
            except (AttributeError, IndexError, TypeError) as exc:
                raise LlmError("the response has no choices", kind=LlmErrorKind.INVALID_OUTPUT) from exc
            _usage_report(completion=completion, model=body["model"])
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
    text = contract.unfence(content)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LlmError("the judge did not answer with JSON", kind=LlmErrorKind.INVALID_OUTPUT) from exc
    if not isinstance(data, dict) or not isinstance(data.get("pass"), bool):
        raise LlmError('the judge\'s answer has no boolean "pass"', kind=LlmErrorKind.INVALID_OUTPUT)
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
