"""gthread that buffers each request before it takes a thread (config/gunicorn.conf.py says why).

gunicorn's gthread hands a connection to a thread as soon as its first byte arrives; the thread then blocks
reading the rest of the headers and the body. Seventy clients trickling a byte a second hold seventy
threads, and real webhooks queue behind them (red team D8). Here the worker's event loop reads without
blocking until the request line, the headers and the Content-Length body are all in memory, and only then
gives the connection to a thread, which parses the buffered bytes as usual. A request that has not arrived
whole within GUNICORN_REQUEST_READ_TIMEOUT seconds is answered 408 and closed without ever costing a thread.

It also stamps each request's arrival (the moment its first byte was read: accept, or the next request on
a kept-alive connection) into the WSGI environ under config.arrival.ARRIVED_AT_KEY, so the webhook's reply
deadline counts the time the request waited for a thread (config/arrival.py).
"""

import contextlib
import errno
import os
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

from config.arrival import ARRIVED_AT_KEY

READ_TIMEOUT_SECONDS = float(os.environ.get("GUNICORN_REQUEST_READ_TIMEOUT", "10"))
# Past this many buffered bytes the request goes to a thread as it is (the app refuses large bodies by their
# declared length before reading them).
MAX_BUFFERED_BYTES = int(os.environ.get("GUNICORN_MAX_BUFFERED_BYTES", str(1024 * 1024)))
MAX_HEADER_BYTES = 64 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:[^\r\n]*chunked", re.IGNORECASE)
_EXPECT = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.IGNORECASE)
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 24\r\n\r\nrequest arrived too slow"
)


class _ReplaySocket:
    """A socket whose recv() returns the bytes the event loop already read, then reads the socket."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self.replay = b""

    def recv(self, size: int, *args) -> bytes:
        if self.replay:
            data, self.replay = self.replay[:size], self.replay[size:]
            return data
        return self._sock.recv(size, *args)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def request_complete(buffer: bytes) -> bool:
    """Whether the buffer holds a whole request (or as much as we are willing to buffer)."""
    if len(buffer) >= MAX_BUFFERED_BYTES:
        return True
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return len(buffer) >= MAX_HEADER_BYTES  # gunicorn answers 400 for oversized headers
    head = buffer[: end + 2]
    if _CHUNKED.search(head):
        return buffer.endswith(b"0\r\n\r\n")
    match = _CONTENT_LENGTH.search(head)
    length = int(match.group(1)) if match else 0
    if length > MAX_BUFFERED_BYTES:
        return True  # the app answers 413 on the declared length without reading the body
    return len(buffer) - (end + 4) >= length


_handling = threading.local()  # the arrival of the request this thread is handling


def arrival_stamped(app):
    """The WSGI app with the arrival of the request the current thread handles put into its environ."""

    def stamped(environ, start_response):
        arrived = getattr(_handling, "arrived_at", None)
        if arrived is not None:
            environ[ARRIVED_AT_KEY] = arrived
        return app(environ, start_response)

    return stamped


class BufferingThreadWorker(ThreadWorker):
    wsgi: Callable[..., Any]  # set by gunicorn's load_wsgi

    def init_process(self):
        self._arriving: dict[int, TConn] = {}
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = arrival_stamped(self.wsgi)

    def handle_request(self, req, conn):
        _handling.arrived_at = getattr(conn, "arrived_at", None)
        try:
            return super().handle_request(req, conn)
        finally:
            _handling.arrived_at = None

    def accept(self, server, listener):
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = TConn(self.cfg, sock, client, server)
        conn.arrived_at = time.time()
        conn.sock = _ReplaySocket(sock)
        conn.buffer = bytearray()
        conn.deadline = time.time() + READ_TIMEOUT_SECONDS
        conn.continued = False
        self.nr_conns += 1
        with self._lock:
            self._arriving[id(conn)] = conn
            callback = partial(self.on_client_socket_readable, conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, callback)

    def on_client_socket_readable(self, conn, client):
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        with self._lock:
            if conn.initialized and id(conn) not in self._arriving:
                try:  # an idle keep-alive connection starts a new request
                    self._keep.remove(conn)
                except ValueError:
                    return
                conn.buffer = bytearray()
                conn.arrived_at = time.time()
                conn.deadline = conn.arrived_at + READ_TIMEOUT_SECONDS
                conn.continued = False
                self._arriving[id(conn)] = conn
        try:
            data = conn.sock._sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before its request was whole
            self._drop(conn)
            return
        conn.buffer += data
        if not request_complete(bytes(conn.buffer)):
            if not conn.continued and b"\r\n\r\n" in conn.buffer and _EXPECT.search(bytes(conn.buffer)):
                conn.continued = True
                with contextlib.suppress(OSError):
                    conn.sock._sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        with self._lock:
            self._arriving.pop(id(conn), None)
            self.poller.unregister(client)
        # Appended: bytes of the previous request the app never read (a body refused by its length) are
        # still to be skipped by the parser before this request.
        conn.sock.replay += bytes(conn.buffer)
        conn.buffer = bytearray()
        self.enqueue_req(conn)

    def _drop(self, conn, response: bytes = b""):
        with self._lock:
            self._arriving.pop(id(conn), None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        if response:
            try:
                conn.sock._sock.setblocking(False)
                conn.sock._sock.send(response)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self):
        super().murder_keepalived()
        now = time.time()
        with self._lock:
            late = [conn for conn in self._arriving.values() if conn.deadline < now]
        for conn in late:
            self.log.info("request from %s not whole after %.0f s: 408", conn.client, READ_TIMEOUT_SECONDS)
            self._drop(conn, _TIMEOUT_RESPONSE)
