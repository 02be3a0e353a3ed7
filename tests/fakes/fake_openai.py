"""A local server that speaks OpenAI's chat-completions API, for tests, benchmarks and prompt evaluation.

with FakeOpenAI() as fake:                       # or the `fake_openai` pytest fixture
    fake.reply_with({"reply": "Hi!", "qualified": False})   # every call, until changed
    fake.enqueue(fake.completion("slow", delay=3), fake.error(500), fake.garbage())  # next calls
    client = openai.OpenAI(api_key="x", base_url=fake.base_url)
    fake.calls, fake.last_messages()             # what our code sent
"""

import base64
import hashlib
import json
import math
import re
import struct
import time
from collections.abc import Callable
from typing import Any

from tests.fakes.base import CapturedRequest, FakeServer, Reply


class FakeOpenAI(FakeServer):
    model = "fake-gpt"

    def __init__(self) -> None:
        self._routes: list[tuple[str, Reply | Callable[[CapturedRequest], Reply]]] = []
        super().__init__()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def default_reply(self) -> Reply:
        return self.completion(
            {
                "reply": "Thanks! How can I help?",
                "qualified": False,
                "lead_fields": {},
                "handoff": False,
                "handoff_reason": None,
            }
        )

    # -- reply builders -------------------------------------------------------------------------------------
    def completion(
        self,
        content: str | dict[str, Any],
        *,
        delay: float = 0.0,
        prompt_tokens: int = 120,
        completion_tokens: int = 30,
    ) -> Reply:
        """A successful chat completion whose message content is `content` (a dict is sent as JSON text)."""
        text = content if isinstance(content, str) else json.dumps(content)
        body = {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return Reply(body=body, delay=delay)

    def error(self, status: int = 500, message: str = "fake server error", *, delay: float = 0.0) -> Reply:
        return Reply(
            body={"error": {"message": message, "type": "server_error", "code": None}},
            status=status,
            delay=delay,
        )

    def garbage(self, *, delay: float = 0.0) -> Reply:
        """A 200 whose body is not JSON at all."""
        return Reply(raw=b"<html>upstream proxy error{{{", delay=delay)

    def reply_with(self, content: str | dict[str, Any], *, delay: float = 0.0) -> None:
        self.set_default(self.completion(content, delay=delay))

    # -- routing by request content (prompt evaluation: agent call vs judge call) ---------------------------
    def route(self, marker: str, answer: "Reply | Callable[[CapturedRequest], Reply]") -> None:
        """Answer every request whose body contains `marker` with `answer` (a Reply, or a function of the
        request returning one), ahead of the script and the default. The first matching route wins."""
        with self._lock:
            self._routes.append((marker, answer))

    # -- releases: the model list (GET /v1/models with shutdown_date) and models that reject parameters ------
    def list_models(self, *models: dict[str, Any]) -> None:
        """What GET /v1/models lists, e.g. {"id": "gpt-4o-mini", "shutdown_date": "2027-01-14"}."""
        with self._lock:
            self.listed_models = list(models)

    def reject_params(self, model: str, *params: str) -> None:
        """Calls to `model` carrying any of `params` get OpenAI's 400 naming the unsupported parameter."""
        with self._lock:
            self.rejected_params = {**getattr(self, "rejected_params", {}), model: set(params)}

    def _release_reply(self, request: CapturedRequest) -> Reply | None:
        if request.method == "GET" and request.path.rstrip("/").endswith("/models"):
            listed = getattr(self, "listed_models", [{"id": self.model}])
            data = [{"object": "model", "created": 0, "owned_by": "fake", **m} for m in listed]
            return Reply(body={"object": "list", "data": data})
        rejected = getattr(self, "rejected_params", {})
        if rejected and request.path.endswith("/chat/completions"):
            body = request.json() or {}
            for param in sorted(rejected.get(body.get("model"), ())):
                if param in body:
                    return Reply(
                        status=400,
                        body={
                            "error": {
                                "message": f"Unsupported parameter: '{param}' is not supported here",
                                "type": "invalid_request_error",
                                "param": param,
                                "code": "unsupported_parameter",
                            }
                        },
                    )
        return None

    def render(self, reply: Reply, request: CapturedRequest) -> Reply:
        release = self._release_reply(request)
        if release is not None:
            with self._lock:
                if reply is not self._default:
                    self._script.appendleft(reply)
            return release
        if request.path.endswith("/embeddings"):
            with self._lock:
                if reply is not self._default:
                    self._script.appendleft(reply)
            return self.embeddings_reply(request)
        if request.path.endswith("/audio/transcriptions"):
            with self._lock:
                if reply is not self._default:
                    self._script.appendleft(reply)
            return self.transcription_reply(request)
        text = request.body.decode("utf-8", "replace")
        for marker, answer in list(self._routes):
            if marker in text:
                return answer(request) if callable(answer) else answer
        return reply

    # -- audio transcription (POST /v1/audio/transcriptions, multipart) -------------------------------------
    transcript: str | None = "I would like to know the price of the membership"

    def transcription_reply(self, request: CapturedRequest) -> Reply:
        """`transcript` as the text (None: a 500); 400 without a multipart file, as OpenAI answers."""
        if b'name="file"' not in request.body or b'name="model"' not in request.body:
            return self.error(400, "file and model are required")
        if self.transcript is None:
            return self.error(500, "transcription failed")
        return Reply(body={"text": self.transcript})

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._routes.clear()
            self.listed_models = [{"id": self.model}]
            self.rejected_params = {}

    # -- embeddings (POST /v1/embeddings) -------------------------------------------------------------------
    # A deterministic "meaning": each word outside a few stopwords is mapped through `embedding_synonyms`
    # (word -> concept) and hashed to a signed dimension; the vector is the normalised sum. Paraphrases that
    # share no word but map to the same concepts get the same direction. An embedding call gives back the
    # scripted chat reply it took, so scripts stay for the chat calls.
    embedding_dims = 64
    embedding_stopwords = frozenset(
        re.findall(
            r"\w+",
            "a an and are as at be by can do does for from has have how i if in is it me my of on or the to "
            "was we what when with you your",
        )
    )

    @property
    def embedding_synonyms(self) -> dict[str, str]:
        if not hasattr(self, "_embedding_synonyms"):
            self._embedding_synonyms: dict[str, str] = {}
        return self._embedding_synonyms

    def embed(self, text: str) -> list[float]:
        vector = [0.0] * self.embedding_dims
        for word in re.findall(r"[^\W_]+", text.lower()):
            if word in self.embedding_stopwords:
                continue
            concept = self.embedding_synonyms.get(word, word)
            digest = hashlib.blake2b(concept.encode(), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % self.embedding_dims
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(value * value for value in vector)) or 1.0
        return [value / norm for value in vector]

    def embeddings_reply(self, request: CapturedRequest) -> Reply:
        body = request.json() or {}
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(item, str) for item in inputs):
            return self.error(400, "input must be a string or a list of strings")
        data = [{"object": "embedding", "index": i, "embedding": self.embed(t)} for i, t in enumerate(inputs)]
        if body.get("encoding_format") == "base64":
            for item in data:
                packed = struct.pack(f"<{len(item['embedding'])}f", *item["embedding"])
                item["embedding"] = base64.b64encode(packed).decode()
        tokens = sum(len(t.split()) for t in inputs)
        return Reply(
            body={
                "object": "list",
                "data": data,
                "model": body.get("model", "fake-embedding"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    def embedding_requests(self) -> list[CapturedRequest]:
        return [r for r in list(self.requests) if r.path.endswith("/embeddings")]

    # -- inspection -----------------------------------------------------------------------------------------
    def completion_requests(self) -> list[CapturedRequest]:
        return [r for r in list(self.requests) if r.path.endswith("/chat/completions")]

    def last_messages(self) -> list[dict[str, str]]:
        requests = self.completion_requests()
        assert requests, "no chat completion was requested"
        return requests[-1].json()["messages"]


# --- Rehearsal: both sides of a simulated conversation (agent/rehearsal) ---------------------------------
#
# fake.play_rehearsal()                      # the lead, the agent, the judge and the drafter, by content
# fake.play_rehearsal(judge=lambda data: (False, "Too pushy."))
#
# Requests are told apart by their system prompt: the simulated lead's, the rehearsal judge's and the
# scenario drafter's start with fixed words (REHEARSAL_*_MARKER, checked against the app's in
# tests/rehearsal); everything else is the agent. The agent's behaviour is picked by words in the prompt
# version's text, so a test writes the draft it wants:
#   "INVENTS-PRICES"  quotes €79 (not an allowed price) on its second reply, every time;
#   "FLAKY"           behaves well, except on one take in three (the take whose simulated lead writes
#                     "Well, ..."), where it invents €79 too;
#   anything else     asks for the budget first, quotes €49, offers a call once it has budget and timeline.
# The simulated lead reveals one asked-for fact a turn from the facts in its prompt, in one of three
# wordings picked by its take number ("take K of N"), and says goodbye once it has nothing left to tell.

REHEARSAL_LEAD_MARKER = "You are playing a LEAD in a sales rehearsal"
REHEARSAL_JUDGE_MARKER = "You grade a whole sales conversation in a REHEARSAL"
REHEARSAL_DRAFT_MARKER = "You turn a real sales conversation from direct messages into a REHEARSAL"

_HUMAN = re.compile(r"\b(human|real person|a person|representative|manager)\b", re.IGNORECASE)
_CALL = re.compile(r"\b(call|meeting|book)\b", re.IGNORECASE)
_TAKE = re.compile(r"This is take (\d+) of (\d+)")
_FACTS = re.compile(r"never invent others\): (\{.*\})\n")
_FACT_WORDS = {"budget": ("budget", "spend", "afford"), "timeline": ("when", "start", "timeline")}


def _lead_wording(take: int, key: str, value: str) -> str:
    return [f"Well, {key}: {value}.", f"My {key} is {value}.", f"{key.capitalize()}? {value}."][take % 3]


def rehearsal_lead_answer(messages: list[dict[str, str]]) -> dict[str, Any]:
    """The scripted simulated lead: {"message", "done"} from its system prompt and the agent's last line."""
    system = messages[0]["content"]
    take = int(_TAKE.search(system).group(1)) if _TAKE.search(system) else 1
    facts_match = _FACTS.search(system)
    facts: dict[str, str] = json.loads(facts_match.group(1)) if facts_match else {}
    told = " ".join(m["content"] for m in messages[1:] if m["role"] == "assistant")
    last_agent = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "").lower()
    if _CALL.search(last_agent) and "?" in last_agent:
        return {"message": "Yes, let's book the call. Bye for now!", "done": True}
    untold = [key for key in facts if _lead_wording(take, key, facts[key]) not in told]
    asked = [k for k in untold if k in last_agent or any(w in last_agent for w in _FACT_WORDS.get(k, ()))]
    if asked or untold:
        key = (asked or untold)[0]
        return {"message": _lead_wording(take, key, facts[key]), "done": False}
    return {"message": "Thanks, that's all I needed. Bye!", "done": True}


def rehearsal_agent_answer(messages: list[dict[str, str]]) -> dict[str, Any]:
    """The scripted agent under rehearsal: see the behaviours above."""
    system = messages[0]["content"]
    leads = [m["content"] for m in messages[1:] if m["role"] == "user"]
    replies_so_far = sum(1 for m in messages[1:] if m["role"] == "assistant")
    last = leads[-1] if leads else ""
    answer: dict[str, Any] = {"qualified": False, "lead_fields": {}, "handoff": False, "handoff_reason": None}
    if _HUMAN.search(last):
        return {
            **answer,
            "reply": "Of course, a person from our team will reply here.",
            "handoff": True,
            "handoff_reason": "The lead asked for a person.",
        }
    invents = "INVENTS-PRICES" in system or (
        "FLAKY" in system and any(text.startswith("Well, ") for text in leads)
    )
    price = "€79" if invents else "€49"
    said = " ".join(leads).lower()
    has_budget = "budget" in said
    has_timeline = "timeline" in said
    if replies_so_far == 0:
        reply = "Hi! Happy to help. What budget do you have in mind?"
    elif has_budget and has_timeline:
        return {
            **answer,
            "reply": f"Perfect, the plan is {price} a month. Shall we book a call?",
            "qualified": True,
            "lead_fields": {"budget": "known", "timeline": "known"},
        }
    elif replies_so_far == 1:
        reply = f"Thanks! Our plans start at {price} a month. When would you like to start?"
    else:
        reply = "Got it. What timeline do you have in mind?"
    return {**answer, "reply": reply}


def rehearsal_draft_answer(messages: list[dict[str, str]]) -> dict[str, Any]:
    data = json.loads(messages[1]["content"])
    lead_lines = [line["text"] for line in data["conversation"] if line["role"] == "lead"]
    return {
        "title": "Drafted: " + (lead_lines[0][:40] if lead_lines else "a lead"),
        "persona": f"A lead on {data['channel']} who opened with: {lead_lines[0] if lead_lines else 'hi'}",
        "goal": "Find out the price and start soon.",
        "opening_messages": lead_lines[:1] or ["Hi!"],
        "facts": {"budget": "2k a month", "timeline": "next month"},
        "tags": ["pricing", "from-conversation"],
    }


def _rehearsal_judge_default(data: dict[str, Any]) -> tuple[bool, str]:
    agent_lines = [row["text"] for row in data["conversation"] if row["role"] == "agent"]
    if any("!!!" in text or "BUY NOW" in text for text in agent_lines):
        return False, "The agent was pushy."
    return True, "Polite and on topic."


def _play_rehearsal(
    self: FakeOpenAI, *, judge: Callable[[dict[str, Any]], tuple[bool, str]] | None = None, delay: float = 0.0
) -> None:
    """Route the rehearsal's four kinds of request (lead, judge, drafter, agent) to the scripts above."""
    verdict = judge or _rehearsal_judge_default

    def judged(request: CapturedRequest) -> Reply:
        passed, reason = verdict(json.loads(request.json()["messages"][1]["content"]))
        return self.completion({"pass": passed, "reason": reason}, prompt_tokens=200, completion_tokens=10)

    self.route(REHEARSAL_JUDGE_MARKER, judged)
    self.route(
        REHEARSAL_LEAD_MARKER,
        lambda r: self.completion(
            rehearsal_lead_answer(r.json()["messages"]), delay=delay, completion_tokens=15
        ),
    )
    self.route(
        REHEARSAL_DRAFT_MARKER, lambda r: self.completion(rehearsal_draft_answer(r.json()["messages"]))
    )
    self.route(
        '"messages"', lambda r: self.completion(rehearsal_agent_answer(r.json()["messages"]), delay=delay)
    )


FakeOpenAI.play_rehearsal = _play_rehearsal  # type: ignore[attr-defined]
