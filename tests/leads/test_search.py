"""The leads list and API find a lead by what a person types: full name, @handle, email, phone, id."""

import pytest

from leads import selectors
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "term",
    ["Sofia Marchetti", "sofia marchetti", "@sofia_m", "SOFIA_M", "sofia@example.it", "+39 333", "778899"],
)
def test_the_leads_list_finds_a_lead_by_what_a_person_types(term):
    sofia = LeadFactory(
        first_name="Sofia",
        last_name="Marchetti",
        username="sofia_m",
        phone="+39 333 123 4567",
        email="sofia@example.it",
        manychat_subscriber_id="778899",
    )
    LeadFactory(first_name="Marco", last_name="Rossi", username="marco", phone="", email="m@example.com")
    assert [lead.pk for lead in selectors.lead_list(search=term)] == [sofia.pk]


@pytest.mark.parametrize("term", ["%", "a_b", "Sofia%Rossi"])
def test_like_wildcards_in_a_search_are_literal(term):
    LeadFactory(first_name="Sofia", last_name="Marchetti", username="sofia_m")
    assert list(selectors.lead_list(search=term)) == []


@pytest.mark.parametrize("rows", [2, 20])
def test_a_searched_list_is_one_query_whatever_the_rows(rows, django_assert_num_queries):
    for i in range(rows):
        LeadFactory(first_name=f"Sofia{i}")
    with django_assert_num_queries(1):
        found = list(selectors.lead_list(search="sofia"))
    assert len(found) == rows
