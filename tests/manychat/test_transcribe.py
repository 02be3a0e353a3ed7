"""Voice notes through the OpenAI-compatible transcription endpoint (the fake OpenAI, over real HTTP)."""

import pytest

from agent import transcribe


@pytest.fixture
def transcription(settings, fake_openai):
    settings.OPENAI_TRANSCRIBE_MODEL = "whisper-1"
    return fake_openai


def test_a_voice_note_is_fetched_and_transcribed(transcription, fake_manychat):
    text = transcribe.transcribe_url(url=f"{fake_manychat.url}/media/voice.ogg")
    assert text == transcription.transcript
    (request,) = [r for r in transcription.requests if r.path.endswith("/audio/transcriptions")]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert (
        b"whisper-1" in request.body and b"OggS" in request.body and b'filename="voice.ogg"' in request.body
    )


def test_no_model_configured_is_an_error_without_calls(settings, fake_openai, fake_manychat):
    settings.OPENAI_TRANSCRIBE_MODEL = ""
    with pytest.raises(transcribe.TranscriptionError):
        transcribe.transcribe_url(url=f"{fake_manychat.url}/media/voice.ogg")
    assert fake_openai.calls == 0 and fake_manychat.calls == 0


def test_an_endpoint_failure_is_an_error(transcription, fake_manychat):
    transcription.transcript = None
    with pytest.raises(transcribe.TranscriptionError, match="endpoint failed"):
        transcribe.transcribe_url(url=f"{fake_manychat.url}/media/voice.ogg")


def test_an_unreachable_audio_is_an_error(transcription, fake_manychat):
    fake_manychat.set_default(fake_manychat.error(404, "gone"))
    with pytest.raises(transcribe.TranscriptionError, match="HTTP 404"):
        transcribe.transcribe_url(url=f"{fake_manychat.url}/media/voice.ogg")
