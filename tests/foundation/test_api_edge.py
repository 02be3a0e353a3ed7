"""config/api.py: the one exception handler, pagination and permission helper every API shares."""

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from config.api import HasPerm
from config.errors import Conflict, NotFound
from tests.factories import UserFactory


def _raising(error: Exception, **attrs):
    class RaisingApi(APIView):
        permission_classes: list = []

        def get(self, request):
            raise error

    for name, value in attrs.items():
        setattr(RaisingApi, name, value)
    return RaisingApi.as_view()


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (ValidationError({"email": "Not an email."}), 400, {"email": ["Not an email."]}),
        (ValidationError("Both texts are empty."), 400, {"non_field_errors": ["Both texts are empty."]}),
        (NotFound("No such lead.", field="lead_id"), 404, {"lead_id": ["No such lead."]}),
        (NotFound("Gone."), 404, {"non_field_errors": ["Gone."]}),
        (Conflict("Already decided.", field="status"), 409, {"status": ["Already decided."]}),
        (Http404("No lead 7."), 404, {"detail": "No lead 7."}),
        (PermissionDenied("Your role may not."), 403, {"detail": "Your role may not."}),
    ],
    ids=["validation-field", "validation-plain", "not-found-field", "not-found", "conflict", "404", "403"],
)
def test_service_errors_map_to_status_and_field(error, status, body):
    request = APIRequestFactory().get("/")
    force_authenticate(request, user=AnonymousUser())
    response = _raising(error)(request)
    assert response.status_code == status
    assert response.data == body


class _Echo(APIView):
    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        return Response({"ok": True})

    def patch(self, request):
        return Response({"ok": True})


@pytest.mark.django_db
def test_has_perm_checks_the_permission_of_each_method():
    view = type(
        "EchoApi",
        (_Echo,),
        {"permission_classes": [HasPerm("leads.view_lead", post="leads.change_lead", patch=None)]},
    ).as_view()
    user = UserFactory()
    factory = APIRequestFactory()

    def call(method):
        request = getattr(factory, method)("/", {}, format="json")
        force_authenticate(request, user=user)
        return view(request).status_code

    assert (call("get"), call("post"), call("patch")) == (403, 403, 200)
    user.user_permissions.add(Permission.objects.get(codename="view_lead"))
    user = type(user).objects.get(pk=user.pk)  # drop the permission cache
    assert (call("get"), call("post"), call("patch")) == (200, 403, 200)
    anonymous = factory.get("/")
    response = view(anonymous)
    assert response.status_code == 403
    assert response.data["detail"] == "Authentication credentials were not provided."
