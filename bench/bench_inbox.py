"""Time the inbox's queues and search on the generated dataset, with their query counts.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inbox_bench .venv/bin/python bench/generate_dataset.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/inbox_bench .venv/bin/python bench/bench_inbox.py

Every figure goes through the whole Django stack (test client, session auth, permissions, the page or the
API, template rendering). The baseline, measured in the same run and alternating with the inbox, is the
leads list page with the same search (its old icontains search over names, handle, email and phone; it
cannot search message words). Target on the 2-core machine: median under 150 ms for each inbox figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from leads.models import Lead, Message, MessageRole  # noqa: E402


def _operator():
    user, _ = get_user_model().objects.get_or_create(
        username="bench_inbox_operator", defaults={"is_staff": True, "email": "bench@example.com"}
    )
    user.groups.add(Group.objects.get(name="operator"))
    return user


def _prepare() -> None:
    """Leads the generator handed to a person wait since their last update (what the migration backfills)."""
    Lead.objects.filter(needs_human=True, waiting_since__isnull=True).update(waiting_since=F("updated_at"))


def _cases(operator) -> list[tuple[str, str, str | None]]:
    """(label, inbox url, baseline url or None)."""
    lead = Lead.objects.exclude(last_name="").exclude(email="").order_by("id")[Lead.objects.count() // 4]
    if not lead.phone:  # the generator writes no phone numbers: give this one lead one to look for
        lead.phone = "+44 7700 900123"
        Lead.objects.filter(pk=lead.pk).update(phone=lead.phone)
    Lead.objects.filter(pk__in=Lead.objects.order_by("id").values("pk")[:300]).update(assignee=operator)
    words = (
        Message.objects.filter(role=MessageRole.LEAD, conversation__lead=lead)
        .values_list("text", flat=True)
        .first()
        or "price"
    ).split()
    rare_word = max(words, key=len).strip(".,!?")
    searches = {
        "search full name": f"{lead.first_name} {lead.last_name}",
        "search @handle": f"@{lead.username}",
        "search phone": lead.phone,
        "search email": lead.email or lead.username,
        "search subscriber id": lead.manychat_subscriber_id,
        "search a message word": rare_word,
        "search a common word": "price",
    }
    cases: list[tuple[str, str, str | None]] = [
        ("queue needs a person", "/dashboard/inbox/?queue=needs_person", None),
        ("queue mine", "/dashboard/inbox/?queue=mine", None),
        ("queue unassigned", "/dashboard/inbox/?queue=unassigned", "/dashboard/leads/"),
        ("queue all open", "/dashboard/inbox/?queue=open", "/dashboard/leads/"),
        ("queue all open, sorted by name", "/dashboard/inbox/?queue=open&sort=name", None),
        ("api needs a person", "/api/inbox/?queue=needs_person", None),
    ]
    for label, term in searches.items():
        inbox = "/dashboard/inbox/?" + urlencode({"queue": "open", "q": term})
        baseline = None if "word" in label else "/dashboard/leads/?" + urlencode({"q": term})
        cases.append((f"{label} ({term})", inbox, baseline))
    return cases


def _time(client: Client, url: str) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed, len(queries.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    _prepare()
    operator = _operator()
    client = Client()
    client.force_login(operator)
    leads, messages = Lead.objects.count(), Message.objects.count()
    print(f"{connection.vendor}: {leads:,} leads, {messages:,} messages, {args.runs} runs each (median, p90)")
    worst = 0.0
    for label, url, baseline in _cases(operator):
        _time(client, url)  # warm
        if baseline:
            _time(client, baseline)
        times, base_times, count, base_count = [], [], 0, 0
        for _ in range(args.runs):
            elapsed, count = _time(client, url)
            times.append(elapsed)
            if baseline:
                elapsed, base_count = _time(client, baseline)
                base_times.append(elapsed)
        median = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        worst = max(worst, median)
        line = f"{label:<58} {median:7.1f} ms  p90 {p90:7.1f} ms  {count:2d} queries"
        if base_times:
            base = statistics.median(base_times)
            line += f"   | leads list {base:7.1f} ms ({base_count} q), ratio {median / base:4.2f}"
        print(line)
    print(f"worst inbox median {worst:.1f} ms (target < 150 ms): {'met' if worst < 150 else 'MISSED'}")


if __name__ == "__main__":
    main()
