"""Which approved examples the model saw with each agent reply, for a transcript (one query)."""

from typing import Any

from django import template

from training.review.selectors import message_example_uses

register = template.Library()


@register.simple_tag
def example_uses_by_message(messages: Any) -> dict[int, list[Any]]:
    """`{% example_uses_by_message transcript as seen %}`: agent reply id -> its uses, best rank first."""
    ids = [m.pk for m in messages if getattr(m, "role", "") == "agent"]
    return message_example_uses(message_ids=ids) if ids else {}


@register.simple_tag
def example_uses_of(seen: dict[int, list[Any]], message_id: int) -> list[Any]:
    return seen.get(message_id, [])
