"""What the agent writes into ManyChat beyond its replies, and what the account must contain.

ManyChat segments, broadcasts and follow-up flows run on tags and custom fields (manychat-conformance.md
§6): so what the agent learned (qualification data mapped by MANYCHAT_FIELD_MAP, and the lead's stage) is
written into the contact's custom fields through setCustomFields, only into fields that exist in the
account, typed as each field is. The handoff tag comes off when the bot is resumed, so ManyChat-side rules
stop seeing a lead a person handed back. An optional flow (MANYCHAT_QUALIFIED_FLOW_NS) starts when a lead
qualifies: a booking flow with buttons, or a WhatsApp template, which sendContent cannot do.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache

from agent import manychat, manychat_throttle
from leads.models import Lead

logger = logging.getLogger(__name__)

FIELDS_CACHE_SECONDS = 600
MAX_TEXT_VALUE = 1000


@dataclass(frozen=True)
class AccountNeed:
    kind: str  # "tag" or "field"
    name: str
    setting: str
    present: bool
    field_type: str = "text"


@dataclass(frozen=True)
class AccountReport:
    page: dict[str, Any]
    needs: list[AccountNeed]

    @property
    def missing(self) -> list[AccountNeed]:
        return [need for need in self.needs if not need.present]


def _wanted() -> list[tuple[str, str, str, str]]:
    """(kind, name, setting, field type) for every tag and field the settings name."""
    wanted = [
        ("tag", settings.MANYCHAT_QUALIFIED_TAG, "MANYCHAT_QUALIFIED_TAG", ""),
        ("tag", settings.MANYCHAT_HANDOFF_TAG, "MANYCHAT_HANDOFF_TAG", ""),
        ("field", settings.MANYCHAT_STAGE_FIELD, "MANYCHAT_STAGE_FIELD", "text"),
        ("field", settings.MANYCHAT_CONTACT_TOKEN_FIELD, "MANYCHAT_CONTACT_TOKEN_FIELD", "text"),
    ]
    wanted += [
        ("field", field, f"MANYCHAT_FIELD_MAP ({key})", "text, number, date or boolean")
        for key, field in sorted(settings.MANYCHAT_FIELD_MAP.items())
    ]
    seen: set[tuple[str, str]] = set()
    unique = []
    for kind, name, setting, field_type in wanted:
        if name and (kind, name) not in seen:
            seen.add((kind, name))
            unique.append((kind, name, setting, field_type))
    return unique


def account_check() -> AccountReport:
    """Page info, and whether each tag and custom field the settings name exists. Raises ManyChatError."""
    page = manychat.manychat_page_info()
    tags = {str(tag.get("name")) for tag in manychat.manychat_tags()}
    fields = {str(field.get("name")) for field in manychat.manychat_custom_fields()}
    needs = [
        AccountNeed(
            kind=kind,
            name=name,
            setting=setting,
            present=name in (tags if kind == "tag" else fields),
            field_type=field_type,
        )
        for kind, name, setting, field_type in _wanted()
    ]
    return AccountReport(page=page, needs=needs)


def custom_fields_known() -> dict[str, dict[str, Any]]:
    """The account's custom fields by name ({id, type}), cached for FIELDS_CACHE_SECONDS."""
    key = f"{manychat_throttle.page_key(token=settings.MANYCHAT_API_TOKEN)}:fields"
    known = cache.get(key)
    if known is None:
        known = {
            str(field["name"]): {"id": field.get("id"), "type": str(field.get("type") or "text").lower()}
            for field in manychat.manychat_custom_fields()
            if field.get("name")
        }
        cache.set(key, known, FIELDS_CACHE_SECONDS)
    return known


def field_value(*, value: Any, field_type: str) -> Any:
    """`value` typed for a ManyChat field (Number unquoted, Date YYYY-MM-DD, Boolean bare), or None."""
    if value is None or value == "" or isinstance(value, (dict, list)):
        return None
    if field_type == "number":
        if isinstance(value, bool):
            return None
        try:
            number = Decimal(str(value).replace(",", "").strip())
        except InvalidOperation:
            return None
        return int(number) if number == number.to_integral_value() else float(number)
    if field_type == "boolean":
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        return {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(lowered)
    if field_type in ("date", "datetime"):
        if isinstance(value, (date, datetime)):
            return value.isoformat()[:10] if field_type == "date" else value.isoformat()
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed.date().isoformat() if field_type == "date" else parsed.isoformat()
    return str(value)[:MAX_TEXT_VALUE]


def lead_fields_values(*, lead: Lead) -> dict[str, Any]:
    """{ManyChat field name: raw value} for what the agent learned about the lead, per MANYCHAT_FIELD_MAP."""
    learned = {k: v for k, v in (lead.qualification_data or {}).items() if k != "manychat_fields"}
    values = {field: learned.get(key) for key, field in settings.MANYCHAT_FIELD_MAP.items() if key in learned}
    if settings.MANYCHAT_STAGE_FIELD:
        values[settings.MANYCHAT_STAGE_FIELD] = lead.status
    return values


def lead_fields_push(*, lead_id: int) -> list[str]:
    """Write the lead's mapped fields into ManyChat (setCustomFields); returns the field names written.

    Fields that do not exist in the account, or whose value cannot be typed as the field is, are skipped
    and logged (`manage.py manychat_check` lists what to create). Raises ManyChatError.
    """
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is None or not settings.MANYCHAT_API_TOKEN:
        return []
    values = lead_fields_values(lead=lead)
    if not values:
        return []
    known = custom_fields_known()
    fields, written = [], []
    for name, raw in values.items():
        field = known.get(name)
        if field is None:
            logger.warning("manychat: custom field %r does not exist in the account; not written", name)
            continue
        value = field_value(value=raw, field_type=field["type"])
        if value is None:
            logger.info("manychat: %r is not a valid %s for field %r; not written", raw, field["type"], name)
            continue
        fields.append({"field_id": field["id"], "field_value": value})
        written.append(name)
    if fields:
        manychat.manychat_set_fields(subscriber_id=lead.manychat_subscriber_id, fields=fields)
    return written


def lead_handoff_tag_remove(*, lead_id: int) -> bool:
    """Take MANYCHAT_HANDOFF_TAG off the contact (the bot was resumed). Raises ManyChatError."""
    lead = Lead.objects.filter(pk=lead_id).only("id", "manychat_subscriber_id").first()
    tag = settings.MANYCHAT_HANDOFF_TAG
    if lead is None or not tag or not settings.MANYCHAT_API_TOKEN:
        return False
    manychat.manychat_remove_tag(subscriber_id=lead.manychat_subscriber_id, tag_name=tag)
    return True


def lead_qualified_flow_send(*, lead_id: int) -> bool:
    """Start MANYCHAT_QUALIFIED_FLOW_NS for the contact (sendFlow). Raises ManyChatError."""
    lead = Lead.objects.filter(pk=lead_id).only("id", "manychat_subscriber_id").first()
    flow = settings.MANYCHAT_QUALIFIED_FLOW_NS
    if lead is None or not flow or not settings.MANYCHAT_API_TOKEN:
        return False
    manychat.manychat_send_flow(subscriber_id=lead.manychat_subscriber_id, flow_ns=flow)
    return True
