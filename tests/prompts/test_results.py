"""Each version's results, computed from what the agent records, following the attribution rule."""

from datetime import timedelta

import pytest
from django.utils import timezone

from leads.models import Message
from prompts import selectors, services
from prompts.models import PromptVersionConversation
from tests.factories import ConversationFactory, PromptVersionFactory

pytestmark = pytest.mark.django_db


def results_by_number() -> dict[int, selectors.VersionResults]:
    return {v.version: v.results for v in selectors.prompt_version_list_with_results()}


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(1, 3, 0.0615, 0.7923), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0), (50, 100, 0.4038, 0.5962)],
)
def test_wilson_interval_matches_published_values(successes, trials, low, high):
    got_low, got_high = selectors.wilson_interval(successes=successes, trials=trials)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


def test_wilson_interval_without_trials():
    assert selectors.wilson_interval(successes=0, trials=0) is None


def test_a_version_with_no_replies_has_empty_results(versions):
    figures = results_by_number()[2].all_time
    assert (figures.conversations, figures.qualified, figures.replies, figures.tokens) == (0, 0, 0, 0)
    assert figures.success_rate is None and figures.median_latency_ms is None and figures.interval is None
    assert results_by_number()[2].since_activation is None  # never activated


def test_results_after_simulated_replies_and_a_lead_that_qualified_after_two_versions(versions, reply, ago):
    v1, v2, _ = versions
    both, only_v1, v1_qualifies = ConversationFactory(), ConversationFactory(), ConversationFactory()

    # The lead in `both` heard from v1, then from v2, then qualified: v2 spoke last, v2 gets the credit.
    reply(
        version=v1,
        conversation=both,
        at=ago(minutes=50),
        latency_ms=100,
        prompt_tokens=10,
        completion_tokens=5,
    )
    reply(version=v1, conversation=both, at=ago(minutes=45), latency_ms=300)
    reply(
        version=v2,
        conversation=both,
        at=ago(minutes=40),
        latency_ms=500,
        prompt_tokens=7,
        completion_tokens=None,
    )
    assert (
        services.prompt_version_record_qualification(lead_id=both.lead_id, qualified_at=ago(minutes=39))
        == v2.pk
    )

    reply(version=v1, conversation=only_v1, at=ago(minutes=30), latency_ms=200)
    reply(version=v1, conversation=v1_qualifies, at=ago(minutes=20), latency_ms=1000)
    reply(version=v1, conversation=v1_qualifies, at=ago(minutes=15), latency_ms=None)  # no latency recorded
    assert services.prompt_version_record_qualification(
        lead_id=v1_qualifies.lead_id, qualified_at=ago(minutes=10)
    ) == (v1.pk)
    # Qualifying again changes nothing: a conversation credits one version at most.
    assert (
        services.prompt_version_record_qualification(lead_id=both.lead_id, qualified_at=ago(minutes=5))
        is None
    )

    results = results_by_number()
    one, two = results[1].all_time, results[2].all_time
    assert (one.conversations, one.qualified, one.replies) == (3, 1, 5)
    assert (two.conversations, two.qualified, two.replies) == (1, 1, 1)
    assert one.success_rate == pytest.approx(1 / 3)
    assert two.success_rate == 1.0
    assert one.interval == pytest.approx((0.0615, 0.7923), abs=1e-4)
    # v1 latencies 100, 200, 300, 1000 (one reply without a figure is left out): median 250.
    assert one.median_latency_ms == 250
    assert two.median_latency_ms == 500
    assert one.tokens == (10 + 5) + 4 * (120 + 40)
    assert two.tokens == 7
    # The cached counters on the row agree with the figures computed from the facts.
    v1.refresh_from_db()
    assert (v1.total_conversations, v1.qualified_conversations, v1.total_replies) == (3, 1, 5)
    assert (
        PromptVersionConversation.objects.filter(conversation=both, qualified_at__isnull=False)
        .get()
        .prompt_version
        == v2
    )


def test_odd_count_median(versions, reply, conversation):
    v1 = versions[0]
    for latency in (900, 100, 400):
        reply(version=v1, conversation=conversation, latency_ms=latency)
    assert results_by_number()[1].all_time.median_latency_ms == 400


def test_figures_since_the_version_was_last_activated(versions, reply, manager):
    v1, v2, _ = versions
    old_conversation, new_conversation, returning = (
        ConversationFactory(),
        ConversationFactory(),
        ConversationFactory(),
    )
    before = timezone.now() - timedelta(hours=2)
    reply(version=v2, conversation=old_conversation, at=before, latency_ms=5000)
    services.prompt_version_record_qualification(lead_id=old_conversation.lead_id, qualified_at=before)
    reply(version=v2, conversation=returning, at=before, latency_ms=7000)

    services.prompt_version_activate(version=v2, user=manager)
    reply(version=v2, conversation=new_conversation, latency_ms=300)
    reply(version=v2, conversation=new_conversation, latency_ms=100)
    reply(version=v2, conversation=returning, latency_ms=200)
    services.prompt_version_record_qualification(
        lead_id=new_conversation.lead_id, qualified_at=timezone.now()
    )

    results = results_by_number()[2]
    assert (results.all_time.conversations, results.all_time.qualified, results.all_time.replies) == (3, 2, 5)
    assert results.all_time.median_latency_ms == 300
    since = results.since_activation
    assert (since.conversations, since.qualified, since.replies) == (2, 1, 3)
    assert since.median_latency_ms == 200
    assert since.tokens == 3 * 160
    # v1 was active before and has no replies since.
    assert results_by_number()[1].since_activation.replies == 0


def test_only_agent_replies_count(versions, reply, conversation):
    from tests.factories import MessageFactory

    reply(version=versions[0], conversation=conversation)
    MessageFactory(conversation=conversation, latency_ms=99999)  # a lead's message
    assert results_by_number()[1].all_time.replies == 1
    assert results_by_number()[1].all_time.median_latency_ms == 850


def test_results_take_three_queries_however_many_versions(django_assert_num_queries, reply):
    conversation = ConversationFactory()
    for number in range(1, 8):
        version = PromptVersionFactory(version=number, activated_at=timezone.now())
        for _ in range(number % 3 + 1):
            reply(version=version, conversation=conversation, latency_ms=number * 10)
    with django_assert_num_queries(3):
        listed = selectors.prompt_version_list_with_results()
    assert [v.version for v in listed] == [7, 6, 5, 4, 3, 2, 1]
    assert all(v.results.all_time.replies == v.version % 3 + 1 for v in listed)
    assert Message.objects.count() == sum(n % 3 + 1 for n in range(1, 8))
