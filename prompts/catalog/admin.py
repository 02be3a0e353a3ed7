"""Admin for the catalog: the working copy through the same services as the page, versions read-only."""

from django.contrib import admin
from django.core.exceptions import ValidationError

from prompts.catalog.models import CatalogVersion, FaqEntry, Offer
from prompts.catalog.services import faq_save, offer_save


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "currency", "billing_terms", "valid_from", "valid_until", "updated_at")
    search_fields = ("name", "description", "included")
    list_filter = ("currency",)

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        data = {key: value for key, value in form.cleaned_data.items() if value not in ("", None)}
        data["price"] = str(form.cleaned_data["price"])
        try:
            saved = offer_save(user=request.user, data=data, offer=obj if change else None)
        except ValidationError as exc:  # the form already validated; the service has the last word
            raise ValidationError(exc.messages) from exc
        obj.pk = saved.pk


@admin.register(FaqEntry)
class FaqEntryAdmin(admin.ModelAdmin):
    list_display = ("question", "tags", "updated_at")
    search_fields = ("question", "answer", "tags")

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        data = form.cleaned_data
        saved = faq_save(
            user=request.user,
            question=data["question"],
            answer=data["answer"],
            tags=data.get("tags", ""),
            entry=obj if change else None,
        )
        obj.pk = saved.pk


@admin.register(CatalogVersion)
class CatalogVersionAdmin(admin.ModelAdmin):
    """Released versions never change: published from the catalog page, read here."""

    list_display = ("number", "change_note", "created_by", "created_at")
    readonly_fields = ("number", "snapshot", "change_note", "created_by", "created_at")
    list_select_related = ("created_by",)

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
