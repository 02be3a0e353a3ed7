"""A scriptable local HTTP server, the base of the fake OpenAI and ManyChat servers.

Real HTTP on 127.0.0.1 with an ephemeral port, served from a background thread (one thread per request,
so slow replies overlap). Each call takes the next scripted `Reply`, or the default one when the script
is empty; every request is captured. Usable as a context manager.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer: JSON `body` (or raw bytes in `raw`), after `delay` seconds, with `status`."""

    body: Any = None
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class CapturedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class FakeServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._default = self.default_reply()
        self.requests: list[CapturedRequest] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- to override --------------------------------------------------------------------------------------
    def default_reply(self) -> Reply:
        return Reply(body={})

    def render(self, reply: Reply, request: CapturedRequest) -> Reply:
        """Turn a scripted reply into the wire reply (subclasses wrap bodies in their API's envelope)."""
        return reply

    # -- scripting ------------------------------------------------------------------------------------------
    def set_default(self, reply: Reply) -> None:
        with self._lock:
            self._default = reply

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next calls with these replies, in order; then the default again."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._default = self.default_reply()
            self.requests.clear()

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least `count` requests arrived (True) or `timeout` passed (False)."""
        limit = time.monotonic() + timeout
        while time.monotonic() < limit:
            if self.calls >= count:
                return True
            time.sleep(0.02)
        return self.calls >= count

    # -- lifecycle ------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in one segment: no 40 ms Nagle / delayed-ACK stall per call.
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = CapturedRequest(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with fake._lock:
                    fake.requests.append(request)
                    scripted = fake._script.popleft() if fake._script else fake._default
                reply = fake.render(scripted, request)
                if reply.delay and fake._stopping.wait(reply.delay):
                    return
                payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        if name != "Content-Type":
                            self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.request_queue_size = 256
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
