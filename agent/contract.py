"""The model's output contract: what the model is asked to answer, and how its answer is read.

One pydantic model owns the JSON instructions given to the model, the lenient parse (a code fence is
unwrapped, plain prose is taken as the reply), the bounds on every field and the refusal (what a turn
decides when its reply may not be sent). The agent's turn, the evaluation and the offline responder all use
it; adding a field to the reply is a change to this module (and its tests) only.

Nothing the model writes is executed: only these validated fields leave agent.llm.
"""

import json
import re
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_REPLY_CHARS = 8000
MAX_LEAD_FIELDS = 20
MAX_FIELD_KEY_CHARS = 64
MAX_FIELD_VALUE_CHARS = 500
MAX_REASON_CHARS = 500

LeadFieldValue = str | bool | int | float

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


class OutputInvalid(ValueError):
    """The model's answer breaks the contract (empty, truncated JSON, a reply that is not text)."""


def unfence(content: str | None) -> str:
    """The answer without surrounding whitespace and a Markdown code fence, if it has one."""
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    return fenced.group(1).strip() if fenced else text


class ModelReply(BaseModel):
    """One turn's answer from the model, validated and bounded."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    reply: str = Field(default="", description="string: your next message to the lead, plain text")
    qualified: bool = Field(
        default=False, description="boolean: true only when the lead meets the qualification criteria above"
    )
    lead_fields: dict[str, LeadFieldValue] = Field(
        default_factory=dict,
        description='object: facts the lead told you, e.g. {"budget": "5000", "timeline": "this month"}; '
        "{} if none",
    )
    handoff: bool = Field(
        default=False, description="boolean: true when the lead asks for a person or you cannot help"
    )
    handoff_reason: str = Field(default="", description="string or null")

    # Fields a refusal keeps; every other field goes back to its default (so a new field is dropped too).
    KEPT_ON_REFUSAL: ClassVar[frozenset[str]] = frozenset()

    @field_validator("reply", mode="before")
    @classmethod
    def _reply_is_text(cls, value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ValueError("reply must be a string")
        return value.strip()[:MAX_REPLY_CHARS]

    @field_validator("qualified", "handoff", mode="before")
    @classmethod
    def _strict_true(cls, value: Any) -> bool:
        # Only a JSON true counts: "yes", 1 or "true" from a sloppy model decide nothing.
        return value is True

    @field_validator("handoff_reason", mode="before")
    @classmethod
    def _reason(cls, value: Any) -> str:
        return value.strip()[:MAX_REASON_CHARS] if isinstance(value, str) else ""

    @field_validator("lead_fields", mode="before")
    @classmethod
    def _scalar_fields(cls, value: Any) -> dict[str, LeadFieldValue]:
        if not isinstance(value, dict):
            return {}
        fields: dict[str, LeadFieldValue] = {}
        for key, item in list(value.items())[:MAX_LEAD_FIELDS]:
            if item is None or isinstance(item, (dict, list)):
                continue
            if isinstance(item, str):
                item = item.strip()[:MAX_FIELD_VALUE_CHARS]
                if not item:
                    continue
            fields[str(key).strip()[:MAX_FIELD_KEY_CHARS]] = item
        return fields

    @model_validator(mode="after")
    def _says_something(self) -> Self:
        if not self.reply and not self.handoff:
            raise ValueError("reply is empty and no handoff was requested")
        return self

    # --- The three things the rest of the agent asks of the contract -------------------------------

    @classmethod
    def instructions(cls) -> str:
        """The output contract as the model reads it, generated from the fields above."""
        keys = ", ".join(f'"{name}" ({field.description})' for name, field in cls.model_fields.items())
        return f"Answer with one JSON object and nothing else, with exactly these keys: {keys}."

    @classmethod
    def parse(cls, content: str | None) -> Self:
        """Read the model's answer; raises OutputInvalid.

        A plain-text answer (or JSON that is not an object) is the reply itself. An answer that looks like
        JSON (it starts with "{", or came in a code fence) and does not parse is a broken answer, say one
        cut off by a token limit: sending it would show the lead raw JSON, so it is an error.
        """
        raw = (content or "").strip()
        text = unfence(raw)
        if not text:
            raise OutputInvalid("the model returned an empty answer")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if text.startswith("{") or raw.startswith("```"):
                raise OutputInvalid(f"the model's JSON does not parse ({exc.msg})") from exc
            data = None
        if not isinstance(data, dict):
            data = {"reply": text}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            message = str(first.get("ctx", {}).get("error") or first["msg"]).removeprefix("Value error, ")
            raise OutputInvalid(message) from exc

    def refused(self, *, fallback: str) -> Self:
        """This answer with its reply replaced by `fallback` and every decision dropped."""
        kept = {name: getattr(self, name) for name in self.KEPT_ON_REFUSAL}
        # Not validated: the fallback is ours, and an empty one (a silent refusal) is allowed.
        return type(self).model_construct(**kept, reply=fallback)

    def as_json(self) -> str:
        return self.model_dump_json()


OUTPUT_INSTRUCTIONS = ModelReply.instructions()
