"""A local server that speaks ManyChat's Page API (sendContent and friends).

with FakeManyChat() as fake:                     # or the `fake_manychat` pytest fixture
    fake.enqueue(fake.window_closed())           # the next sendContent fails with code 3011
    fake.sent()                                  # the sendContent bodies received, parsed
    fake.wait_for_calls(1, timeout=5)            # for asynchronous deliveries
"""

from typing import Any

from tests.fakes.base import FakeServer, Reply


class FakeManyChat(FakeServer):
    token = "123456:fake-manychat-token"

    def default_reply(self) -> Reply:
        return self.success()

    def success(self, *, delay: float = 0.0) -> Reply:
        return Reply(body={"status": "success"}, delay=delay)

    def error(self, status: int = 500, message: str = "Internal error", code: int | None = None) -> Reply:
        body: dict[str, Any] = {"status": "error", "message": message}
        if code is not None:
            body["code"] = code
        return Reply(body=body, status=status)

    def window_closed(self) -> Reply:
        """Error 3011: the subscriber's last message is over 24 hours old."""
        return self.error(400, "Subscriber haven't interacted with your page more than 24 hours", code=3011)

    def sent(self) -> list[dict[str, Any]]:
        return [r.json() for r in list(self.requests) if r.path.endswith("/fb/sending/sendContent")]

    def sent_texts(self) -> list[str]:
        return [m["text"] for body in self.sent() for m in body["data"]["content"]["messages"]]
