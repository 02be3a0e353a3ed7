"""Know whether a response reached the client: run a callback only once the server has written all of it.

A webhook's answer is only worth something if ManyChat read it. ManyChat gives up on a request after about
10 s and may send it again; the first attempt then writes its reply to a closed connection and, if we
counted it as delivered, the lead never gets it (red team D1). `response_confirm` makes the response body
a WSGI iterable that

* before writing, checks that the client has not already closed the connection (a FIN is waiting on the
  socket): then nothing is written;
* calls `on_written` only after the server took the whole body without an error (the iteration reached
  its end, which the server asks for after writing the last chunk);
* otherwise, when the server calls `close()` without a complete write, calls `on_lost`.

Under a server that gives no socket (Django's test client, an in-process call) the body is handed over
in memory: `close()` then counts as written.
"""

import logging
import select
import socket
from collections.abc import Callable, Iterator

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)


def peer_closed(sock) -> bool:
    """Whether the client has closed its side (an EOF is waiting to be read), without consuming data."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class _Confirmed:
    def __init__(
        self, response: HttpResponse, sock, on_written: Callable[[], None], on_lost: Callable[[], None]
    ):
        self.response = response
        self.sock = sock
        self.on_written = on_written
        self.on_lost = on_lost
        self.iterated = False
        self.written = False
        self.settled = False

    def iterate(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        self.iterated = True
        if peer_closed(self.sock):
            logger.warning("response: the client closed the connection before the answer was written")
            return
        yield from chunks
        self.written = True  # the server asked for more after writing the last chunk

    def close(self) -> None:
        if self.settled:
            return
        self.settled = True
        in_memory = self.sock is None and not self.iterated
        try:
            if self.written or in_memory:
                self.on_written()
            else:
                self.on_lost()
        except Exception:
            logger.exception("response: the delivery callback failed")


def response_confirm(
    *,
    request: HttpRequest,
    response: HttpResponse,
    on_written: Callable[[], None],
    on_lost: Callable[[], None],
) -> HttpResponse:
    """The same response, whose delivery (or loss) is reported to the callbacks after the server is done."""
    sock = request.META.get("gunicorn.socket")
    confirmed = _Confirmed(response, sock, on_written, on_lost)
    plain_iter = type(response).__iter__

    class ConfirmedResponse(type(response)):
        def __iter__(self):
            return confirmed.iterate(plain_iter(self))

    response.__class__ = ConfirmedResponse
    response._resource_closers.append(confirmed.close)
    return response
