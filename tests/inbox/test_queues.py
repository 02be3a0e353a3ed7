"""Work queues: membership, order, counts, filters, sort, search; pinned query counts."""

import pytest
from django.urls import reverse

from agent.inbox import selectors
from agent.inbox.selectors import InboxFilters, Queue
from leads.models import Channel, LeadStatus
from tests.factories import (
    AgentMessageFactory,
    ConversationFactory,
    LeadFactory,
    MessageFactory,
    PromptVersionFactory,
)
from tests.inbox.conftest import waiting

pytestmark = pytest.mark.django_db


def ids(queryset):
    return [lead.pk for lead in queryset]


def test_needs_a_person_is_oldest_waiting_first(operator):
    recent = LeadFactory(waiting_since=waiting(2), needs_human=True)
    oldest = LeadFactory(waiting_since=waiting(30), needs_human=True)
    middle = LeadFactory(waiting_since=waiting(10), bot_paused=True)
    LeadFactory()  # the bot handles it: not waiting
    assert ids(selectors.inbox_queue(queue=Queue.NEEDS_PERSON, user=operator)) == [
        oldest.pk,
        middle.pk,
        recent.pk,
    ]


def test_mine_unassigned_open_and_counts(operator, manager):
    mine = LeadFactory(assignee=operator)
    theirs = LeadFactory(assignee=manager)
    free = LeadFactory(waiting_since=waiting(5))
    LeadFactory(status=LeadStatus.LOST)  # closed: in no queue
    LeadFactory(status=LeadStatus.CONVERTED, assignee=operator)
    assert ids(selectors.inbox_queue(queue=Queue.MINE, user=operator)) == [mine.pk]
    assert set(ids(selectors.inbox_queue(queue=Queue.UNASSIGNED, user=operator))) == {free.pk}
    assert set(ids(selectors.inbox_queue(queue=Queue.OPEN, user=operator))) == {mine.pk, theirs.pk, free.pk}
    assert selectors.inbox_counts(user=operator) == {"needs_person": 1, "mine": 1, "unassigned": 1, "open": 3}
    assert selectors.inbox_counts(user=manager)["mine"] == 1


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (InboxFilters(channel=Channel.WHATSAPP), {"wa"}),
        (InboxFilters(status=LeadStatus.QUALIFIED), {"qualified"}),
        (InboxFilters(bot="handed_off"), {"handed"}),
        (InboxFilters(bot="paused"), {"paused"}),
        (InboxFilters(bot="taken_over"), {"taken"}),
        (InboxFilters(bot="answering"), {"wa", "qualified", "mine"}),
        (InboxFilters(assignee="none"), {"wa", "qualified", "handed", "paused"}),
    ],
)
def test_filters(operator, filters, expected):
    from django.utils import timezone

    leads = {
        "wa": LeadFactory(channel=Channel.WHATSAPP),
        "qualified": LeadFactory(status=LeadStatus.QUALIFIED),
        "handed": LeadFactory(needs_human=True, bot_paused=True),
        "paused": LeadFactory(bot_paused=True),
        "taken": LeadFactory(
            bot_paused=True, taken_over_by=operator, taken_over_at=timezone.now(), assignee=operator
        ),
        "mine": LeadFactory(assignee=operator),
    }
    names = {pk: name for name, lead in leads.items() for pk in [lead.pk]}
    found = {names[pk] for pk in ids(selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=filters))}
    assert found == expected


def test_filter_by_assignee_id(operator, manager):
    LeadFactory(assignee=operator)
    theirs = LeadFactory(assignee=manager)
    found = selectors.inbox_queue(
        queue=Queue.OPEN, user=operator, filters=InboxFilters(assignee=str(manager.pk))
    )
    assert ids(found) == [theirs.pk]


def test_filter_by_the_version_that_answered_last(operator):
    v1, v2 = PromptVersionFactory(), PromptVersionFactory()
    first_then_second = ConversationFactory()
    AgentMessageFactory(conversation=first_then_second, prompt_version=v1)
    AgentMessageFactory(conversation=first_then_second, prompt_version=v2)
    only_first = ConversationFactory()
    AgentMessageFactory(conversation=only_first, prompt_version=v1)
    by_v1 = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(version=v1.version))
    by_v2 = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(version=v2.version))
    assert ids(by_v1) == [only_first.lead_id]
    assert ids(by_v2) == [first_then_second.lead_id]
    assert by_v2[0].last_version == v2.version


@pytest.mark.parametrize(
    ("sort", "expected"),
    [("name", ["Ana", "Bea", "Cy"]), ("-name", ["Cy", "Bea", "Ana"]), ("waiting", ["Bea", "Cy", "Ana"])],
)
def test_sort(operator, sort, expected):
    LeadFactory(first_name="Cy", waiting_since=waiting(5))
    LeadFactory(first_name="Ana", waiting_since=waiting(1))
    LeadFactory(first_name="Bea", waiting_since=waiting(9))
    found = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(sort=sort))
    assert [lead.first_name for lead in found] == expected


@pytest.mark.parametrize(
    "search",
    [
        "Sofia Marchetti",
        "sofia marchetti",
        "@sofia_m",
        "sofia_m",
        "+39 333 123 4567",
        "3331234567",
        "sofia@example.it",
        "778899",
        "tiramisu",
    ],
)
def test_search_finds_a_lead_by_every_handle(operator, search):
    sofia = LeadFactory(
        first_name="Sofia",
        last_name="Marchetti",
        username="sofia_m",
        phone="+39 333 123 4567" if search != "3331234567" else "3331234567",
        email="sofia@example.it",
        manychat_subscriber_id="778899",
    )
    MessageFactory(conversation=ConversationFactory(lead=sofia), text="Do you sell tiramisu classes?")
    other = LeadFactory(
        first_name="Marco", last_name="Rossi", username="marco", phone="", email="m@example.com"
    )
    MessageFactory(conversation=ConversationFactory(lead=other), text="Just pasta please")
    found = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(search=search))
    assert ids(found) == [sofia.pk]


def test_search_by_message_words_in_any_order(operator):
    lead = LeadFactory()
    MessageFactory(conversation=ConversationFactory(lead=lead), text="I need a refund for my order")
    LeadFactory()
    found = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(search="refund"))
    assert ids(found) == [lead.pk]


def _rows(count: int, operator) -> None:
    version = PromptVersionFactory()
    for i in range(count):
        lead = LeadFactory(
            waiting_since=waiting(i + 1), needs_human=True, assignee=operator if i % 2 else None
        )
        conversation = ConversationFactory(lead=lead)
        asked = MessageFactory(conversation=conversation)
        AgentMessageFactory(conversation=conversation, in_reply_to=asked, prompt_version=version)


@pytest.mark.parametrize("rows", [2, 20])
def test_inbox_page_query_count_is_pinned(client, operator, django_assert_num_queries, rows):
    _rows(rows, operator)
    client.force_login(operator)
    url = reverse("dashboard:inbox") + "?queue=needs_person&q=Lead"
    # session, user, 2 permission loads, role, unread bell, counts, page count, rows, the permission
    # behind the people picker, people, versions
    with django_assert_num_queries(12):
        response = client.get(url)
    assert response.status_code == 200
    assert len(response.context["leads"]) == min(rows, 25)


@pytest.mark.parametrize("rows", [2, 30])
def test_an_unfiltered_queue_is_not_counted_twice(client, operator, django_assert_num_queries, rows):
    _rows(rows, operator)
    client.force_login(operator)
    with django_assert_num_queries(11):  # the queue counts give the page count
        response = client.get(reverse("dashboard:inbox") + "?queue=needs_person&sort=-waiting")
    assert response.context["page"].paginator.count == rows
    assert response.context["page"].paginator.num_pages == (rows + 24) // 25


@pytest.mark.parametrize("rows", [2, 20])
def test_inbox_api_query_count_is_pinned(api, operator, django_assert_num_queries, rows):
    _rows(rows, operator)
    client = api(operator)
    with django_assert_num_queries(5):
        response = client.get("/api/inbox/?queue=needs_person")
    assert response.status_code == 200
    assert response.data["count"] == rows
    assert response.data["counts"]["needs_person"] == rows
    waits = [row["waiting_since"] for row in response.data["results"]]
    assert waits == sorted(waits)


def test_inbox_page_lists_the_queue_with_waiting_time(client, operator):
    lead = LeadFactory(first_name="Lena", last_name="Park", waiting_since=waiting(12), needs_human=True)
    client.force_login(operator)
    response = client.get(reverse("dashboard:inbox"))
    body = response.content.decode()
    assert response.status_code == 200
    assert f'data-lead-id="{lead.pk}"' in body
    assert "12\xa0minutes ago" in body
    assert 'data-testid="count-needs_person">1<' in body


def test_bad_filter_input_is_ignored_on_the_page_and_a_400_in_the_api(client, api, operator):
    client.force_login(operator)
    assert client.get(reverse("dashboard:inbox") + "?assignee=x&version=-1&sort=zzz").status_code == 200
    response = api(operator).get("/api/inbox/?queue=nope")
    assert response.status_code == 400
    assert "queue" in response.data


def test_viewer_may_read_the_queues(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("dashboard:inbox")).status_code == 200


@pytest.mark.parametrize("term", ["ana@example.org", "@ana_k", "+34 600 111 222"])
def test_an_identifier_names_a_lead_and_is_not_looked_for_in_messages(operator, term):
    ana = LeadFactory(email="ana@example.org", username="ana_k", phone="+34 600 111 222")
    other = LeadFactory(email="", username="bob", phone="")
    MessageFactory(conversation=ConversationFactory(lead=other), text=f"my friend is {term}")
    found = selectors.inbox_queue(queue=Queue.OPEN, user=operator, filters=InboxFilters(search=term))
    assert ids(found) == [ana.pk]
