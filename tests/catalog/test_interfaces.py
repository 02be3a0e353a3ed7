"""The catalog page, its API and admin: roles, errors, and a release through the page."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from agent.catalog.models import StaleExample
from prompts.catalog.models import CatalogVersion, Offer
from prompts.models import PromptVersion
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db

OFFER = {"name": "Starter", "price": "129", "currency": "USD", "billing_terms": "per month"}


@pytest.fixture(autouse=True)
def active(db):
    return PromptVersionFactory(version=1, is_active=True, content="You are Ava.")


def test_everyone_reads_the_page_and_only_managers_see_the_editors(client, viewer, manager):
    Offer.objects.create(name="Starter", price=129)
    client.force_login(viewer)
    page = client.get("/dashboard/catalog/")
    assert page.status_code == 200
    assert (
        b"Starter" in page.content
        and b"Add an offer" not in page.content
        and b"Release the catalog" not in page.content
    )
    client.force_login(manager)
    page = client.get("/dashboard/catalog/")
    assert b"Add an offer" in page.content and b"Release the catalog" in page.content


def test_a_manager_edits_and_releases_through_the_page(client, manager):
    client.force_login(manager)
    response = client.post("/dashboard/catalog/", {"action": "save_offer", **OFFER}, follow=True)
    assert "Saved “Starter”" in response.content.decode()
    response = client.post(
        "/dashboard/catalog/", {"action": "release", "change_note": "First prices"}, follow=True
    )
    body = response.content.decode()
    assert "Catalog v1 saved with draft prompt v2" in body
    draft = PromptVersion.objects.get(version=2)
    assert draft.catalog_version.number == 1 and not draft.is_active
    # The manager lands on the draft, where it is asked for release.
    assert response.redirect_chain[-1][0] == f"/dashboard/training/prompt/versions/{draft.pk}/"


def test_page_errors_name_the_field_and_write_nothing(client, manager):
    client.force_login(manager)
    response = client.post(
        "/dashboard/catalog/", {"action": "save_offer", "name": "X", "price": "-5"}, follow=True
    )
    assert "price" in response.content.decode()
    assert not Offer.objects.exists()
    response = client.post("/dashboard/catalog/", {"action": "release", "change_note": ""}, follow=True)
    assert "Say what changed" in response.content.decode()
    assert not CatalogVersion.objects.exists()


def test_import_and_export_round_trip_through_the_page(client, manager):
    client.force_login(manager)
    document = {"offers": [OFFER], "faq": [{"question": "Cancel?", "answer": "Any time.", "tags": []}]}
    upload = SimpleUploadedFile(
        "catalog.json", json.dumps(document).encode(), content_type="application/json"
    )
    response = client.post("/dashboard/catalog/", {"action": "import", "file": upload}, follow=True)
    assert "Imported 1 offers and 1 FAQ entries" in response.content.decode()
    exported = client.get("/dashboard/catalog/export.json")
    assert exported["Content-Disposition"] == 'attachment; filename="catalog.json"'
    assert json.loads(exported.content)["offers"][0]["name"] == "Starter"
    bad = SimpleUploadedFile("x.json", b"{not json", content_type="application/json")
    response = client.post("/dashboard/catalog/", {"action": "import", "file": bad}, follow=True)
    assert "Not a JSON file" in response.content.decode()
    assert Offer.objects.count() == 1


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), ("operator", 403), ("manager", 201)])
def test_api_roles_for_writes(api, make_user, role, status):
    client = api(make_user(role))
    assert client.get("/api/catalog/").status_code == 200
    assert client.post("/api/catalog/offers/", OFFER, format="json").status_code == status


def test_api_release_conflict_and_stale_listing(api, manager):
    client = api(manager)
    assert client.post("/api/catalog/offers/", OFFER, format="json").status_code == 201
    first = client.post("/api/catalog/release/", {"change_note": "v1"}, format="json")
    assert first.status_code == 201 and first.json()["catalog_version"] == 1
    again = client.post("/api/catalog/release/", {"change_note": "again"}, format="json")
    assert again.status_code == 409 and "catalog" in again.json()
    missing = client.post("/api/catalog/release/", {}, format="json")
    assert missing.status_code == 400 and "change_note" in missing.json()
    bad = client.put("/api/catalog/", {"offers": [{"name": "", "price": "x"}]}, format="json")
    assert bad.status_code == 400 and "offers.0.name" in bad.json()
    assert client.get("/api/catalog/versions/").json()[0]["number"] == 1
    assert client.get("/api/catalog/stale-examples/").json() == []
    assert StaleExample.objects.count() == 0


def test_admin_lists_the_catalog_read_only_versions(admin_client):
    Offer.objects.create(name="Starter", price=129)
    assert admin_client.get("/admin/prompts/offer/").status_code == 200
    assert admin_client.get("/admin/prompts/catalogversion/").status_code == 200
    assert admin_client.get("/admin/prompts/catalogversion/add/").status_code == 403
