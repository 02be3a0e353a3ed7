"""The conversational formats open-weights trainers read (Hugging Face TRL and others), beside OpenAI's.

* ``conversational`` (supervised): {"messages": [{"role": "system"|"user"|"assistant", "content": ...}]},
  the same turns as the OpenAI chat line: the prompt in force, the lead's message, the good reply or the
  correction's expected response. Bad examples are left out.
* ``conversational-preference`` (DPO and friends): {"prompt": [system?, user], "chosen": [assistant],
  "rejected": [assistant]}: for a correction, its expected response over the original reply.

Each line is validated against a JSON Schema before it is written; a row that fails is reported through
``on_skip`` and never written.
"""

import json
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator

from training.models import ExampleType, TrainingExample

FORMAT_CONVERSATIONAL = "conversational"
FORMAT_CONVERSATIONAL_PREFERENCE = "conversational-preference"
CONVERSATIONAL_FORMATS = (FORMAT_CONVERSATIONAL, FORMAT_CONVERSATIONAL_PREFERENCE)

_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "additionalProperties": False,
    "properties": {
        "role": {"enum": ["system", "user", "assistant"]},
        "content": {"type": "string", "minLength": 1, "pattern": r"\S"},
    },
}


def _assistant_only() -> dict[str, Any]:
    return {
        "type": "array",
        "minItems": 1,
        "maxItems": 1,
        "items": {**_MESSAGE, "properties": {**_MESSAGE["properties"], "role": {"const": "assistant"}}},
    }


SCHEMAS: dict[str, dict[str, Any]] = {
    FORMAT_CONVERSATIONAL: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["messages"],
        "additionalProperties": False,
        "properties": {"messages": {"type": "array", "minItems": 2, "items": _MESSAGE}},
    },
    FORMAT_CONVERSATIONAL_PREFERENCE: {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["prompt", "chosen", "rejected"],
        "additionalProperties": False,
        "properties": {
            "prompt": {"type": "array", "minItems": 1, "items": _MESSAGE},
            "chosen": _assistant_only(),
            "rejected": _assistant_only(),
        },
    },
}
_VALIDATORS = {fmt: Draft202012Validator(schema) for fmt, schema in SCHEMAS.items()}


def conversational_row(*, example: TrainingExample, fmt: str, system: str) -> dict[str, Any] | None:
    """The unvalidated line for an example, or None when the format has no place for its type."""
    prompt = [{"role": "system", "content": system}] if system else []
    user = {"role": "user", "content": example.user_message}
    if fmt == FORMAT_CONVERSATIONAL:
        if example.example_type == ExampleType.BAD:
            return None
        answer = (
            example.expected_response
            if example.example_type == ExampleType.CORRECTION
            else example.ai_response
        )
        return {"messages": [*prompt, user, {"role": "assistant", "content": answer}]}
    if example.example_type != ExampleType.CORRECTION:
        return None
    return {
        "prompt": [*prompt, user],
        "chosen": [{"role": "assistant", "content": example.expected_response}],
        "rejected": [{"role": "assistant", "content": example.ai_response}],
    }


def conversational_validate(*, row: Any, fmt: str) -> list[str]:
    """Schema errors plus the order rules a schema cannot say; [] when the line is valid."""
    errors = [
        f"{'/'.join(str(p) for p in error.absolute_path) or 'line'}: {error.message}"
        for error in sorted(_VALIDATORS[fmt].iter_errors(row), key=lambda e: list(e.absolute_path))
    ]
    if errors:
        return errors
    turns = row["messages"] if fmt == FORMAT_CONVERSATIONAL else row["prompt"]
    roles = [turn["role"] for turn in turns]
    if "system" in roles[1:]:
        errors.append("a system message may only come first")
    if fmt == FORMAT_CONVERSATIONAL and roles[-1] != "assistant":
        errors.append("the last message must be the assistant's")
    if fmt == FORMAT_CONVERSATIONAL_PREFERENCE:
        if roles[-1] != "user":
            errors.append("the prompt must end with the user's message")
        if row["chosen"][0]["content"] == row["rejected"][0]["content"]:
            errors.append("chosen and rejected must differ")
    return errors


def conversational_lines(
    *,
    examples: Iterator[TrainingExample],
    fmt: str,
    system_for: Callable[[TrainingExample], str],
    on_skip: Callable[[int, list[str]], None] | None = None,
) -> Iterator[str]:
    for example in examples:
        row = conversational_row(example=example, fmt=fmt, system=system_for(example))
        if row is None:
            continue
        errors = conversational_validate(row=row, fmt=fmt)
        if errors:
            if on_skip is not None:
                on_skip(example.pk, errors)
            continue
        yield json.dumps(row, ensure_ascii=False) + "\n"
