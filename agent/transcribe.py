"""Voice notes: what the lead said, through the OpenAI-compatible audio transcription endpoint.

Leads on Instagram and WhatsApp send voice notes all the time; ManyChat hands us the audio's URL (in
Last Text Input, or an attachment field the flow sends). With OPENAI_TRANSCRIBE_MODEL set, the audio is
fetched and sent to POST /audio/transcriptions; the transcript is what the agent reads and the URL stays on
the message. Without it, or when anything fails, the turn falls back as AGENT_VOICE_FALLBACK says.
"""

import logging
from urllib.parse import urlsplit

import httpx
import openai
from django.conf import settings

from agent import llm

logger = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's upload limit for transcriptions
FETCH_TIMEOUT_SECONDS = 10.0
MAX_TRANSCRIPT_CHARS = 4000


class TranscriptionError(Exception):
    pass


def transcription_enabled() -> bool:
    return bool(settings.OPENAI_TRANSCRIBE_MODEL and settings.OPENAI_API_KEY)


def _fetch(*, url: str) -> tuple[str, bytes, str]:
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True) as response:
            if response.status_code != 200:
                raise TranscriptionError(f"the audio URL answered HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_AUDIO_BYTES:
                    raise TranscriptionError(f"the audio is larger than {MAX_AUDIO_BYTES} bytes")
                chunks.append(chunk)
            content_type = response.headers.get("Content-Type", "application/octet-stream").split(";")[0]
    except httpx.HTTPError as exc:
        raise TranscriptionError(f"the audio could not be fetched: {exc.__class__.__name__}") from exc
    name = urlsplit(url).path.rsplit("/", 1)[-1] or "voice.ogg"
    if "." not in name:
        name += ".ogg"  # WhatsApp and Instagram voice notes are Ogg/Opus or M4A; the endpoint wants a name
    return name[:100], b"".join(chunks), content_type


def transcribe_url(*, url: str) -> str:
    """The transcript of the audio at `url`. Raises TranscriptionError (nothing is guessed)."""
    if not transcription_enabled():
        raise TranscriptionError("no transcription model is configured (OPENAI_TRANSCRIBE_MODEL)")
    name, audio, content_type = _fetch(url=url)
    try:
        result = llm._client().audio.transcriptions.create(
            model=settings.OPENAI_TRANSCRIBE_MODEL, file=(name, audio, content_type)
        )
    except openai.OpenAIError as exc:
        raise TranscriptionError(f"the transcription endpoint failed: {exc.__class__.__name__}") from exc
    text = str(getattr(result, "text", "") or "").replace("\x00", "").strip()
    if not text:
        raise TranscriptionError("the transcription was empty")
    return text[:MAX_TRANSCRIPT_CHARS]
