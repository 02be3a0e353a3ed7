"""The catalog page: offers and FAQ (managers edit, everyone reads), release, versions, stale examples."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.views import View

from agent.catalog import selectors
from agent.catalog.models import StaleExample
from agent.catalog.services import catalog_release, stale_example_resolve
from config.errors import ServiceError
from leads import roles
from prompts.catalog.models import FaqEntry, Offer
from prompts.catalog.selectors import catalog_document, catalog_version_in_force
from prompts.catalog.services import catalog_entry_delete, catalog_import, faq_save, offer_save

OFFER_FIELDS = (
    "name",
    "description",
    "price",
    "currency",
    "billing_terms",
    "included",
    "booking_url",
    "payment_url",
    "info_url",
    "valid_from",
    "valid_until",
)
MAX_IMPORT_BYTES = 2 * 1024 * 1024


def _errors_text(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


class CatalogView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_CATALOG

    def get(self, request):
        return render(request, "catalog/catalog.html", self._context(request))

    def _context(self, request, **extra):
        return {
            "offers": list(Offer.objects.order_by("name")),
            "faq": list(FaqEntry.objects.order_by("question", "id")),
            "in_force": catalog_version_in_force(),
            "versions": selectors.catalog_versions_with_changes(limit=10),
            "stale": list(selectors.stale_examples_open()[:50]),
            "can_edit": request.user.has_perm(roles.PERM_EDIT_CATALOG),
            "can_publish": request.user.has_perm(roles.PERM_PUBLISH_CATALOG),
            "offer_fields": OFFER_FIELDS,
            **extra,
        }

    def post(self, request):
        action = request.POST.get("action", "")
        handlers = {
            "save_offer": self._save_offer,
            "delete_offer": self._delete_offer,
            "save_faq": self._save_faq,
            "delete_faq": self._delete_faq,
            "release": self._release,
            "resolve_stale": self._resolve_stale,
            "import": self._import,
        }
        handler = handlers.get(action)
        if handler is None:
            messages.error(request, "That action could not be understood.")
            return redirect("dashboard:catalog")
        try:
            response = handler(request)
            if response is not None:
                return response
        except PermissionDenied as exc:
            messages.error(request, str(exc) or "Your role may not do this.")
        except ValidationError as exc:
            messages.error(request, _errors_text(exc))
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard:catalog")

    def _save_offer(self, request):
        offer = None
        if request.POST.get("offer_id"):
            offer = get_object_or_404(Offer, pk=request.POST["offer_id"])
        data = {name: request.POST.get(name, "").strip() for name in OFFER_FIELDS}
        data = {key: value for key, value in data.items() if value != "" or key in ("name", "price")}
        saved = offer_save(user=request.user, data=data, offer=offer)
        messages.success(request, f"Saved “{saved.name}”. Release the catalog to put it in front of leads.")

    def _delete_offer(self, request):
        offer = get_object_or_404(Offer, pk=request.POST.get("offer_id"))
        catalog_entry_delete(user=request.user, entry=offer)
        messages.success(request, f"Removed “{offer.name}” from the working copy.")

    def _save_faq(self, request):
        entry = None
        if request.POST.get("faq_id"):
            entry = get_object_or_404(FaqEntry, pk=request.POST["faq_id"])
        faq_save(
            user=request.user,
            question=request.POST.get("question", ""),
            answer=request.POST.get("answer", ""),
            tags=request.POST.get("tags", ""),
            entry=entry,
        )
        messages.success(request, "Saved the FAQ entry.")

    def _delete_faq(self, request):
        entry = get_object_or_404(FaqEntry, pk=request.POST.get("faq_id"))
        catalog_entry_delete(user=request.user, entry=entry)
        messages.success(request, "Removed the FAQ entry.")

    def _release(self, request):
        release = catalog_release(user=request.user, change_note=request.POST.get("change_note", ""))
        messages.success(
            request,
            f"Catalog v{release.catalog_version.number} saved with draft prompt v{release.draft.version}: "
            f"ask for its release below. "
            f"{release.stale_flagged} approved example{pluralize(release.stale_flagged)} "
            f"quote{pluralize(release.stale_flagged, 's,')} a changed fact "
            f"and wait{pluralize(release.stale_flagged, 's,')} for re-review.",
        )
        return redirect("dashboard:prompt_version", version_id=release.draft.pk)

    def _resolve_stale(self, request):
        if not request.user.has_perm("agent.change_staleexample"):
            raise PermissionDenied("Your role may not re-review examples.")
        flag = get_object_or_404(StaleExample, pk=request.POST.get("stale_id"))
        stale_example_resolve(flag=flag, user=request.user)
        messages.success(request, "Marked as re-reviewed.")

    def _import(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ValidationError({"file": "Choose a JSON file exported from this page."})
        if upload.size > MAX_IMPORT_BYTES:
            raise ValidationError({"file": "The file is larger than 2 MB."})
        try:
            data = json.loads(upload.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError({"file": f"Not a JSON file: {exc}"}) from exc
        document = catalog_import(data=data, user=request.user)
        messages.success(
            request, f"Imported {len(document.offers)} offers and {len(document.faq)} FAQ entries."
        )


class CatalogExportView(LoginRequiredMixin, PermissionRequiredMixin, View):
    permission_required = roles.PERM_VIEW_CATALOG

    def get(self, request):
        body = json.dumps(catalog_document().as_json(), indent=2, ensure_ascii=False)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="catalog.json"'
        return response
