"""The rehearsal's "allowed prices" check can be the catalog: `{"catalog": true}` instead of a list."""

import pytest

from agent.catalog.services import catalog_release
from agent.rehearsal import checks, services
from agent.rehearsal.models import SharedCheck
from prompts.catalog.services import catalog_import
from tests.factories import PromptVersionFactory

pytestmark = pytest.mark.django_db


def test_allowed_prices_come_from_the_version_catalog(manager):
    PromptVersionFactory(version=1, is_active=True)
    catalog_import(
        data={
            "offers": [
                {"name": "Starter", "price": "49", "currency": "EUR"},
                {"name": "Pro", "price": "99", "currency": "EUR"},
                {"name": "Black Friday", "price": "29", "currency": "EUR", "valid_until": "2020-11-30"},
            ]
        },
        user=manager,
    )
    draft = catalog_release(user=manager, change_note="prices").draft
    SharedCheck.objects.create(
        name="Allowed prices", kind="allowed_prices", params={"catalog": True}, never=True
    )
    scenario = services.scenario_create(
        data={"title": "Price shopper", "persona": "Asks for prices.", "opening_messages": ["How much?"]}
    )

    (spec,) = [
        s for s in services._scenario_specs(scenario=scenario, version=draft) if s.kind == "allowed_prices"
    ]
    assert sorted(spec.params["prices"]) == ["49.00 EUR", "99.00 EUR"]  # the expired offer is not allowed

    def verdict(text):
        transcript = [
            {"role": "lead", "turn": 1, "text": "How much?"},
            {"role": "agent", "turn": 1, "text": text},
        ]
        return checks.checks_evaluate(
            specs=[spec], transcript=transcript, channel="instagram", judge_trusted=None
        )

    assert verdict("Starter is €49 a month, Pro €99.").results[0].passed
    failed = verdict("Black Friday deal: just €29!").results[0]
    assert not failed.passed and failed.turn == 1 and "€29" in failed.reason
    # Without a catalog on the version there is no price to allow: any price quoted fails.
    (plain,) = [
        s
        for s in services._scenario_specs(scenario=scenario, version=PromptVersionFactory(version=9))
        if s.kind == "allowed_prices"
    ]
    assert plain.params["prices"] == []
    transcript = [{"role": "agent", "turn": 1, "text": "It is €49."}]
    assert (
        not checks.checks_evaluate(
            specs=[plain], transcript=transcript, channel="instagram", judge_trusted=None
        )
        .results[0]
        .passed
    )
