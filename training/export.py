"""Approved training examples as OpenAI fine-tuning JSONL, every line validated before it is written.

* ``openai-chat`` (supervised fine-tuning): {"messages": [system, user, assistant]}. The system message is
  the prompt version in force when the example's reply was written (the flagged reply's version), else the
  active version; the user turn is the lead's message; the assistant turn is the good reply, or for a
  correction the expected response. Bad examples are left out (they teach what not to say).
* ``preference`` (direct preference optimisation): for each correction, {"input": {"messages": [system,
  user]}, "preferred_output": [assistant: the correction], "non_preferred_output": [assistant: the original
  reply]}.

A row that breaks the format's rules is reported through ``on_skip`` and never written.
"""

import json
from collections.abc import Callable, Iterator
from typing import Any

from django.db.models import QuerySet

from prompts.selectors import active_prompt_version
from training.models import ExampleStatus, ExampleType, TrainingExample
from training.review.export import (
    CONVERSATIONAL_FORMATS,
    FORMAT_CONVERSATIONAL,
    conversational_lines,
)

FORMAT_CHAT = "openai-chat"
FORMAT_PREFERENCE = "preference"
# Conversational formats for open-weights trainers (training/review/export.py), validated by JSON Schema.
FORMATS = (FORMAT_CHAT, FORMAT_PREFERENCE, *CONVERSATIONAL_FORMATS)
ROLES = ("system", "user", "assistant")

SkipCallback = Callable[[int, list[str]], None]


def _examples(*, fmt: str, filters: Any = None) -> QuerySet[TrainingExample]:
    # Retired examples no longer shape the agent, so they are not exported either.
    queryset = TrainingExample.objects.filter(status=ExampleStatus.APPROVED, retired_at__isnull=True)
    if filters is not None:  # training.review.selectors.ExampleFilters from the library page or the API
        from training.review.selectors import examples_filtered

        queryset = queryset.filter(pk__in=examples_filtered(filters=filters).values("pk"))
    if fmt in (FORMAT_CHAT, FORMAT_CONVERSATIONAL):
        queryset = queryset.exclude(example_type=ExampleType.BAD)
    else:
        queryset = queryset.filter(example_type=ExampleType.CORRECTION)
    return (
        queryset.select_related("message__prompt_version")
        .only(
            "id",
            "example_type",
            "user_message",
            "ai_response",
            "expected_response",
            "message__id",
            "message__prompt_version__id",
            "message__prompt_version__content",
        )
        .order_by("id")
    )


def _prompt_in_force(*, example: TrainingExample, fallback: str) -> str:
    message = example.message  # None without a query when message_id is None
    version = message.prompt_version if message is not None else None
    if version is not None:
        return version.content
    return fallback


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def training_export_row(*, example: TrainingExample, fmt: str, system: str) -> dict[str, Any]:
    """The unvalidated row for one example (a missing system prompt leaves the system message out)."""
    prompt = [_message("system", system)] if system else []
    user = _message("user", example.user_message)
    if fmt == FORMAT_CHAT:
        answer = (
            example.expected_response
            if example.example_type == ExampleType.CORRECTION
            else example.ai_response
        )
        return {"messages": [*prompt, user, _message("assistant", answer)]}
    return {
        "input": {"messages": [*prompt, user]},
        "preferred_output": [_message("assistant", example.expected_response)],
        "non_preferred_output": [_message("assistant", example.ai_response)],
    }


def _messages_errors(messages: Any, *, where: str) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return [f"{where} must be a non-empty list"]
    errors: list[str] = []
    for index, message in enumerate(messages):
        at = f"{where}[{index}]"
        if not isinstance(message, dict):
            errors.append(f"{at} must be an object")
            continue
        if set(message) != {"role", "content"}:
            errors.append(f"{at} must have exactly the keys role and content")
        role = message.get("role")
        if role not in ROLES:
            errors.append(f"{at}.role must be one of {', '.join(ROLES)}")
        elif role == "system" and index != 0:
            errors.append(f"{at}: a system message may only come first")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            errors.append(f"{at}.content must be a non-empty string")
    return errors


def _single_assistant_errors(output: Any, *, where: str) -> list[str]:
    if not isinstance(output, list) or len(output) != 1:
        return [f"{where} must be a list of exactly one message"]
    errors = _messages_errors(output, where=where)
    if isinstance(output[0], dict) and output[0].get("role") != "assistant":
        errors.append(f"{where}[0].role must be assistant")
    return errors


def training_export_validate(*, row: Any, fmt: str) -> list[str]:
    """The rules a line must meet for OpenAI's fine-tuning format `fmt`; [] when it is valid."""
    if not isinstance(row, dict):
        return ["a line must be a JSON object"]
    if fmt == FORMAT_CHAT:
        if set(row) != {"messages"}:
            return ["a chat line must have exactly the key messages"]
        messages = row["messages"]
        errors = _messages_errors(messages, where="messages")
        if errors:
            return errors
        roles = [message["role"] for message in messages]
        if "user" not in roles:
            errors.append("messages need at least one user message")
        if roles[-1] != "assistant":
            errors.append("the last message must be the assistant's")
        if any(a == b and a != "system" for a, b in zip(roles, roles[1:], strict=False)):
            errors.append("user and assistant messages must alternate")
        return errors
    if fmt == FORMAT_PREFERENCE:
        if set(row) != {"input", "preferred_output", "non_preferred_output"}:
            return [
                "a preference line must have exactly the keys input, preferred_output, non_preferred_output"
            ]
        source = row["input"]
        if not isinstance(source, dict) or "messages" not in source:
            return ["input must be an object with messages"]
        errors = _messages_errors(source["messages"], where="input.messages")
        if not errors and source["messages"][-1]["role"] != "user":
            errors.append("input.messages must end with the user's message")
        errors += _single_assistant_errors(row["preferred_output"], where="preferred_output")
        errors += _single_assistant_errors(row["non_preferred_output"], where="non_preferred_output")
        if not errors and row["preferred_output"][0]["content"] == row["non_preferred_output"][0]["content"]:
            errors.append("the preferred and non-preferred outputs must differ")
        return errors
    return [f"unknown format {fmt!r}"]


def training_export_lines(
    *, fmt: str, on_skip: SkipCallback | None = None, filters: Any = None
) -> Iterator[str]:
    """Validated JSONL lines (each ending in a newline) for the approved examples, streamed in batches."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    active = active_prompt_version()
    fallback = active.content if active is not None else ""
    if fmt in CONVERSATIONAL_FORMATS:
        yield from conversational_lines(
            examples=_examples(fmt=fmt, filters=filters).iterator(chunk_size=500),
            fmt=fmt,
            system_for=lambda example: _prompt_in_force(example=example, fallback=fallback),
            on_skip=on_skip,
        )
        return
    for example in _examples(fmt=fmt, filters=filters).iterator(chunk_size=500):
        row = training_export_row(
            example=example, fmt=fmt, system=_prompt_in_force(example=example, fallback=fallback)
        )
        errors = training_export_validate(row=row, fmt=fmt)
        if errors:
            if on_skip is not None:
                on_skip(example.pk, errors)
            continue
        yield json.dumps(row, ensure_ascii=False) + "\n"
