"""The one API edge every app's apis.py shares: error mapping, pagination and the permission check.

Services raise Django's ``ValidationError`` / ``PermissionDenied`` or ``config.errors.NotFound`` /
``Conflict``; ``exception_handler`` (REST_FRAMEWORK["EXCEPTION_HANDLER"]) turns them into 400/403/404/409
with the field named, so an API never catches a service error itself (HackSoft's exception_handlers.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ServiceError

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from rest_framework.request import Request
    from rest_framework.serializers import BaseSerializer
    from rest_framework.views import APIView

PERMISSION_MESSAGE = "Your role may not do this."


class _ServiceException(exceptions.APIException):
    """A config.errors.ServiceError as DRF sees it: its status and {field: [message]}."""

    def __init__(self, error: ServiceError) -> None:
        self.status_code = error.status_code
        super().__init__(detail={error.field: [error.message]})


def _validation_detail(error: DjangoValidationError) -> dict[str, Any]:
    if hasattr(error, "error_dict"):
        return dict(error.message_dict)
    return {"non_field_errors": error.messages}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=_validation_detail(exc))
    elif isinstance(exc, ServiceError):
        exc = _ServiceException(exc)
    # Http404 and Django's PermissionDenied: DRF's own handler answers 404 and 403.
    return drf_exception_handler(exc, context)


class Pagination(PageNumberPagination):
    """?page=N&page_size=M (at most 100, PAGE_SIZE by default) as {count, next, previous, results}."""

    page_size_query_param = "page_size"
    max_page_size = 100


def paginated_response(
    *, request: Request, view: APIView, queryset: QuerySet[Any], serializer_class: type[BaseSerializer[Any]]
) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def HasPerm(perm: str | None, **per_method: str | None) -> type[BasePermission]:  # noqa: N802 - a class
    """A permission class: the signed-in user holds ``perm``, or, for a method named in ``per_method``
    (``post=...``), that method's permission; ``None`` asks only for a signed-in user (the service decides).
    Used as ``permission_classes = [HasPerm(roles.PERM_VIEW_LEADS)]``."""
    by_method = {method.upper(): value for method, value in per_method.items()}

    class _HasPerm(BasePermission):
        message = PERMISSION_MESSAGE

        def has_permission(self, request: Request, view: APIView) -> bool:
            user = request.user
            if not (user and user.is_authenticated):
                return False
            needed = by_method.get(request.method or "", perm)
            return needed is None or bool(user.has_perm(needed))

    _HasPerm.__name__ = f"HasPerm[{perm}]"
    return _HasPerm
