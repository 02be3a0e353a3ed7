import datetime as dt

import pytest
from django.core.management import call_command
from django.db.models import Count, Max, Min, Q

from bench.dataset.generator import Command
from leads.models import Activity, Conversation, Lead, Message
from prompts.models import PromptVersion, PromptVersionConversation
from training.insights.selectors import HANDOFF_VERBS, InsightsFilter, training_insights
from training.models import TrainingExample

pytestmark = pytest.mark.django_db

NOW = "2026-06-01T00:00:00+00:00"


def generate(**options):
    call_command(
        Command(),
        leads=options.get("leads", 150),
        messages=options.get("messages", 3000),
        examples=options.get("examples", 150),
        versions=options.get("versions", 4),
        seed=options.get("seed", 7),
        now=NOW,
        no_progress=True,
    )


def test_generates_the_requested_sizes_with_consistent_facts():
    generate()

    assert Lead.objects.count() == 150
    assert Message.objects.count() == 3000
    assert TrainingExample.objects.count() == 150
    assert PromptVersion.objects.count() == 4
    assert PromptVersion.objects.filter(is_active=True).count() == 1
    end = dt.datetime.fromisoformat(NOW)
    assert Message.objects.aggregate(m=Max("created_at"))["m"] < end
    # Every fact matches the replies its version wrote in that conversation.
    for fact in PromptVersionConversation.objects.all():
        replies = Message.objects.filter(
            conversation_id=fact.conversation_id, prompt_version_id=fact.prompt_version_id, role="agent"
        ).aggregate(first=Min("created_at"), last=Max("created_at"), n=Count("id"))
        assert replies["n"] > 0
        assert (replies["first"], replies["last"]) == (fact.first_reply_at, fact.last_reply_at)
    pairs = set(
        Message.objects.filter(role="agent").values_list("conversation_id", "prompt_version_id").distinct()
    )
    assert pairs == set(PromptVersionConversation.objects.values_list("conversation_id", "prompt_version_id"))
    # Qualified leads are credited to exactly one version; other leads to none.
    qualified_leads = set(
        Lead.objects.filter(status__in=["qualified", "converted"]).values_list("id", flat=True)
    )
    credited = set(
        Conversation.objects.filter(prompt_version_facts__qualified_at__isnull=False).values_list(
            "lead_id", flat=True
        )
    )
    assert qualified_leads == credited
    # The cached counters agree with the facts.
    for version in PromptVersion.objects.annotate(
        n=Count("conversation_facts"),
        q=Count("conversation_facts", filter=Q(conversation_facts__qualified_at__isnull=False)),
    ):
        assert (version.total_conversations, version.qualified_conversations) == (version.n, version.q)
    # Every decided example has a reviewer and a decision after its submission.
    for example in TrainingExample.objects.exclude(status="pending"):
        assert example.decided_by_id is not None and example.decided_at >= example.created_at
    flagged = TrainingExample.objects.filter(message__isnull=False).select_related("message")
    assert all(e.ai_response == e.message.text and e.message.role == "agent" for e in flagged)
    assert Activity.objects.filter(verb__in=HANDOFF_VERBS).exclude(data__reason="").exists()


def test_the_generated_data_feeds_every_figure():
    generate(leads=120, messages=2400, examples=300)
    insights = training_insights(f=InsightsFilter(start=dt.date(2025, 6, 1), end=dt.date(2026, 5, 31)))
    assert insights["examples"]["total"] == 300
    assert 0.5 < insights["examples"]["approval_rate"] < 1
    assert insights["review_time"]["median_seconds"] > 0
    assert len(insights["top_submitters"]) >= 3 and len(insights["top_reviewers"]) >= 2
    assert insights["top_feedback"] and insights["top_flagged_replies"]
    assert sum(v["conversations"] for v in insights["prompt_versions"]) > 0
    assert sum(s["count"] for s in insights["lead_funnel"]) == 120
    assert insights["handoffs"]["total"] > 0


def test_same_seed_same_data():
    generate(leads=20, messages=300, examples=40, versions=2, seed=3)
    first = list(Message.objects.order_by("id").values_list("role", "text", "created_at"))
    Lead.objects.all().delete()
    TrainingExample.objects.all().delete()
    Message.objects.all().delete()
    PromptVersion.objects.all().delete()
    generate(leads=20, messages=300, examples=40, versions=2, seed=3)
    assert list(Message.objects.order_by("id").values_list("role", "text", "created_at")) == first


def test_rejects_impossible_sizes():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        generate(leads=10, messages=5)
