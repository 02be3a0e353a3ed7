"""Errors that services raise, mapped to HTTP status codes by the one DRF exception handler.

Services keep raising Django's own ``ValidationError`` (400, field named) and ``PermissionDenied`` (403);
these cover what Django has no class for. Every error names the field (or ``non_field_errors``).
"""

from __future__ import annotations


class ServiceError(Exception):
    status_code: int = 400

    def __init__(self, message: str, *, field: str = "non_field_errors") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    status_code = 404


class Conflict(ServiceError):
    """The request is valid but the object's state forbids it now (409)."""

    status_code = 409
