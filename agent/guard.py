"""The output filter: what the model says is checked before it reaches a lead or our database.

A lead can ask the model for its instructions or for secrets, and a model may obey, in plain text or in
disguise. The answer is refused (the reply replaced by AGENT_FALLBACK_TEXT and every decision dropped) when
its reply, its `handoff_reason` or any key or value of its `lead_fields` (stored on the lead, so a leak
there is a leak too) contains

* the value of any secret setting (API keys, tokens, webhook secrets, SECRET_KEY, connection URLs), or
* a span of the system prompt: CONFIDENTIAL_SPAN_WORDS words of a confidential section (from a line
  containing "CONFIDENTIAL" to the next blank line), PROMPT_SPAN_WORDS words of anything else in it (the
  prompt, our output contract).

Before matching, the text is normalised so that disguises do not hide a copy:

* Unicode compatibility forms and accents folded, case ignored (NFKD, casefold);
* words are runs of letters and digits: `_`, `-`, `.`, `~` and every other separator split words;
* filler: words the source never uses are dropped, and up to MAX_FILLER_GAP source words between two
  copied words are skipped ("you ~ zz are a zz sales agent" still matches "you are a sales agent");
* spacing: the letters and digits alone are compared too ("Y o u a r e" is "youare"), forwards and
  reversed;
* encodings: base64 (standard and URL-safe) and hex runs are decoded and checked the same way.

What it cannot see: a paraphrase, a translation, or a cipher other than these. Status and ManyChat actions
never come from model text (agent.contract, agent.manychat), so a leak can only be words.
"""

import base64
import binascii
import logging
import re
import unicodedata
from dataclasses import replace
from functools import lru_cache
from typing import Any

from django.conf import settings

from agent import llm
from config.parsers import text_clean

logger = logging.getLogger(__name__)

CONFIDENTIAL_SPAN_WORDS = 6
PROMPT_SPAN_WORDS = 12
# Letters-only windows (spaced-out or run-together copies): about as much text as the word spans.
CONFIDENTIAL_SPAN_CHARS = 30
PROMPT_SPAN_CHARS = 60
MAX_FILLER_GAP = 2
MIN_SECRET_CHARS = 8
MIN_ENCODED_CHARS = 16
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
_WORD = re.compile(r"[^\W_]+")
_BASE64 = re.compile(rf"[A-Za-z0-9+/_-]{{{MIN_ENCODED_CHARS},}}={{0,2}}")
_HEX = re.compile(rf"(?:[0-9a-fA-F]{{2}}){{{MIN_ENCODED_CHARS // 2},}}")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def _letters(text: str) -> str:
    return "".join(_words(text))


class _Source:
    """One text a reply must not copy, indexed for the checks below."""

    def __init__(self, text: str, *, span_words: int, span_chars: int):
        self.words = _words(text)
        self.span_words = span_words
        self.span_chars = span_chars
        self.vocabulary = frozenset(self.words)
        self.positions: dict[str, list[int]] = {}
        for index, word in enumerate(self.words):
            self.positions.setdefault(word, []).append(index)
        letters = "".join(self.words)
        self.windows = frozenset(letters[i : i + span_chars] for i in range(len(letters) - span_chars + 1))

    def copied_by(self, words: list[str]) -> bool:
        return self._chain(words) or self._letters(words)

    def _chain(self, words: list[str]) -> bool:
        """span_words consecutive source words, in order, with at most MAX_FILLER_GAP others between each."""
        kept = [word for word in words if word in self.vocabulary]
        if len(self.words) < self.span_words or len(kept) < self.span_words:
            return False
        chains: dict[tuple[int, int], int] = {}  # (reply index, source index) -> chain length ending there
        for i, word in enumerate(kept):
            for j in self.positions[word]:
                best = 1
                for back in range(1, MAX_FILLER_GAP + 2):
                    previous = chains.get((i - back, j - 1))
                    if previous is not None and previous + 1 > best:
                        best = previous + 1
                if best >= self.span_words:
                    return True
                chains[(i, j)] = best
        return False

    def _letters(self, words: list[str]) -> bool:
        letters = "".join(words)
        size = self.span_chars
        if not self.windows or len(letters) < size:
            return False
        for text in (letters, letters[::-1]):
            if any(text[i : i + size] in self.windows for i in range(len(text) - size + 1)):
                return True
        return False


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


@lru_cache(maxsize=16)
def _sources(prompt: str) -> tuple[tuple[str, _Source], ...]:
    sources = [
        (
            "confidential",
            _Source(section, span_words=CONFIDENTIAL_SPAN_WORDS, span_chars=CONFIDENTIAL_SPAN_CHARS),
        )
        for section in _confidential_sections(prompt)
    ]
    sources += [
        ("prompt", _Source(text, span_words=PROMPT_SPAN_WORDS, span_chars=PROMPT_SPAN_CHARS))
        for text in (prompt, llm.OUTPUT_INSTRUCTIONS)
    ]
    return tuple(sources)


def _secret_values() -> list[str]:
    values = [str(getattr(settings, name, "") or "") for name in SECRET_SETTINGS]
    database = settings.DATABASES.get("default", {})
    values += [str(database.get("PASSWORD") or "")]
    return [value for value in values if len(value) >= MIN_SECRET_CHARS]


def _decoded(text: str) -> list[str]:
    """Texts hidden in the reply as base64 or hex (each run on its own, and all runs joined)."""
    runs = [match.group() for match in _BASE64.finditer(text)]
    if len(runs) > 1:
        runs.append("".join(runs))
    found = []
    for run in runs:
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                raw = decode(run.rstrip("=") + "=" * (-len(run.rstrip("=")) % 4))
            except (binascii.Error, ValueError):
                continue
            decoded = raw.decode("utf-8", "ignore")
            if decoded and sum(ch.isprintable() for ch in decoded) >= 0.9 * len(decoded):
                found.append(decoded)
    for match in _HEX.finditer(text):
        found.append(bytes.fromhex(match.group()).decode("utf-8", "ignore"))
    return found


def _leak(text: str, prompt: str, secrets: list[str]) -> str | None:
    folded = _fold(text)
    letters = _letters(text)
    for secret in secrets:
        secret_letters = _letters(secret)
        if secret.casefold() in folded:
            return "secret"
        if len(secret_letters) >= MIN_SECRET_CHARS and (
            secret_letters in letters or secret_letters in letters[::-1]
        ):
            return "secret"
    words = _words(text)
    for reason, source in _sources(prompt):
        if source.copied_by(words):
            return reason
    return None


def reply_leak(*, reply: str, prompt: str) -> str | None:
    """Why the text must not be sent ('secret', 'confidential', 'prompt'), or None when it is fine."""
    secrets = _secret_values()
    for text in (reply, *_decoded(reply)):
        reason = _leak(text, prompt, secrets)
        if reason is not None:
            return reason
    return None


def decision_texts(*, decision: Any) -> list[str]:
    """Every text of the model's answer that is sent or stored: reply, handoff reason, lead fields."""
    texts = [str(decision.reply or ""), str(getattr(decision, "handoff_reason", "") or "")]
    for key, value in (getattr(decision, "lead_fields", None) or {}).items():
        texts += [str(key), str(value)]
    return [text for text in texts if text]


def decision_clean(*, decision: Any) -> Any:
    """The answer without what PostgreSQL cannot store (NUL, lone surrogates) in any of its texts (D10)."""
    fields = getattr(decision, "lead_fields", None) or {}
    cleaned = {
        "reply": text_clean(str(decision.reply or "")),
        "handoff_reason": text_clean(str(getattr(decision, "handoff_reason", "") or "")),
        "lead_fields": {
            text_clean(str(key)): text_clean(value) if isinstance(value, str) else value
            for key, value in fields.items()
        },
    }
    changed = {name: value for name, value in cleaned.items() if value != getattr(decision, name, value)}
    return decision.model_copy(update=changed) if changed else decision


def result_guard(*, result: llm.LlmResult, prompt: str) -> llm.LlmResult:
    """The result (cleaned of NUL and lone surrogates), or, when anything it says leaks, the fallback line
    and no decisions."""
    decision = decision_clean(decision=result.decision)
    if decision is not result.decision:
        result = replace(result, decision=decision)
    texts = decision_texts(decision=result.decision)
    # Each text on its own, and all of them together (a copy split between the reply and a field).
    for text in (*texts, "\n".join(texts)):
        reason = reply_leak(reply=text, prompt=prompt)
        if reason is not None:
            logger.warning("agent: refused a model answer that leaked %s", reason)
            return replace(result, decision=result.decision.refused(fallback=settings.AGENT_FALLBACK_TEXT))
    return result
