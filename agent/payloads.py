"""Turn whatever ManyChat posted into one normalised inbound message.

ManyChat has no fixed webhook body: the bot builder writes a flat template, or sends the Full Contact
Data object at the top level or nested under a key (as an object, or as a JSON string when the builder
quoted the variable). Ids arrive as numbers or strings, `null` is common and unknown keys appear; see
shared/reference/manychat.md and manychat-conformance.md (P1-P3, R2-R3).
"""

import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from config.parsers import JsonBodyError, json_parse
from leads.models import Channel

logger = logging.getLogger(__name__)

# Where a body may nest the contact object.
CONTACT_KEYS = ("data", "contact", "user", "subscriber")
TEXT_KEYS = ("text", "last_input_text", "message_text", "message")
MESSAGE_ID_KEYS = ("message_id", "mid", "event_id")
ATTACHMENT_KEYS = (
    "attachment_url",
    "attachment",
    "media_url",
    "file_url",
    "image_url",
    "audio_url",
    "voice_url",
)
CHANNEL_ALIASES = {
    "instagram": Channel.INSTAGRAM,
    "ig": Channel.INSTAGRAM,
    "facebook": Channel.FACEBOOK,
    "messenger": Channel.FACEBOOK,
    "fb": Channel.FACEBOOK,
    "whatsapp": Channel.WHATSAPP,
    "wa": Channel.WHATSAPP,
    "telegram": Channel.TELEGRAM,
    "tg": Channel.TELEGRAM,
    "tiktok": Channel.TIKTOK,
    "tt": Channel.TIKTOK,
    "sms": Channel.SMS,
    "email": Channel.EMAIL,
    "mail": Channel.EMAIL,
}
# A ManyChat variable the builder mistyped (or ManyChat could not fill) arrives as its literal text.
PLACEHOLDER = re.compile(r"\{\{[^{}]*\}\}")
# ManyChat contact ids are numeric in every source (manychat-conformance.md, P1).
SUBSCRIBER_ID = re.compile(r"[0-9]{1,32}")
MAX_TEXT_CHARS = 20_000
MAX_URL_CHARS = 2000
MAX_TOKEN_CHARS = 128
MAX_FIELD_CHARS = {
    "first_name": 255,
    "last_name": 255,
    "username": 255,
    "phone": 64,
    "email": 254,
    "live_chat_url": 500,
    "timezone": 64,
}


class AttachmentKind(StrEnum):
    NONE = ""
    AUDIO = "audio"
    IMAGE = "image"
    VIDEO = "video"
    FILE = "file"


_EXTENSIONS = {
    AttachmentKind.AUDIO: ("ogg", "oga", "opus", "mp3", "m4a", "aac", "wav", "amr", "weba"),
    AttachmentKind.IMAGE: ("jpg", "jpeg", "png", "gif", "webp", "heic"),
    AttachmentKind.VIDEO: ("mp4", "mov", "webm", "3gp", "avi"),
    AttachmentKind.FILE: ("pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "txt", "csv", "zip"),
}
_KIND_ALIASES = {
    "audio": AttachmentKind.AUDIO,
    "voice": AttachmentKind.AUDIO,
    "image": AttachmentKind.IMAGE,
    "sticker": AttachmentKind.IMAGE,
    "photo": AttachmentKind.IMAGE,
    "video": AttachmentKind.VIDEO,
    "file": AttachmentKind.FILE,
    "document": AttachmentKind.FILE,
}
# Hosts that serve what leads send (ManyChat's CDN, Meta's, WhatsApp's, Telegram's).
_MEDIA_HOSTS = ("manychat", "fbcdn", "fbsbx", "cdninstagram", "lookaside", "whatsapp", "telegram")


class PayloadError(ValueError):
    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class InboundMessage:
    subscriber_id: str
    text: str
    channel: str = Channel.OTHER
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    phone: str = ""
    email: str = ""
    message_id: str = ""
    custom_fields: dict[str, Any] = field(default_factory=dict)
    live_chat_url: str = ""
    timezone: str = ""  # the contact's timezone ("UTC-07" or a zone name): quiet hours for follow-ups
    attachment_url: str = ""
    attachment_kind: AttachmentKind = AttachmentKind.NONE
    # The per-contact token our flow sends back (agent/contact_token.py); never stored as sent.
    contact_token: str = ""

    def profile(self) -> dict[str, str]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "phone": self.phone,
            "email": self.email,
            "live_chat_url": self.live_chat_url,
            "timezone": self.timezone,
        }


_UTC_OFFSET = re.compile(r"UTC[+-]\d{1,2}(?::?\d{2})?")
_ZONE_NAME = re.compile(r"[A-Za-z]+(?:/[A-Za-z0-9_+-]+){1,2}")


def _timezone_name(value: str) -> str:
    """ManyChat's contact timezone ("UTC-07", "UTC+05:30") or a zone name ("Europe/Rome"); else ''."""
    value = value.strip()
    return value if _UTC_OFFSET.fullmatch(value) or _ZONE_NAME.fullmatch(value) else ""


def _scalar(value: Any) -> str:
    """A string for ids and names: numbers become their digits, null and containers become ''."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip()


def _filled(value: Any) -> str:
    """_scalar, with a ManyChat variable left unfilled ('{{first_name}}') read as no value."""
    text = _scalar(value)
    return "" if PLACEHOLDER.fullmatch(text) else text


def _first(sources: list[dict[str, Any]], *keys: str) -> str:
    for source in sources:
        for key in keys:
            value = _filled(source.get(key))
            if value:
                return value
    return ""


def _subscriber_id(sources: list[dict[str, Any]]) -> tuple[str, str]:
    """(the id, the key it came from). An explicit subscriber id anywhere, then a nested contact's id,
    then a top-level contact's id, then Full Contact Data's "user:<id>" key."""
    for group, keys in (
        (sources, ("subscriber_id", "contact_id", "user_id")),
        (sources[1:], ("id",)),
        (sources[:1], ("id",)),
    ):
        for source in group:
            for key in keys:
                value = _scalar(source.get(key))
                if value:
                    return value, key
    for source in sources:
        key = _scalar(source.get("key"))
        if key.startswith("user:"):
            return key.removeprefix("user:").strip(), "key"
    return "", ""


def _channel(sources: list[dict[str, Any]], *, subscriber_id: str) -> str:
    explicit = _first(sources, "channel", "platform", "source").lower()
    if explicit in CHANNEL_ALIASES:
        return CHANNEL_ALIASES[explicit]
    if explicit and explicit != "manychat":
        logger.warning(
            "payload: unknown channel %r for subscriber %s; inferring it", explicit[:40], subscriber_id
        )
    # No explicit channel: the contact's channel-specific ids say where it came from. Full Contact Data
    # has no "current channel" field, so a contact known on two channels is ambiguous (R3).
    found: list[str] = []
    for source in sources:
        if _filled(source.get("ig_id")) or _filled(source.get("ig_username")):
            found.append(Channel.INSTAGRAM)
        if _filled(source.get("whatsapp_phone")) or source.get("optin_whatsapp") is True:
            found.append(Channel.WHATSAPP)
        if _filled(source.get("tg_id")) or _filled(source.get("telegram_id")):
            found.append(Channel.TELEGRAM)
        if _filled(source.get("tt_user_id")) or _filled(source.get("tt_username")):
            found.append(Channel.TIKTOK)
    channels = list(dict.fromkeys(found))
    if len(channels) > 1:
        logger.warning(
            "payload: subscriber %s is known on %s and the body names no channel; answering as %s. "
            'Add a "channel" literal to each flow\'s body (README, ManyChat step by step).',
            subscriber_id,
            "/".join(channels),
            channels[0],
        )
    return channels[0] if channels else Channel.OTHER


def _custom_fields(sources: list[dict[str, Any]]) -> dict[str, Any]:
    for source in sources:
        raw = source.get("custom_fields")
        if isinstance(raw, dict):
            return {str(k): v for k, v in raw.items() if not isinstance(v, (dict, list))}
        if isinstance(raw, list):  # getInfo shape: [{id, name, type, value}]
            return {
                str(item["name"]): item.get("value")
                for item in raw
                if isinstance(item, dict)
                and item.get("name")
                and not isinstance(item.get("value"), (dict, list))
            }
    return {}


def _url(value: str) -> str:
    parts = urlsplit(value) if value and len(value) <= MAX_URL_CHARS and " " not in value else None
    return value if parts is not None and parts.scheme in ("http", "https") and parts.netloc else ""


def _kind_of(url: str, declared: str) -> AttachmentKind:
    if declared.lower() in _KIND_ALIASES:
        return _KIND_ALIASES[declared.lower()]
    extension = urlsplit(url).path.rsplit(".", 1)[-1].lower() if "." in urlsplit(url).path else ""
    for kind, extensions in _EXTENSIONS.items():
        if extension in extensions:
            return kind
    return AttachmentKind.FILE


def _looks_like_media(url: str) -> bool:
    parts = urlsplit(url)
    extension = parts.path.rsplit(".", 1)[-1].lower() if "." in parts.path else ""
    known = any(extension in extensions for extensions in _EXTENSIONS.values())
    return known or any(host in parts.netloc.lower() for host in _MEDIA_HOSTS)


def _decode_nested(body: dict[str, Any]) -> dict[str, Any]:
    """Full Contact Data in quotes arrives as a JSON string under its key (P3): read it as an object."""
    decoded = dict(body)
    for key in CONTACT_KEYS:
        value = body.get(key)
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                nested = json_parse(raw=value)  # the same nesting limit and cleaning as the body
            except JsonBodyError as exc:
                raise PayloadError(key, f"looks like a JSON object but is not valid JSON ({exc})") from exc
            if isinstance(nested, dict):
                decoded[key] = nested
    return decoded


def payload_parse(*, raw: bytes) -> InboundMessage:
    """Parse a webhook body; raises PayloadError naming the problem."""
    try:
        body = json_parse(raw=raw)  # nesting limit, no NUL, no lone surrogates (config.parsers)
    except JsonBodyError as exc:
        raise PayloadError("body", exc.message) from exc
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object")
    body = _decode_nested(body)

    # The flat fields the builder wrote win over the nested contact object they may sit beside.
    sources = [body] + [body[key] for key in CONTACT_KEYS if isinstance(body.get(key), dict)]

    subscriber_id, id_key = _subscriber_id(sources)
    if not subscriber_id:
        raise PayloadError("subscriber_id", "is required (subscriber_id, or a contact object with id)")
    if PLACEHOLDER.search(subscriber_id):
        # One mistyped variable would make every lead the same subscriber (P1): refuse, store nothing.
        raise PayloadError(
            id_key if id_key != "key" else "subscriber_id",
            f"is the unfilled ManyChat variable {subscriber_id[:64]!r}: insert Contact Id with the "
            "variable picker ({{user_id}})",
        )
    if not SUBSCRIBER_ID.fullmatch(subscriber_id):
        raise PayloadError(
            id_key if id_key != "key" else "subscriber_id",
            "must be a ManyChat contact id (digits only, at most 32)",
        )

    text = ""
    for source in sources:
        for key in TEXT_KEYS:
            value = source.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
                text = str(value).replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
                break
        if text:
            break
    if PLACEHOLDER.fullmatch(text):
        raise PayloadError(
            "text",
            f"is the unfilled ManyChat variable {text[:64]!r}: insert Last Text Input with the picker",
        )

    attachment_url = ""
    for key in ATTACHMENT_KEYS:
        attachment_url = _url(_first(sources, key))
        if attachment_url:
            break
    if not attachment_url and _url(text) and _looks_like_media(text):
        # ManyChat puts a voice note, image or file the lead sent into Last Text Input as its URL.
        attachment_url, text = text, ""
    if not text and not attachment_url:
        raise PayloadError(
            "text",
            "is required (text or last_input_text) and must not be empty, unless an attachment_url is sent",
        )
    attachment_kind = (
        _kind_of(attachment_url, _first(sources, "attachment_type", "media_type"))
        if attachment_url
        else AttachmentKind.NONE
    )

    custom_fields = _custom_fields(sources)
    token_field = getattr(settings, "MANYCHAT_CONTACT_TOKEN_FIELD", "")
    contact_token = _first(sources[:1], "contact_token") or _filled(custom_fields.get(token_field, ""))
    custom_fields.pop(token_field, None)  # a secret: never stored with the lead nor shown to the model

    profile = {
        "first_name": _first(sources, "first_name"),
        "last_name": _first(sources, "last_name"),
        "username": _first(sources, "username", "ig_username", "tt_username", "tg_username"),
        "phone": _first(sources, "phone", "whatsapp_phone", "optin_phone"),
        "email": _first(sources, "email", "optin_email"),
        "live_chat_url": _url(_first(sources, "live_chat_url")),
        "timezone": _timezone_name(_first(sources, "timezone")),
    }
    if not profile["first_name"] and not profile["last_name"]:
        full = _first(sources, "name")
        first, _, last = full.partition(" ")
        profile["first_name"], profile["last_name"] = first, last
    profile = {key: value[: MAX_FIELD_CHARS[key]] for key, value in profile.items()}
    if len(profile["live_chat_url"]) == MAX_FIELD_CHARS["live_chat_url"]:
        profile["live_chat_url"] = ""  # a cut URL is a broken link

    return InboundMessage(
        subscriber_id=subscriber_id,
        text=text[:MAX_TEXT_CHARS],
        channel=_channel(sources, subscriber_id=subscriber_id),
        message_id=_first(sources[:1], *MESSAGE_ID_KEYS)[:100],
        custom_fields=custom_fields,
        attachment_url=attachment_url,
        attachment_kind=attachment_kind,
        contact_token=contact_token[:MAX_TOKEN_CHARS],
        **profile,
    )
