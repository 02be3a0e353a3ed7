"""Turn whatever ManyChat posted into one normalised inbound message.

ManyChat has no fixed webhook body: the bot builder writes a flat template, or sends the Full Contact
Data object at the top level or nested under a key. Ids arrive as numbers or strings, `null` is common
and unknown keys appear; see shared/reference/manychat.md.
"""

import json
from dataclasses import dataclass, field
from typing import Any

from leads.models import Channel

# Where a body may nest the contact object.
CONTACT_KEYS = ("data", "contact", "user", "subscriber")
TEXT_KEYS = ("text", "last_input_text", "message_text", "message")
MESSAGE_ID_KEYS = ("message_id", "mid", "event_id")
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
}
MAX_TEXT_CHARS = 20_000
MAX_FIELD_CHARS = {"first_name": 255, "last_name": 255, "username": 255, "phone": 64, "email": 254}


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

    def profile(self) -> dict[str, str]:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "username": self.username,
            "phone": self.phone,
            "email": self.email,
        }


def _scalar(value: Any) -> str:
    """A string for ids and names: numbers become their digits, null and containers become ''."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip()


def _first(sources: list[dict[str, Any]], *keys: str) -> str:
    for source in sources:
        for key in keys:
            value = _scalar(source.get(key))
            if value:
                return value
    return ""


def _subscriber_id(sources: list[dict[str, Any]]) -> str:
    # An explicit subscriber id anywhere, then a nested contact's id, then a top-level contact's id.
    value = _first(sources, "subscriber_id", "contact_id", "user_id") or _first(sources[1:], "id")
    value = value or _first(sources[:1], "id")
    if value:
        return value
    key = _first(sources, "key")  # Full Contact Data carries "user:<id>"
    if key.startswith("user:"):
        return key.removeprefix("user:").strip()
    return ""


def _channel(sources: list[dict[str, Any]]) -> str:
    explicit = _first(sources, "channel", "platform", "source").lower()
    if explicit in CHANNEL_ALIASES:
        return CHANNEL_ALIASES[explicit]
    # No explicit channel: the contact's channel-specific ids say where it came from.
    for source in sources:
        if _scalar(source.get("ig_id")) or _scalar(source.get("ig_username")):
            return Channel.INSTAGRAM
        if _scalar(source.get("whatsapp_phone")) or source.get("optin_whatsapp") is True:
            return Channel.WHATSAPP
        if _scalar(source.get("tg_id")) or _scalar(source.get("telegram_id")):
            return Channel.TELEGRAM
    return Channel.OTHER


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


def payload_parse(*, raw: bytes) -> InboundMessage:
    """Parse a webhook body; raises PayloadError naming the problem."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError("body", f"is not valid JSON ({exc.__class__.__name__})") from exc
    if not isinstance(body, dict):
        raise PayloadError("body", "must be a JSON object")

    # The flat fields the builder wrote win over the nested contact object they may sit beside.
    sources = [body] + [body[key] for key in CONTACT_KEYS if isinstance(body.get(key), dict)]

    subscriber_id = _subscriber_id(sources)
    if not subscriber_id:
        raise PayloadError("subscriber_id", "is required (subscriber_id, or a contact object with id)")
    if len(subscriber_id) > 64:
        raise PayloadError("subscriber_id", "is longer than 64 characters")

    text = ""
    for source in sources:
        for key in TEXT_KEYS:
            value = source.get(key)
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
                text = str(value).replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
                break
        if text:
            break
    if not text:
        raise PayloadError("text", "is required (text or last_input_text) and must not be empty")

    profile = {
        "first_name": _first(sources, "first_name"),
        "last_name": _first(sources, "last_name"),
        "username": _first(sources, "username", "ig_username", "tt_username", "tg_username"),
        "phone": _first(sources, "phone", "whatsapp_phone", "optin_phone"),
        "email": _first(sources, "email", "optin_email"),
    }
    if not profile["first_name"] and not profile["last_name"]:
        full = _first(sources, "name")
        first, _, last = full.partition(" ")
        profile["first_name"], profile["last_name"] = first, last
    profile = {key: value[: MAX_FIELD_CHARS[key]] for key, value in profile.items()}

    return InboundMessage(
        subscriber_id=subscriber_id,
        text=text[:MAX_TEXT_CHARS],
        channel=_channel(sources),
        message_id=_first(sources[:1], *MESSAGE_ID_KEYS)[:100],
        custom_fields=_custom_fields(sources),
        **profile,
    )
