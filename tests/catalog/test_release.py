"""The catalog released with a prompt version: publish, stale examples, examples left out, rollback."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from agent.catalog.models import StaleExample
from agent.catalog.services import catalog_release, examples_grounded, reply_ground
from config.errors import Conflict
from prompts.catalog.models import CatalogVersion, Offer
from prompts.catalog.selectors import catalog_block, catalog_document, catalog_version_in_force
from prompts.catalog.services import catalog_import, offer_save
from prompts.services import prompt_version_activate, prompt_version_rollback
from tests.factories import PromptVersionFactory, TrainingExampleFactory
from training.models import TrainingExample

pytestmark = pytest.mark.django_db

DOCUMENT = {
    "offers": [
        {
            "name": "Starter coaching",
            "price": "129",
            "currency": "USD",
            "billing_terms": "per month",
            "booking_url": "https://cal.com/acme/intro",
        },
        {"name": "Premium", "price": "2000", "currency": "EUR", "billing_terms": "one-time"},
    ],
    "faq": [
        {"question": "Can I cancel?", "answer": "Yes, any time, with 30 days notice.", "tags": ["contract"]}
    ],
}


@pytest.fixture
def live(manager):
    """Prompt v1 active with catalog v1 (Starter at 129)."""
    PromptVersionFactory(version=1, is_active=True, content="You are Ava.", model_name="gpt-test")
    catalog_import(data=DOCUMENT, user=manager)
    release = catalog_release(user=manager, change_note="First catalog")
    prompt_version_activate(version=release.draft, user=manager)
    return release


def _approved(text: str):
    # The decision time's field is being renamed (approved_at -> decided_at): use whichever exists.
    decided = "decided_at" if hasattr(TrainingExample, "decided_at") else "approved_at"
    return TrainingExampleFactory(
        ai_response=text,
        expected_response="",
        example_type="good",
        status="approved",
        **{decided: timezone.now()},
    )


def test_release_makes_a_draft_that_carries_the_catalog_and_the_model_settings(live):
    assert live.catalog_version.number == 1
    assert live.draft.catalog_version_id == live.catalog_version.pk
    assert live.draft.content == "You are Ava."
    assert live.draft.model_name == "gpt-test"
    assert catalog_version_in_force() == live.catalog_version


def test_publishing_an_unchanged_catalog_is_a_conflict_and_a_note_is_required(live, manager):
    with pytest.raises(Conflict, match="same as catalog v1"):
        catalog_release(user=manager, change_note="again")
    with pytest.raises(ValidationError, match="Say what changed"):
        catalog_release(user=manager, change_note=" ")


def test_operators_read_but_may_not_edit_or_publish(live, operator):
    with pytest.raises(PermissionDenied):
        offer_save(user=operator, data={"name": "X", "price": "1"})
    with pytest.raises(PermissionDenied):
        catalog_release(user=operator, change_note="x")


def test_import_refuses_a_bad_document_whole(manager, live):
    before = list(Offer.objects.values_list("name", flat=True))
    with pytest.raises(ValidationError) as raised:
        catalog_import(data={"offers": [{"name": "Bad", "price": "-1", "currency": "usd"}]}, user=manager)
    assert "offers.0.price" in raised.value.message_dict and "offers.0.currency" in raised.value.message_dict
    assert list(Offer.objects.values_list("name", flat=True)) == before


def test_a_reply_with_an_invented_price_is_not_grounded(live):
    version = live.draft
    assert reply_ground(reply="Starter is $129 a month", prompt_version=version).ok
    result = reply_ground(
        reply="Starter is $149 a month, book https://cal.com/acme/intro", prompt_version=version
    )
    assert [fact.text for fact in result.ungrounded] == ["$149"]
    # No catalog released with a version: nothing to check against, nothing refused.
    assert reply_ground(reply="$149", prompt_version=PromptVersionFactory()).ok


def test_a_price_change_flags_exactly_the_examples_that_quote_the_old_price(live, manager):
    quoting = _approved("Starter is $129 per month, want to book?")
    quoting_written = _approved("It is 129 USD a month")
    other = _approved("Premium is 2.000 EUR one time")
    unrelated = _approved("We meet 129 people a year")  # a count, not the price
    pending = TrainingExampleFactory(ai_response="Starter is $129 per month", status="pending")

    starter = Offer.objects.get(name="Starter coaching")
    offer_save(user=manager, offer=starter, data={**DOCUMENT["offers"][0], "price": "149"})
    release = catalog_release(user=manager, change_note="Starter now 149")

    flagged = set(StaleExample.objects.values_list("training_example_id", flat=True))
    assert flagged == {quoting.pk, quoting_written.pk}
    assert release.stale_flagged == 2
    flag = StaleExample.objects.filter(training_example=quoting).get()
    assert flag.old_fact == "129 USD" and flag.new_fact == "149 USD"
    assert other.pk not in flagged and unrelated.pk not in flagged and pending.pk not in flagged

    # Live on the new catalog, the old-price examples leave the model input at once; rollback restores both.
    examples = [quoting, quoting_written, other, unrelated]
    prompt_version_activate(version=release.draft, user=manager)
    kept = examples_grounded(examples=examples, prompt_version=release.draft)
    assert quoting not in kept and quoting_written not in kept and other in kept
    assert "149 USD" in catalog_block(catalog_version=release.catalog_version, text="how much?")

    prompt_version_rollback(version=live.draft, user=manager)
    assert catalog_version_in_force() == live.catalog_version
    assert "129 USD" in catalog_block(catalog_version=catalog_version_in_force(), text="how much?")
    assert quoting in examples_grounded(examples=examples, prompt_version=live.draft)


def test_an_expired_offer_is_neither_shown_nor_allowed(manager):
    PromptVersionFactory(version=1, is_active=True)
    catalog_import(
        data={
            "offers": [
                {"name": "Black Friday", "price": "99", "valid_until": "2020-11-30"},
                {"name": "Starter", "price": "129"},
            ]
        },
        user=manager,
    )
    release = catalog_release(user=manager, change_note="with an expired offer")
    block = catalog_block(catalog_version=release.catalog_version, text="black friday deal?")
    assert "Black Friday" not in block and "Starter" in block
    assert not reply_ground(reply="Black Friday is $99", prompt_version=release.draft).ok


def test_export_round_trips(live, manager):
    exported = catalog_document().as_json()
    catalog_import(data=exported, user=manager)
    assert catalog_document().as_json() == exported
    assert Decimal(exported["offers"][1]["price"]) == Decimal("129")
    assert CatalogVersion.objects.count() == 1
