"""Time every dashboard page and list API on the generated dataset, with their query counts.

    createdb -h 127.0.0.1 -U postgres -T bench_data bench_me      # a copy of the generated dataset
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_me .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_me .venv/bin/python bench/bench_pages.py

Every figure goes through the whole Django stack: the test client, the session of a signed-in manager,
the middleware, permissions, the view or API, template rendering. The baseline, measured in the same run
and interleaved with the pages (each round times the baseline, then every page; the order of the pages is
reversed every other round), is a trivial page through the same stack: the password-change-done page
(login required, a template, no query of its own). Prints each page's median, p95, query count and ratio
to the baseline, and flags every median over its target (200 ms; 150 ms for the inbox's queues and
searches).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")  # a local tool: the development settings

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from leads.models import Lead, Message, MessageRole  # noqa: E402
from prompts.models import PromptVersion  # noqa: E402
from training.models import TrainingExample  # noqa: E402

PAGE_TARGET_MS = 200.0
INBOX_TARGET_MS = 150.0
BASELINE = "/accounts/password_change/done/"


@dataclass
class Case:
    label: str
    url: str
    target: float = PAGE_TARGET_MS
    admin: bool = False  # a page only admins may open: timed with an admin's session
    times: list[float] = field(default_factory=list)
    queries: int = 0
    status: int = 0


def _user(group: str):
    user = get_user_model().objects.filter(groups__name=group).order_by("id").first()
    if user is None:
        sys.exit(f"No {group} in this database: run bench/generate_dataset.py first.")
    return user


def _prepare(manager) -> None:
    """What the generator leaves out and the inbox needs (as bench/bench_inbox.py does): leads handed to
    a person wait since their last update (what leads/0005_inbox backfills), 300 leads are the manager's."""
    Lead.objects.filter(needs_human=True, waiting_since__isnull=True).update(waiting_since=F("updated_at"))
    if not Lead.objects.filter(assignee=manager).exists():
        Lead.objects.filter(pk__in=Lead.objects.order_by("id").values("pk")[:300]).update(assignee=manager)


def _common_word() -> str:
    """The most frequent word of four letters or more in a 1% sample of the messages (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return "price"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word FROM ts_stat('SELECT to_tsvector(''simple'', text) FROM messages "
            "TABLESAMPLE SYSTEM (1)') WHERE length(word) >= 4 ORDER BY ndoc DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return row[0] if row else "price"


def _cases() -> list[Case]:
    # A lead with a long thread (the lead page and conversation view), one with a full name, its words.
    busy = (
        Message.objects.values("conversation__lead_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("conversation__lead_id", flat=True)
        .first()
    )
    lead = Lead.objects.exclude(last_name="").exclude(email="").order_by("id")[Lead.objects.count() // 4]
    words = (
        Message.objects.filter(role=MessageRole.LEAD, conversation__lead=lead)
        .values_list("text", flat=True)
        .first()
        or "price"
    ).split()
    rare_word = max(words, key=len).strip(".,!?")
    version = PromptVersion.objects.order_by("-version").first()
    example = TrainingExample.objects.order_by("-id").first()
    if busy is None or version is None or example is None:
        sys.exit("The database holds no generated dataset: run bench/generate_dataset.py first.")

    inbox = INBOX_TARGET_MS
    searches = {
        "full name": f"{lead.first_name} {lead.last_name}",
        "@handle": f"@{lead.username}",
        "email": lead.email,
        "subscriber id": lead.manychat_subscriber_id,
        "phone": lead.phone or "+44 7700 900123",
        "a message word": rare_word,
        "a common word": _common_word(),
    }
    cases = [
        Case("overview /dashboard/", "/dashboard/"),
        Case("leads list", "/dashboard/leads/"),
        Case("leads list page 50", "/dashboard/leads/?page=50"),
        Case("leads list status=qualified", "/dashboard/leads/?status=qualified"),
        Case("leads list search name", "/dashboard/leads/?" + urlencode({"q": lead.first_name})),
        Case("lead page (longest thread)", f"/dashboard/leads/{busy}/"),
        Case("inbox needs a person", "/dashboard/inbox/?queue=needs_person", inbox),
        Case("inbox mine", "/dashboard/inbox/?queue=mine", inbox),
        Case("inbox unassigned", "/dashboard/inbox/?queue=unassigned", inbox),
        Case("inbox all open", "/dashboard/inbox/?queue=open", inbox),
        Case("inbox all open by name", "/dashboard/inbox/?queue=open&sort=name", inbox),
        Case("inbox all open page 50", "/dashboard/inbox/?queue=open&page=50", inbox),
    ]
    for label, term in searches.items():
        url = "/dashboard/inbox/?" + urlencode({"queue": "open", "q": term})
        cases.append(Case(f"inbox search {label}", url, inbox))
    cases += [
        Case("inbox conversation (longest)", f"/dashboard/inbox/{busy}/"),
        Case("prompt page", "/dashboard/training/prompt/"),
        Case("prompt version page", f"/dashboard/training/prompt/versions/{version.pk}/"),
        Case("review queue", "/dashboard/training/review/"),
        Case("review queue page 50", "/dashboard/training/review/?page=50"),
        Case("example library", "/dashboard/training/library/"),
        Case("example library page 50", "/dashboard/training/library/?page=50"),
        Case("example page", f"/dashboard/training/library/{example.pk}/"),
        Case("training home", "/dashboard/training/"),
        Case("insights (30 days)", "/dashboard/training/insights/"),
        Case("notifications", "/dashboard/notifications/"),
        Case("catalog", "/dashboard/catalog/"),
        Case("rehearsal list", "/dashboard/rehearsal/"),
        Case("outcomes webhooks (admin)", "/dashboard/webhooks/", admin=True),
        Case("api leads", "/api/leads/"),
        Case("api leads search", "/api/leads/?" + urlencode({"search": lead.first_name})),
        Case("api notifications", "/api/notifications/"),
        Case("api prompt versions", "/api/prompt/versions/"),
        Case("api training examples", "/api/training/examples/"),
        Case("api training examples pending", "/api/training/examples/?status=pending"),
        Case("api inbox needs a person", "/api/inbox/?queue=needs_person", inbox),
        Case(
            "api inbox search", "/api/inbox/?" + urlencode({"queue": "open", "search": lead.last_name}), inbox
        ),
        Case("api inbox candidates", f"/api/inbox/candidates/?lead_id={busy}"),
        Case("api rehearsal scenarios", "/api/rehearsal/scenarios/"),
        Case("api catalog versions", "/api/catalog/versions/"),
        Case("api insights (30 days)", "/api/training/insights/"),
    ]
    return cases


def _time(client: Client, url: str) -> tuple[float, int, int]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
    return elapsed, len(queries.captured_queries), response.status_code


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="timed rounds (after one warm-up round)")
    parser.add_argument("--only", default="", help="time only the pages whose label contains this")
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    manager = _user("manager")
    _prepare(manager)
    client, admin_client = Client(), Client()
    client.force_login(manager)
    admin_client.force_login(_user("admin"))
    cases = [case for case in _cases() if args.only.lower() in case.label.lower()]
    base = Case("baseline (trivial page)", BASELINE)
    leads, messages = Lead.objects.count(), Message.objects.count()
    examples = TrainingExample.objects.count()
    load = os.getloadavg()
    print(
        f"{connection.vendor}: {leads:,} leads, {messages:,} messages, {examples:,} examples; "
        f"{len(cases)} pages x {args.runs} runs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        flush=True,
    )
    for round_ in range(args.runs + 1):
        ordered = cases if round_ % 2 == 0 else cases[::-1]
        for case in [base, *ordered]:
            elapsed, count, status = _time(admin_client if case.admin else client, case.url)
            if round_:  # round 0 warms caches and connections
                case.times.append(elapsed)
            case.queries, case.status = count, status
        print(
            f"  round {round_}/{args.runs} done{' (warm-up)' if not round_ else ''}",
            file=sys.stderr,
            flush=True,
        )

    base_median = statistics.median(base.times)
    print(f"\n{'page':<34} {'median':>9} {'p95':>9} {'queries':>7} {'ratio':>7}  status")
    print(
        f"{base.label:<34} {base_median:7.1f}ms {_p95(base.times):7.1f}ms {base.queries:7d} "
        f"{1:7.2f}  {base.status}"
    )
    over = []
    for case in cases:
        median = statistics.median(case.times)
        flag = ""
        if case.status != 200:
            flag = f"HTTP {case.status}"
            over.append(case.label)
        elif median > case.target:
            flag = f"OVER {case.target:.0f} ms"
            over.append(case.label)
        print(
            f"{case.label:<34} {median:7.1f}ms {_p95(case.times):7.1f}ms {case.queries:7d} "
            f"{median / base_median:7.2f}  {case.status} {flag}"
        )
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"{len(cases) - len(over)} of {len(cases)} under target"
        + (f"; over: {', '.join(over)}" if over else "")
    )


if __name__ == "__main__":
    main()
