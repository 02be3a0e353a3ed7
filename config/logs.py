"""Structured logs: one JSON line per event, carrying the request id of the turn into its Celery tasks.

The request id comes from the front proxy's `X-Request-ID` (when it is a plain token) or is made here; it is
returned in the response's `X-Request-ID`, put on every Celery task published while the request runs (a
message header), and restored in the worker while that task runs. The turn binds the subscriber id and the
message id. Message text and secrets are never logged: the formatter only writes the fields named below plus
what a log call passes in `extra`, and our code passes ids, never text.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

_CONTEXT_FIELDS = ("request_id", "subscriber_id", "message_id", "task")
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
REQUEST_ID_HEADER = "request_id"


def current() -> dict[str, str]:
    return dict(_context.get())


def current_request_id() -> str:
    return _context.get().get("request_id", "")


def bind(**fields: object) -> None:
    """Add ids to the log context of the current request or task (None values are ignored)."""
    merged = dict(_context.get())
    merged.update({key: str(value) for key, value in fields.items() if value is not None and value != ""})
    _context.set(merged)


@contextmanager
def context(**fields: object) -> Iterator[None]:
    token = _context.set({key: str(value) for key, value in fields.items() if value not in (None, "")})
    try:
        yield
    finally:
        _context.reset(token)


def new_request_id(candidate: str | None = None) -> str:
    if candidate and _VALID_REQUEST_ID.match(candidate):
        return candidate
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        for name in _CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, fields.get(name, ""))
        return True


class JsonLineFormatter(JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        super().add_fields(log_record, record, message_dict)
        for name in _CONTEXT_FIELDS:
            if not log_record.get(name):
                log_record.pop(name, None)


class RequestIdMiddleware:
    def __init__(self, get_response):  # type: ignore[no-untyped-def]
        self.get_response = get_response

    def __call__(self, request):  # type: ignore[no-untyped-def]
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id
        with context(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


def connect_celery_signals() -> None:
    """Carry the log context from the publisher into the task (called once from config/celery.py)."""
    from celery import signals

    @signals.before_task_publish.connect(weak=False)
    def _add_header(headers: dict[str, Any] | None = None, **_: Any) -> None:
        request_id = current_request_id()
        if headers is not None and request_id and not headers.get(REQUEST_ID_HEADER):
            headers[REQUEST_ID_HEADER] = request_id

    tokens: dict[str, contextvars.Token] = {}

    @signals.task_prerun.connect(weak=False)
    def _restore(task_id: str = "", task: Any = None, **_: Any) -> None:
        request = getattr(task, "request", None)
        request_id = getattr(request, REQUEST_ID_HEADER, None) or (
            (getattr(request, "headers", None) or {}).get(REQUEST_ID_HEADER)
        )
        fields = {"request_id": request_id or current_request_id() or new_request_id(), "task": task.name}
        tokens[task_id] = _context.set(fields)

    @signals.task_postrun.connect(weak=False)
    def _reset(task_id: str = "", **_: Any) -> None:
        token = tokens.pop(task_id, None)
        if token is not None:
            try:
                _context.reset(token)
            except ValueError:  # reset from another context (eager task on another thread): forget it
                _context.set({})
