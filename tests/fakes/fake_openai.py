"""A local server that speaks OpenAI's chat-completions API, for tests, benchmarks and prompt evaluation.

with FakeOpenAI() as fake:                       # or the `fake_openai` pytest fixture
    fake.reply_with({"reply": "Hi!", "qualified": False})   # every call, until changed
    fake.enqueue(fake.completion("slow", delay=3), fake.error(500), fake.garbage())  # next calls
    client = openai.OpenAI(api_key="x", base_url=fake.base_url)
    fake.calls, fake.last_messages()             # what our code sent
"""

import json
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

    def render(self, reply: Reply, request: CapturedRequest) -> Reply:
        text = request.body.decode("utf-8", "replace")
        for marker, answer in list(self._routes):
            if marker in text:
                return answer(request) if callable(answer) else answer
        return reply

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._routes.clear()

    # -- inspection -----------------------------------------------------------------------------------------
    def completion_requests(self) -> list[CapturedRequest]:
        return [r for r in list(self.requests) if r.path.endswith("/chat/completions")]

    def last_messages(self) -> list[dict[str, str]]:
        requests = self.completion_requests()
        assert requests, "no chat completion was requested"
        return requests[-1].json()["messages"]
