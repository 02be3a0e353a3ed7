"""The catalog API: read and replace the working copy, edit offers and answers, release, versions, stale."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agent.catalog import selectors
from agent.catalog.services import catalog_release
from config.api import HasPerm
from leads import roles
from prompts.catalog.models import FaqEntry, Offer
from prompts.catalog.selectors import catalog_document, catalog_version_in_force
from prompts.catalog.services import catalog_entry_delete, catalog_import, faq_save, offer_save

CanView = HasPerm(roles.PERM_VIEW_CATALOG)
# Writes: a signed-in user; the service checks the role (403 with the action named).
CanViewOrWrite = HasPerm(roles.PERM_VIEW_CATALOG, put=None, post=None, patch=None, delete=None)


class OfferOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    billing_terms = serializers.CharField()
    included = serializers.CharField()
    booking_url = serializers.CharField()
    payment_url = serializers.CharField()
    info_url = serializers.CharField()
    valid_from = serializers.DateField(allow_null=True)
    valid_until = serializers.DateField(allow_null=True)


class OfferInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField(required=False, default="USD")
    billing_terms = serializers.CharField(required=False, allow_blank=True, default="")
    included = serializers.CharField(required=False, allow_blank=True, default="")
    booking_url = serializers.CharField(required=False, allow_blank=True, default="")
    payment_url = serializers.CharField(required=False, allow_blank=True, default="")
    info_url = serializers.CharField(required=False, allow_blank=True, default="")
    valid_from = serializers.DateField(required=False, allow_null=True, default=None)
    valid_until = serializers.DateField(required=False, allow_null=True, default=None)


class FaqSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    question = serializers.CharField(max_length=500)
    answer = serializers.CharField()
    tags = serializers.CharField(required=False, allow_blank=True, default="")


_DOCUMENT = inline_serializer(
    "CatalogDocument",
    fields={
        "offers": serializers.ListField(child=serializers.DictField()),
        "faq": serializers.ListField(child=serializers.DictField()),
    },
)


class CatalogApi(APIView):
    """GET the working copy as the import/export document; PUT replaces it whole (managers)."""

    permission_classes = [CanViewOrWrite]

    @extend_schema(responses={200: _DOCUMENT})
    def get(self, request: Request) -> Response:
        in_force = catalog_version_in_force()
        return Response({**catalog_document().as_json(), "in_force": in_force.number if in_force else None})

    @extend_schema(request=_DOCUMENT, responses={200: _DOCUMENT})
    def put(self, request: Request) -> Response:
        document = catalog_import(data=request.data, user=request.user)
        return Response(document.as_json())


class OfferCreateApi(APIView):
    permission_classes = [CanViewOrWrite]

    @extend_schema(responses={200: OfferOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(OfferOutputSerializer(Offer.objects.order_by("name"), many=True).data)

    @extend_schema(request=OfferInputSerializer, responses={201: OfferOutputSerializer})
    def post(self, request: Request) -> Response:
        serializer = OfferInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        offer = offer_save(user=request.user, data=_offer_data(serializer.validated_data))
        return Response(OfferOutputSerializer(offer).data, status=status.HTTP_201_CREATED)


def _offer_data(validated: dict) -> dict:
    data = {key: value for key, value in validated.items() if value not in ("", None)}
    data["price"] = str(validated["price"])
    return data


class OfferDetailApi(APIView):
    permission_classes = [CanViewOrWrite]

    @extend_schema(responses={200: OfferOutputSerializer})
    def get(self, request: Request, offer_id: int) -> Response:
        return Response(OfferOutputSerializer(get_object_or_404(Offer, pk=offer_id)).data)

    @extend_schema(request=OfferInputSerializer, responses={200: OfferOutputSerializer})
    def patch(self, request: Request, offer_id: int) -> Response:
        offer = get_object_or_404(Offer, pk=offer_id)
        current = OfferOutputSerializer(offer).data
        serializer = OfferInputSerializer(data={**current, **request.data})
        serializer.is_valid(raise_exception=True)
        offer = offer_save(user=request.user, data=_offer_data(serializer.validated_data), offer=offer)
        return Response(OfferOutputSerializer(offer).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, offer_id: int) -> Response:
        catalog_entry_delete(user=request.user, entry=get_object_or_404(Offer, pk=offer_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class FaqCreateApi(APIView):
    permission_classes = [CanViewOrWrite]

    @extend_schema(responses={200: FaqSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(FaqSerializer(FaqEntry.objects.order_by("question", "id"), many=True).data)

    @extend_schema(request=FaqSerializer, responses={201: FaqSerializer})
    def post(self, request: Request) -> Response:
        serializer = FaqSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entry = faq_save(user=request.user, **serializer.validated_data)
        return Response(FaqSerializer(entry).data, status=status.HTTP_201_CREATED)


class FaqDetailApi(APIView):
    permission_classes = [CanViewOrWrite]

    @extend_schema(request=FaqSerializer, responses={200: FaqSerializer})
    def patch(self, request: Request, faq_id: int) -> Response:
        entry = get_object_or_404(FaqEntry, pk=faq_id)
        serializer = FaqSerializer(data={**FaqSerializer(entry).data, **request.data})
        serializer.is_valid(raise_exception=True)
        entry = faq_save(user=request.user, entry=entry, **serializer.validated_data)
        return Response(FaqSerializer(entry).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, faq_id: int) -> Response:
        catalog_entry_delete(user=request.user, entry=get_object_or_404(FaqEntry, pk=faq_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CatalogReleaseInputSerializer(serializers.Serializer):
    change_note = serializers.CharField(max_length=500)


class CatalogReleaseOutputSerializer(serializers.Serializer):
    catalog_version = serializers.IntegerField()
    draft_prompt_version = serializers.IntegerField()
    draft_prompt_version_id = serializers.IntegerField()
    stale_examples_flagged = serializers.IntegerField()


class CatalogReleaseApi(APIView):
    """Save the working copy as the next catalog version with a draft prompt version carrying it."""

    permission_classes = [CanViewOrWrite]
    InputSerializer = CatalogReleaseInputSerializer
    OutputSerializer = CatalogReleaseOutputSerializer

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 409: OpenApiResponse(description="The catalog has not changed.")},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        release = catalog_release(user=request.user, change_note=serializer.validated_data["change_note"])
        body = {
            "catalog_version": release.catalog_version.number,
            "draft_prompt_version": release.draft.version,
            "draft_prompt_version_id": release.draft.pk,
            "stale_examples_flagged": release.stale_flagged,
        }
        return Response(self.OutputSerializer(body).data, status=status.HTTP_201_CREATED)


class CatalogVersionOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    change_note = serializers.CharField()
    created_at = serializers.DateTimeField()
    prompt_versions = serializers.ListField(child=serializers.IntegerField())
    changes = serializers.ListField(child=serializers.DictField())


class CatalogVersionListApi(APIView):
    permission_classes = [CanView]
    OutputSerializer = CatalogVersionOutputSerializer

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = [
            {
                "number": row.version.number,
                "change_note": row.version.change_note,
                "created_at": row.version.created_at,
                "prompt_versions": row.prompt_versions,
                "changes": [
                    {"kind": c.old_fact.kind.value, "old": c.old_fact.text, "new": c.new_text}
                    for c in row.changes
                ],
            }
            for row in selectors.catalog_versions_with_changes(limit=50)
        ]
        return Response(self.OutputSerializer(rows, many=True).data)


class StaleExampleOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    training_example_id = serializers.IntegerField()
    catalog_version = serializers.IntegerField(source="catalog_version.number")
    old_fact = serializers.CharField()
    new_fact = serializers.CharField()
    created_at = serializers.DateTimeField()


class StaleExampleListApi(APIView):
    permission_classes = [CanView]
    OutputSerializer = StaleExampleOutputSerializer

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(selectors.stale_examples_open()[:500], many=True).data)
