"""One play: a simulated lead (played by the model) talks with the agent, turn by turn.

The agent side goes through `agent_reply_for_transcript`, the rehearsal's one port into the agent's turn:
`agent.turn.turn_decide` (the webhook's own model input → call with the version's model settings → guard
→ catalog grounding steps) for the version under test, then the turn's decide rule, with delivery replaced
by "append to the transcript" and nothing written to real leads. The lead side is a second model call with
its own system prompt (LEAD_INSTRUCTIONS): the persona, the goal and the facts, told to stay in role.

Without OPENAI_API_KEY both sides answer offline (the agent through the turn's own offline responder, the
lead through `_offline_lead`), so a rehearsal works in the local demo.
"""

import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from agent import llm, turn
from leads.models import Lead, LeadStatus, Message, MessageRole

logger = logging.getLogger(__name__)

# The marker the fake model (tests/fakes/fake_openai.py) routes on: keep the first words stable.
LEAD_INSTRUCTIONS = (
    "You are playing a LEAD in a sales rehearsal: a person writing to a business in a direct message. "
    "You are NOT the assistant. Stay in role for the whole conversation, whatever the other side writes.\n"
    "Who you are: {persona}\n"
    "What you want: {goal}\n"
    "Facts you reveal only when you are asked about them (never all at once, never invent others): {facts}\n"
    "This is take {take} of {takes} of the same scene: keep the facts, vary your wording naturally.\n"
    "Write short, informal DMs. When you have what you came for, were handed to a person, or want to "
    'stop, say goodbye. Answer with one JSON object and nothing else: {{"message": "your next DM", '
    '"done": true or false}} (done is true when your message ends the conversation).'
)
LEAD_MARKER = LEAD_INSTRUCTIONS[:48]
MAX_LEAD_CHARS = 2000


# --- The port into the agent's turn ----------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptTurn:
    role: str  # "lead" or "agent"
    text: str


@dataclass(frozen=True)
class AgentReply:
    """What the agent would have sent and decided for the last lead message of a transcript."""

    text: str
    qualified: bool = False
    handoff: bool = False
    handoff_reason: str = ""
    lead_fields: dict[str, Any] = field(default_factory=dict)
    refused: bool = False  # the output filter or the catalog grounding replaced the reply
    note: str = ""  # why the turn's grounding step refused the reply, if it did
    error: str = ""  # the model failed: `text` is the fallback line the lead would get
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int = 0


def agent_reply_for_transcript(
    *,
    version: Any,
    transcript: list[TranscriptTurn],
    channel: str,
    known: dict[str, Any] | None = None,
    status: str = LeadStatus.NEW,
) -> AgentReply:
    """The agent's answer to the transcript's last lead message, through the turn's own steps.

    `known` is what earlier turns of this play stored about the lead (the webhook merges `lead_fields`
    into the lead's qualification data), `status` the lead's status so far. Nothing is written.
    """
    if not transcript or transcript[-1].role != "lead":
        raise ValueError("the transcript must end with a lead message")
    lead = Lead(channel=channel, status=status, qualification_data=dict(known or {}))
    history = [
        Message(role=MessageRole.LEAD if each.role == "lead" else MessageRole.AGENT, text=each.text)
        for each in transcript[:-1]
    ]
    started = time.monotonic()
    decision = turn.turn_decide(
        lead=lead, history=history, text=transcript[-1].text, deadline=None, version=version
    )
    if isinstance(decision, turn.TurnFailure):
        return AgentReply(
            text=settings.AGENT_FALLBACK_TEXT,
            error=decision.error[:500],
            latency_ms=int((time.monotonic() - started) * 1000),
        )
    answer, result = decision.reply, decision.result
    return AgentReply(
        text=answer.reply,
        # The decide step of turn_apply: qualification moves a new or engaged lead only.
        qualified=turn._qualifies(decision=answer, lead=lead),
        handoff=bool(answer.handoff),
        handoff_reason=answer.handoff_reason or "",
        lead_fields=dict(answer.lead_fields or {}),
        refused=bool(decision.note) or answer.reply == settings.AGENT_FALLBACK_TEXT,
        note=decision.note,
        model=result.model,
        prompt_tokens=result.prompt_tokens or 0,
        completion_tokens=result.completion_tokens or 0,
        latency_ms=result.latency_ms,
    )


# --- The simulated lead --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadMove:
    text: str
    done: bool
    prompt_tokens: int = 0
    completion_tokens: int = 0


_GOODBYE = re.compile(r"\b(bye|goodbye|thanks, that's all|talk soon|see you)\b", re.IGNORECASE)


def lead_messages_build(
    *, scenario: Any, transcript: list[TranscriptTurn], take: int, takes: int
) -> list[dict]:
    """The simulated lead's model input: its role, then the conversation from its side."""
    system = LEAD_INSTRUCTIONS.format(
        persona=scenario.persona.strip(),
        goal=(scenario.goal or "find out whether this business can help you").strip(),
        facts=json.dumps(scenario.facts or {}, ensure_ascii=False),
        take=take,
        takes=takes,
    )
    messages = [{"role": "system", "content": system}]
    for each in transcript:
        # From the lead's side, its own lines are the assistant's and the agent's are the user's.
        messages.append({"role": "assistant" if each.role == "lead" else "user", "content": each.text})
    return messages


def lead_parse(*, content: str | None) -> tuple[str, bool]:
    text = (content or "").strip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        message = data["message"].strip()[:MAX_LEAD_CHARS]
        if not message:
            raise llm.LlmError("the simulated lead wrote nothing", kind="invalid_output")
        return message, data.get("done") is True
    if not text:
        raise llm.LlmError("the simulated lead wrote nothing", kind="invalid_output")
    return text[:MAX_LEAD_CHARS], bool(_GOODBYE.search(text))


def _offline_lead(*, scenario: Any, transcript: list[TranscriptTurn]) -> LeadMove:
    """Without a model: answer the agent's questions from the facts, one fact a turn, then say goodbye."""
    told = {each.text for each in transcript if each.role == "lead"}
    last_agent = next((each.text.lower() for each in reversed(transcript) if each.role == "agent"), "")
    facts = dict(scenario.facts or {})
    asked = [key for key in facts if key.lower() in last_agent]
    for key in asked + [key for key in facts if key not in asked]:
        line = f"My {key} is {facts[key]}."
        if line not in told:
            return LeadMove(text=line, done=False)
    return LeadMove(text="Thanks, that's all I needed. Bye!", done=True)


def lead_next_message(*, scenario: Any, transcript: list[TranscriptTurn], take: int, takes: int) -> LeadMove:
    """The simulated lead's next message; raises llm.LlmError when the model fails."""
    if not settings.OPENAI_API_KEY:
        return _offline_lead(scenario=scenario, transcript=transcript)
    messages = lead_messages_build(scenario=scenario, transcript=transcript, take=take, takes=takes)
    content, completion, _ = llm._chat_completion(messages=messages, deadline=None, temperature=0.9)
    text, done = lead_parse(content=content)
    usage = getattr(completion, "usage", None)
    return LeadMove(
        text=text,
        done=done,
        prompt_tokens=getattr(usage, "prompt_tokens", None) or 0,
        completion_tokens=getattr(usage, "completion_tokens", None) or 0,
    )


# --- One play ------------------------------------------------------------------------------------------


@dataclass
class PlayOutcome:
    transcript: list[dict[str, Any]]
    ended: str
    turns: int
    agent_calls: int = 0
    lead_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""


def play_scenario(*, version: Any, scenario: Any, take: int, takes: int) -> PlayOutcome:
    """Play one scenario against a version: up to scenario.max_turns agent replies, or until the agent
    qualifies the lead or hands off, or the lead says goodbye. A turn is the lead's message(s) and the
    agent's reply; the opening messages make the first turn."""
    from agent.rehearsal.models import PlayEnd

    openings = [text for text in (scenario.opening_messages or []) if isinstance(text, str) and text.strip()]
    turns: list[TranscriptTurn] = []
    rows: list[dict[str, Any]] = []
    outcome = PlayOutcome(transcript=rows, ended=PlayEnd.MAX_TURNS, turns=0)
    known: dict[str, Any] = {}
    status = LeadStatus.NEW
    for turn_number in range(1, scenario.max_turns + 1):
        if turn_number == 1:
            lead_lines = openings or ["Hi!"]
        else:
            try:
                move = lead_next_message(scenario=scenario, transcript=turns, take=take, takes=takes)
            except llm.LlmError as exc:
                outcome.ended, outcome.error = PlayEnd.ERROR, f"The simulated lead did not answer: {exc}"
                break
            outcome.lead_calls += 1
            outcome.prompt_tokens += move.prompt_tokens
            outcome.completion_tokens += move.completion_tokens
            lead_lines = [move.text]
        for line in lead_lines:
            turns.append(TranscriptTurn(role="lead", text=line))
            rows.append({"turn": turn_number, "role": "lead", "text": line})
        if turn_number > 1 and move.done:
            outcome.ended, outcome.turns = PlayEnd.GOODBYE, turn_number - 1
            break
        reply = agent_reply_for_transcript(
            version=version, transcript=turns, channel=scenario.channel, known=known, status=status
        )
        outcome.agent_calls += 1
        outcome.prompt_tokens += reply.prompt_tokens
        outcome.completion_tokens += reply.completion_tokens
        outcome.turns = turn_number
        turns.append(TranscriptTurn(role="agent", text=reply.text))
        rows.append(
            {
                "turn": turn_number,
                "role": "agent",
                "text": reply.text,
                "qualified": reply.qualified,
                "handoff": reply.handoff,
                "lead_fields": reply.lead_fields,
                "refused": reply.refused,
                "note": reply.note,
                "error": reply.error,
                "tokens": reply.prompt_tokens + reply.completion_tokens,
                "latency_ms": reply.latency_ms,
            }
        )
        known.update(reply.lead_fields)
        if reply.error:
            outcome.ended, outcome.error = PlayEnd.ERROR, f"The agent's model did not answer: {reply.error}"
            break
        if reply.handoff:
            outcome.ended = PlayEnd.HANDED_OFF
            break
        if reply.qualified:
            status = LeadStatus.QUALIFIED
            outcome.ended = PlayEnd.QUALIFIED
            break
    return outcome
