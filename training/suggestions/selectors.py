"""Themes among the approved corrections and bad examples, and the suggestions made from them."""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations

from django.db.models import Q, QuerySet

from training.models import ExampleStatus, ExampleType, TrainingExample
from training.retrieval.selectors import stems
from training.review.fields import DECIDED_AT
from training.suggestions.models import ImprovementSuggestion

MAX_EXAMPLES = 120
MAX_THEMES = 5
# Average Jaccard similarity of the examples' word stems above which two groups are one theme.
MERGE_THRESHOLD = 0.12
MIN_THEME_SIZE = 2


@dataclass
class Theme:
    name: str
    example_ids: list[int]
    terms: list[str]


def improvement_examples(*, since: datetime | None) -> QuerySet[TrainingExample]:
    """Approved, live corrections and bad examples decided since `since` (the active version's release)."""
    queryset = TrainingExample.objects.filter(
        status=ExampleStatus.APPROVED,
        retired_at__isnull=True,
        example_type__in=[ExampleType.CORRECTION, ExampleType.BAD],
    )
    if since is not None:
        queryset = queryset.filter(**{f"{DECIDED_AT}__gte": since})
    return queryset.order_by(f"-{DECIDED_AT}", "-id")


def _terms(example: TrainingExample) -> set[str]:
    # What the lead asked and what the team said about it; the agent's own words would group by mistake.
    return stems(f"{example.user_message} {example.feedback} {example.expected_response}")


def improvement_themes(*, since: datetime | None, max_themes: int = MAX_THEMES) -> list[Theme]:
    """Average-linkage clustering of the examples' word stems; the biggest `max_themes` groups of at least
    MIN_THEME_SIZE examples, each named after the stems most of its examples share."""
    examples = list(improvement_examples(since=since)[:MAX_EXAMPLES])
    terms = {e.pk: _terms(e) for e in examples}
    clusters: list[list[int]] = [[e.pk] for e in examples]

    def pair(a: int, b: int) -> float:
        left, right = terms[a], terms[b]
        return len(left & right) / len(left | right) if left and right else 0.0

    cache = {(a, b): pair(a, b) for a, b in combinations(terms, 2)}

    def sim(a: int, b: int) -> float:
        return cache.get((a, b), cache.get((b, a), 0.0))

    while len(clusters) > 1:
        best, best_pair = MERGE_THRESHOLD, None
        for i, j in combinations(range(len(clusters)), 2):
            total = sum(sim(a, b) for a in clusters[i] for b in clusters[j])
            score = total / (len(clusters[i]) * len(clusters[j]))
            if score > best:
                best, best_pair = score, (i, j)
        if best_pair is None:
            break
        i, j = best_pair
        clusters[i].extend(clusters.pop(j))
    by_pk = {e.pk: e for e in examples}
    asked = {pk: stems(by_pk[pk].user_message) or terms[pk] for pk in terms}
    everywhere = Counter(term for pk in asked for term in asked[pk])
    themes = []
    for members in sorted(clusters, key=len, reverse=True):
        if len(members) < MIN_THEME_SIZE or len(themes) >= max_themes:
            continue
        # Named after what the leads asked, the words most distinctive of this group first.
        inside = Counter(term for pk in members for term in asked[pk])
        outside = max(1, len(asked) - len(members))
        weight = {t: n / len(members) - (everywhere[t] - n) / outside for t, n in inside.items()}
        common = [t for t, n in inside.items() if n * 2 >= len(members)] or list(inside)
        shared = sorted(common, key=lambda t: (-weight[t], t))[:3]
        themes.append(
            Theme(
                name=", ".join(shared) or f"{len(members)} related corrections",
                example_ids=sorted(members),
                terms=shared,
            )
        )
    return themes


def suggestion_list(*, limit: int = 50) -> list[ImprovementSuggestion]:
    """Evaluated suggestions by measured gain (best first), then the ones still evaluating or failed."""
    rows = list(
        ImprovementSuggestion.objects.select_related("draft_version", "base_version", "created_by")
        .defer("draft_version__content", "base_version__content")
        .order_by("-created_at", "-id")[:limit]
    )
    return sorted(rows, key=lambda s: (s.gain is None, -(s.gain or 0), -s.pk))


def suggestion_get(*, suggestion_id: int) -> ImprovementSuggestion | None:
    return (
        ImprovementSuggestion.objects.select_related("draft_version", "base_version")
        .filter(Q(pk=suggestion_id))
        .first()
    )
