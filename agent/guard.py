"""The output filter: what the model says is checked before it reaches a lead.

A lead can ask the model for its instructions or for secrets, and a model may obey. The reply is refused
(replaced by AGENT_FALLBACK_TEXT, and the turn's decisions dropped) when it contains

* the value of any secret setting (API keys, tokens, webhook secrets, SECRET_KEY, connection URLs), or
* a verbatim span of the system prompt: CONFIDENTIAL_SPAN_WORDS words of a confidential section (from a
  line containing "CONFIDENTIAL" to the next blank line), PROMPT_SPAN_WORDS words of anything else in it
  (the prompt, our output contract).

Words are compared case-insensitively with punctuation and spacing ignored, so reformatting does not hide
a copy. Status and ManyChat actions never come from model text (agent.llm, agent.manychat); this filter
only guards the reply text.
"""

import logging
import re
from dataclasses import replace

from django.conf import settings

from agent import llm

logger = logging.getLogger(__name__)

CONFIDENTIAL_SPAN_WORDS = 6
PROMPT_SPAN_WORDS = 12
MIN_SECRET_CHARS = 8
SECRET_SETTINGS = (
    "SECRET_KEY",
    "OPENAI_API_KEY",
    "MANYCHAT_API_TOKEN",
    "MANYCHAT_WEBHOOK_SECRET",
    "MANYCHAT_WEBHOOK_SECRET_PREVIOUS",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
)
_WORD = re.compile(r"[\w']+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _spans(words: list[str], size: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def _confidential_sections(prompt: str) -> list[str]:
    sections, current, inside = [], [], False
    for line in prompt.splitlines():
        if "confidential" in line.lower():
            inside = True
        elif inside and not line.strip():
            sections.append("\n".join(current))
            current, inside = [], False
        if inside:
            current.append(line)
    if current:
        sections.append("\n".join(current))
    return sections


def _secret_values() -> list[str]:
    values = [str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS]
    database = settings.DATABASES.get("default", {})
    values += [str(database.get("PASSWORD") or "")]
    return [value for value in values if len(value) >= MIN_SECRET_CHARS]


def reply_leak(*, reply: str, prompt: str) -> str | None:
    """Why the reply must not be sent ('secret', 'confidential', 'prompt'), or None when it is fine."""
    lowered = reply.lower()
    if any(secret.lower() in lowered for secret in _secret_values()):
        return "secret"
    reply_words = _words(reply)
    for section in _confidential_sections(prompt):
        if _spans(reply_words, CONFIDENTIAL_SPAN_WORDS) & _spans(_words(section), CONFIDENTIAL_SPAN_WORDS):
            return "confidential"
    reply_spans = _spans(reply_words, PROMPT_SPAN_WORDS)
    for source in (prompt, llm.OUTPUT_INSTRUCTIONS):
        if reply_spans & _spans(_words(source), PROMPT_SPAN_WORDS):
            return "prompt"
    return None


def result_guard(*, result: llm.LlmResult, prompt: str) -> llm.LlmResult:
    """The result unchanged, or, when its reply leaks, the fallback line with the turn's decisions dropped."""
    reason = reply_leak(reply=result.reply, prompt=prompt)
    if reason is None:
        return result
    logger.warning("agent: refused a reply that leaked %s", reason)
    return replace(
        result,
        reply=settings.AGENT_FALLBACK_TEXT,
        qualified=False,
        lead_fields={},
        handoff=False,
        handoff_reason="",
    )
