"""A local server that speaks ManyChat's Page API (sendContent, sendFlow, subscriber and page calls).

with FakeManyChat() as fake:                     # or the `fake_manychat` pytest fixture
    fake.enqueue(fake.window_closed())           # the next call fails with code 3011
    fake.enqueue(fake.error_with_200())          # ManyChat "sometimes reports an error with a 200"
    fake.enqueue(fake.accepted_late(delay=6))    # takes the send, answers after the client's timeout
    fake.rate_limit = 25                         # answers 429 past 25 requests in any second, per page
    fake.tags, fake.custom_fields                # what getTags / getCustomFields list
    fake.sent(), fake.sent_texts()               # the sendContent bodies received, parsed
    fake.per_second()                            # the most requests that arrived in any one second
    f"{fake.url}/media/voice.ogg"                # a voice note's URL, as ManyChat's CDN would serve it
    fake.wait_for_calls(1, timeout=5)            # for asynchronous deliveries

The behaviours are the ones the conformance audit found (manychat-conformance.md, S1-S3): 3011, 3021,
3031 and 304X refusals, "Wrong token", errors with HTTP 200, 429 with the limit, and a send accepted but
answered after the client gave up.
"""

import threading
import time
from typing import Any

from tests.fakes.base import CapturedRequest, FakeServer, Reply


class FakeManyChat(FakeServer):
    token = "123456:fake-manychat-token"

    def __init__(self) -> None:
        self._arrivals: list[tuple[float, str]] = []
        self._arrivals_lock = threading.Lock()
        self.rate_limit: int | None = None
        self.page = {"id": 123456, "name": "Acme Gyms", "category": "Gym", "is_pro": True, "timezone": "UTC"}
        self.tags: list[dict[str, Any]] = [{"id": 1, "name": "qualified"}, {"id": 2, "name": "needs_human"}]
        self.custom_fields: list[dict[str, Any]] = [
            {"id": 11, "name": "lead_stage", "type": "text", "description": ""},
            {"id": 12, "name": "ai_contact_token", "type": "text", "description": ""},
        ]
        super().__init__()

    def default_reply(self) -> Reply:
        return self.success()

    # -- reply builders -------------------------------------------------------------------------------------
    def success(self, *, delay: float = 0.0, data: Any = None) -> Reply:
        body: dict[str, Any] = {"status": "success"}
        if data is not None:
            body["data"] = data
        return Reply(body=body, delay=delay)

    def accepted_late(self, *, delay: float) -> Reply:
        """Takes (and records) the request, answers success only after `delay` seconds."""
        return self.success(delay=delay)

    def error(self, status: int = 500, message: str = "Internal error", code: int | None = None) -> Reply:
        body: dict[str, Any] = {"status": "error", "message": message}
        if code is not None:
            body["code"] = code
        return Reply(body=body, status=status)

    def window_closed(self) -> Reply:
        """Error 3011: the subscriber's last message is over 24 hours old."""
        return self.error(400, "Subscriber haven't interacted with your page more than 24 hours", code=3011)

    def otn_required(self) -> Reply:
        return self.error(400, "Subscriber is not subscribed to one-time notification", code=3021)

    def notification_reason_required(self) -> Reply:
        return self.error(400, "Notification reason is required for this message", code=3031)

    def channel_refused(self, code: int = 3042) -> Reply:
        return self.error(400, "Content can't be sent via specific channel", code=code)

    def wrong_token(self) -> Reply:
        return self.error(401, "Wrong token")

    def error_with_200(self, message: str = "Validation error", code: int | None = 2001) -> Reply:
        return self.error(200, message, code=code)

    def too_many_requests(self, *, limit: int = 25, retry_after: int = 1) -> Reply:
        reply = self.error(429, f"Too many requests: the limit is {limit} requests per second")
        reply.body["details"] = {"limit": limit, "period_seconds": 1}
        reply.headers["Retry-After"] = str(retry_after)
        return reply

    # -- the API --------------------------------------------------------------------------------------------
    def render(self, reply: Reply, request: CapturedRequest) -> Reply:
        now = time.monotonic()
        page = request.headers.get("authorization", "").removeprefix("Bearer ").split(":")[0]
        with self._arrivals_lock:
            self._arrivals.append((now, request.path))
            if self.rate_limit is not None:
                recent = sum(1 for at, _ in self._arrivals if at > now - 1.0)
                if recent > self.rate_limit:
                    return self.too_many_requests(limit=self.rate_limit)
        if reply.status != 200 or reply.body != {"status": "success"} or reply.delay:
            return reply  # a scripted answer, or a non-default default: as scripted, on every path
        if request.path.startswith("/media/"):
            # What a lead sent, as ManyChat's CDN serves it (no token needed).
            kind = "audio/ogg" if request.path.endswith(".ogg") else "application/octet-stream"
            return Reply(raw=b"OggS\x00fake-voice-note" * 8, headers={"Content-Type": kind})
        if not request.headers.get("authorization", "").startswith("Bearer ") or not page:
            return self.wrong_token()
        path = request.path.split("?")[0]
        if path == "/fb/page/getInfo":
            return self.success(data=self.page)
        if path == "/fb/page/getTags":
            return self.success(data=list(self.tags))
        if path == "/fb/page/getCustomFields":
            return self.success(data=list(self.custom_fields))
        return reply

    # -- what arrived ---------------------------------------------------------------------------------------
    def _bodies(self, suffix: str) -> list[dict[str, Any]]:
        return [r.json() for r in list(self.requests) if r.path.split("?")[0].endswith(suffix)]

    def sent(self) -> list[dict[str, Any]]:
        return self._bodies("/fb/sending/sendContent")

    def sent_texts(self) -> list[str]:
        return [m["text"] for body in self.sent() for m in body["data"]["content"]["messages"]]

    def calls_to(self, path: str) -> list[dict[str, Any]]:
        return self._bodies(path)

    def arrivals(self) -> list[float]:
        with self._arrivals_lock:
            return [at for at, _ in self._arrivals]

    def per_second(self) -> int:
        """The most requests that arrived within any one-second window (counted at this server)."""
        times = sorted(self.arrivals())
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def reset(self) -> None:
        super().reset()
        with self._arrivals_lock:
            self._arrivals.clear()
