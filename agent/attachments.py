"""Voice notes, images, files and stickers: what the turn does with a message that carries an attachment.

A message whose text is empty but that carries an attachment URL is stored with it, never dropped. A voice
note is transcribed when OPENAI_TRANSCRIBE_MODEL is set (in the task, never inside ManyChat's 10 s window):
the transcript becomes the message text the agent reads, the audio URL stays on the message. Without
transcription, or when it fails, AGENT_VOICE_FALLBACK says what happens: "ask_text" answers with
AGENT_VOICE_ASK_TEXT, "handoff" flags the lead for a person. Any other attachment without text reaches the
model as a short note saying what the lead sent.
"""

import logging
from enum import StrEnum

from django.conf import settings
from django.db import transaction

from agent import transcribe
from agent.payloads import AttachmentKind
from leads import services as lead_services
from leads.models import DeliveryStatus, Lead, Message

logger = logging.getLogger(__name__)

_NOTES = {
    AttachmentKind.AUDIO: "(The lead sent a voice message that could not be transcribed.)",
    AttachmentKind.IMAGE: "(The lead sent an image or a sticker, without text.)",
    AttachmentKind.VIDEO: "(The lead sent a video, without text.)",
    AttachmentKind.FILE: "(The lead sent a file, without text.)",
}


class AttachmentStep(StrEnum):
    NONE = "none"  # text to answer: the usual turn
    TRANSCRIBE = "transcribe"  # a voice note to transcribe first (in the task)
    ASK_TEXT = "ask_text"  # a voice note we cannot hear: ask for text
    HANDOFF = "handoff"  # a voice note we cannot hear: a person takes it


def attachment_step(*, message: Message) -> AttachmentStep:
    if message.attachment_kind != AttachmentKind.AUDIO or message.text.strip():
        return AttachmentStep.NONE
    if transcribe.transcription_enabled():
        return AttachmentStep.TRANSCRIBE
    return AttachmentStep.HANDOFF if settings.AGENT_VOICE_FALLBACK == "handoff" else AttachmentStep.ASK_TEXT


def model_text(*, message: Message) -> str:
    """What the model reads for this message: its text, or a note on what it carries."""
    if message.text.strip():
        return message.text
    return _NOTES.get(AttachmentKind(message.attachment_kind or "file"), _NOTES[AttachmentKind.FILE])


def voice_transcribe(*, message: Message) -> AttachmentStep:
    """Transcribe the voice note into the message's text (NONE: go on with the turn), or the fallback."""
    try:
        text = transcribe.transcribe_url(url=message.attachment_url)
    except transcribe.TranscriptionError as exc:
        logger.warning("voice note %s not transcribed: %s", message.pk, exc)
        return (
            AttachmentStep.HANDOFF if settings.AGENT_VOICE_FALLBACK == "handoff" else AttachmentStep.ASK_TEXT
        )
    lead_services.message_record_transcript(message_id=message.pk, text=text)
    message.text = text
    return AttachmentStep.NONE


def voice_fallback(
    *, message: Message, lead: Lead, step: AttachmentStep, delivery_status: str
) -> Message | None:
    """Answer a voice note we cannot hear: the ask-for-text line (returned, or pending for sendContent),
    or a handoff to a person (no reply). The lead's message is marked done either way."""
    with transaction.atomic():
        if step is AttachmentStep.HANDOFF:
            lead_services.message_set_delivery(
                message_id=message.pk,
                status=DeliveryStatus.SKIPPED,
                error="A voice note: handed to a person.",
            )
            lead_services.lead_flag_for_human(
                lead=lead,
                reason="The lead sent a voice message the agent cannot listen to.",
                pause_bot=False,
                verb="agent.needs_human",
            )
            return None
        lead_services.message_set_delivery(
            message_id=message.pk, status=DeliveryStatus.ANSWERED, error="A voice note: asked for text."
        )
        return lead_services.message_record_outbound(
            conversation_id=message.conversation_id,
            text=settings.AGENT_VOICE_ASK_TEXT,
            delivery_status=delivery_status,
            model="voice_fallback",
        )
