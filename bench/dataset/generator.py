"""Generate a large, realistic dataset for the insights page and its benchmark.

    python bench/generate_dataset.py                 # 50,000 leads, 1,000,000 messages, 100,000 examples
    python bench/generate_dataset.py --leads 500 --messages 10000 --examples 1000 --versions 5 --seed 7

A year of traffic ending at --now: leads arrive (more of them lately), talk to the agent, and qualify,
convert, get lost or are handed to a person; each agent reply is stamped with the prompt version active
at that moment, and PromptVersionConversation facts are derived from those replies (a qualification is
credited to the version whose reply came just before it, as prompts.services does). Operators flag
replies as training examples and managers review them after a realistic delay.

Rows are written with PostgreSQL COPY (plain multi-row INSERTs elsewhere), one transaction per chunk of
leads; the same --seed and --now give the same data. Generated users are named gen_*; the command only
adds rows, it never deletes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone
from tqdm import tqdm

from bench.dataset.words import (
    AGENT_FAILURES,
    AGENT_LINES,
    CHANNELS,
    CITIES,
    EXPECTED,
    FEEDBACK,
    FIRST_NAMES,
    HANDOFF_REASONS,
    LAST_NAMES,
    LEAD_LINES,
    MONTHS,
    REVIEW_NOTES,
    STAFF,
)
from leads.models import Activity, Conversation, Lead, Message
from prompts.models import PromptVersion, PromptVersionConversation
from training.insights.selectors import HANDOFF_VERBS
from training.models import TrainingExample

SPAN_DAYS = 365
CHUNK_LEADS = 1000
AGENT_MODEL = "gpt-4o-mini"


LEAD_COLUMNS = [
    "id",
    "manychat_subscriber_id",
    "channel",
    "first_name",
    "last_name",
    "username",
    "phone",
    "email",
    "status",
    "qualification_data",
    "bot_paused",
    "needs_human",
    "handoff_reason",
    "assignee_id",
    "created_at",
    "updated_at",
    "last_message_at",
]
CONVERSATION_COLUMNS = ["id", "lead_id", "channel", "status", "started_at", "last_message_at"]
MESSAGE_COLUMNS = [
    "id",
    "conversation_id",
    "role",
    "text",
    "prompt_version_id",
    "in_reply_to_id",
    "dedupe_key",
    "delivery_status",
    "attempts",
    "error",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "created_at",
]
FACT_COLUMNS = [
    "id",
    "prompt_version_id",
    "conversation_id",
    "first_reply_at",
    "last_reply_at",
    "qualified_at",
]
ACTIVITY_COLUMNS = ["id", "lead_id", "actor_id", "verb", "data", "created_at"]
EXAMPLE_COLUMNS = [
    "id",
    "conversation_id",
    "message_id",
    "submitted_by_id",
    "approved_by_id",
    "user_message",
    "ai_response",
    "expected_response",
    "feedback",
    "example_type",
    "status",
    "review_note",
    "metadata",
    "approved_at",
    "created_at",
    "updated_at",
]


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _split(total: int, parts: int, index: int) -> int:
    """The size of part `index` when `total` is split into `parts` near-equal parts."""
    return total * (index + 1) // parts - total * index // parts


def _with_defaults(
    *, table: str, columns: Sequence[str], rows: list[Sequence[Any]]
) -> tuple[list[str], list[Sequence[Any]]]:
    """Columns the generator does not fill (added by later features) get their field's default, so a new
    NOT NULL column with a Python-side default does not break COPY."""
    model = next((m for m in apps.get_models() if m._meta.db_table == table), None)
    if model is None:
        return list(columns), rows
    extra = [
        field
        for field in model._meta.concrete_fields
        if field.column not in columns and not field.null and field.has_default()
    ]
    if not extra:
        return list(columns), rows
    defaults = [field.get_db_prep_save(field.get_default(), connection) for field in extra]
    return [*columns, *(field.column for field in extra)], [[*row, *defaults] for row in rows]


class Writer:
    """Appends rows to a table: COPY on PostgreSQL, multi-row INSERT elsewhere."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"

    def write(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if not rows:
            return
        columns, rows = _with_defaults(table=table, columns=columns, rows=rows)
        with connection.cursor() as cursor:
            if self.postgres:
                with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                return
            adapt = connection.ops.adapt_datetimefield_value
            marks = ", ".join(["%s"] * len(columns))
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - fixed names
            prepared = [[adapt(v) if isinstance(v, dt.datetime) else v for v in row] for row in rows]
            for start in range(0, len(prepared), 500):
                cursor.executemany(sql, prepared[start : start + 500])

    def reset_sequences(self, tables: Sequence[str]) -> None:
        if not self.postgres:
            return
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - fixed names
                    f"COALESCE((SELECT MAX(id) FROM {table}), 1))"
                )


class Command(BaseCommand):
    help = "Generate a large, realistic dataset of leads, messages, prompt versions and training examples."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--leads", type=int, default=50_000)
        parser.add_argument("--messages", type=int, default=1_000_000)
        parser.add_argument("--examples", type=int, default=100_000)
        parser.add_argument("--versions", type=int, default=20)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--now", default="", help="ISO date-time the year of data ends at (default: now, to the minute)"
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar")

    def handle(self, *args: Any, **opts: Any) -> None:
        leads, messages, examples, versions = (
            opts["leads"],
            opts["messages"],
            opts["examples"],
            opts["versions"],
        )
        if leads < 1 or versions < 1 or messages < leads or examples < 0:
            raise CommandError(
                "Need --leads >= 1, --versions >= 1, --messages >= --leads and --examples >= 0."
            )
        if opts["now"]:
            now = dt.datetime.fromisoformat(opts["now"])
            if timezone.is_naive(now):
                now = timezone.make_aware(now)
        else:
            now = timezone.now().replace(second=0, microsecond=0)
        self.rng = random.Random(opts["seed"])
        self.flagged_replies: set[int] = set()
        self.now = now
        self.begin = now - dt.timedelta(days=SPAN_DAYS)
        self.writer = Writer()
        started = timezone.now()

        self._make_staff()
        self._make_versions(count=versions)
        self.next_id = {
            model: (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1
            for model in (Lead, Conversation, Message, PromptVersionConversation, Activity, TrainingExample)
        }
        chunks = max(1, math.ceil(leads / CHUNK_LEADS))
        totals = dict.fromkeys(("leads", "conversations", "messages", "facts", "activities", "examples"), 0)
        with tqdm(total=leads, unit="lead", disable=opts["no_progress"], desc="generating") as bar:
            for index in range(chunks):
                sizes = {
                    "leads": _split(leads, chunks, index),
                    "messages": _split(messages, chunks, index),
                    "examples": _split(examples, chunks, index),
                }
                with transaction.atomic():
                    written = self._chunk(**sizes)
                for key, value in written.items():
                    totals[key] += value
                bar.update(sizes["leads"])
        self.writer.reset_sequences(
            [
                "leads",
                "conversations",
                "messages",
                "prompt_version_conversations",
                "activities",
                "training_examples",
            ]
        )
        if connection.vendor == "postgresql":
            # VACUUM sets the visibility map the index-only scans need; it cannot run in a transaction.
            verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            with connection.cursor() as cursor:
                for table in (
                    "leads",
                    "conversations",
                    "messages",
                    "prompt_version_conversations",
                    "activities",
                    "training_examples",
                    "prompt_versions",
                ):
                    cursor.execute(f"{verb} {table}")
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(
            "Generated "
            + ", ".join(f"{value:,} {key}" for key, value in totals.items())
            + f", {len(self.versions):,} prompt versions in {seconds:.1f} s."
        )

    # --- Fixed rows -------------------------------------------------------------------------------

    def _make_staff(self) -> None:
        User = get_user_model()
        password = make_password("demo-pass-2026", salt="generateddataset")
        self.submitters: list[tuple[int, int]] = []
        self.reviewers: list[tuple[int, int]] = []
        for username, first, last, group, submit_weight, review_weight in STAFF:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last, "is_staff": True, "password": password},
            )
            if created:
                group_row = Group.objects.filter(name=group).first()
                if group_row is not None:
                    user.groups.add(group_row)
            if submit_weight:
                self.submitters.append((user.pk, submit_weight))
            if review_weight:
                self.reviewers.append((user.pk, review_weight))
        self.submitter_ids = [s[0] for s in self.submitters]
        self.submitter_weights = [s[1] for s in self.submitters]
        self.reviewer_ids = [r[0] for r in self.reviewers]
        self.reviewer_weights = [r[1] for r in self.reviewers]

    def _make_versions(self, *, count: int) -> None:
        """Versions activated one after another over the year; each has its own qualification rate."""
        rng = self.rng
        first = (PromptVersion.objects.aggregate(m=Max("version"))["m"] or 0) + 1
        has_active = PromptVersion.objects.filter(is_active=True).exists()
        quality = 0.22
        rows = []
        for i in range(count):
            activated = (
                self.begin + dt.timedelta(days=SPAN_DAYS * i / count) - dt.timedelta(days=1 if i == 0 else 0)
            )
            if i:
                activated += dt.timedelta(hours=rng.uniform(-48, 48))
            quality = min(0.45, max(0.08, quality + rng.uniform(-0.06, 0.07)))
            rows.append((first + i, activated, quality))
        parent = None
        self.versions: list[tuple[dt.datetime, int, float]] = []
        for number, activated, rate in rows:
            is_last = number == first + count - 1
            version = PromptVersion.objects.create(
                version=number,
                content="You are the sales assistant. Qualify leads politely, one question at a time. "
                f"(v{number})",
                change_note=f"Generated version {number}",
                parent=parent,
                is_active=is_last and not has_active,
                activated_at=activated,
            )
            PromptVersion.objects.filter(pk=version.pk).update(created_at=activated - dt.timedelta(hours=2))
            parent = version
            self.versions.append((activated, version.pk, rate))
        self.version_starts = [v[0] for v in self.versions]

    def _version_at(self, moment: dt.datetime) -> tuple[int, float]:
        index = max(0, bisect.bisect_right(self.version_starts, moment) - 1)
        return self.versions[index][1], self.versions[index][2]

    def _take(self, model: type) -> int:
        value = self.next_id[model]
        self.next_id[model] = value + 1
        return value

    # --- One chunk of leads -------------------------------------------------------------------------

    def _chunk(self, *, leads: int, messages: int, examples: int) -> dict[str, int]:
        rng, now, span = self.rng, self.now, self.now - self.begin
        lead_rows, conversation_rows, message_rows, fact_rows, activity_rows, example_rows = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        # Conversations: most leads have one, some come back for a second.
        plan = []
        for _ in range(leads):
            # More leads lately: the arrival time's density grows over the year.
            arrived = self.begin + span * math.sqrt(rng.random())
            convs = 2 if rng.random() < 0.18 else 1
            plan.append((arrived, convs))
        conversation_count = sum(c for _, c in plan)
        sizes = self._message_counts(total=messages, conversations=conversation_count, leads=plan)
        agent_replies: list[
            tuple[int, int, str, str, dt.datetime]
        ] = []  # id, conversation, text, question, at
        size_iter = iter(sizes)
        for arrived, convs in plan:
            lead_id = self._take(Lead)
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            channel = _weighted(rng, CHANNELS)
            status, needs_human, handoff_reason = "new", False, ""
            start = arrived
            last_at = None
            for c in range(convs):
                count = next(size_iter)
                is_last = c == convs - 1
                conversation_id = self._take(Conversation)
                result = self._conversation(
                    conversation_id=conversation_id,
                    lead_id=lead_id,
                    start=start,
                    count=count,
                    name=first,
                    message_rows=message_rows,
                    fact_rows=fact_rows,
                    activity_rows=activity_rows,
                    agent_replies=agent_replies,
                )
                conversation_rows.append(
                    (conversation_id, lead_id, channel, "open" if is_last else "closed", start, result["end"])
                )
                last_at = result["end"]
                status = result["status"] if status not in ("qualified", "converted") else status
                if result["handoff"] and is_last and rng.random() < 0.5:
                    needs_human, handoff_reason = True, result["handoff"]
                if not is_last:
                    start = result["end"] + dt.timedelta(days=rng.uniform(3, 60))
                    if start >= now:
                        start = result["end"] + (now - result["end"]) / 2
            qualification = (
                {
                    "business": rng.choice(["bakery", "gym", "salon", "agency", "shop", "cafe"]),
                    "budget": rng.randint(1, 20) * 50,
                }
                if status in ("qualified", "converted")
                else {}
            )
            lead_rows.append(
                (
                    lead_id,
                    f"gen{lead_id}",
                    channel,
                    first,
                    last,
                    f"{first.lower()}.{last.lower()}{lead_id % 997}",
                    "",
                    f"{first.lower()}{lead_id}@example.com" if status in ("qualified", "converted") else "",
                    status,
                    json.dumps(qualification),
                    False,
                    needs_human,
                    handoff_reason,
                    None,
                    arrived,
                    last_at or arrived,
                    last_at,
                )
            )
        example_rows = self._examples(count=examples, replies=agent_replies)
        self.writer.write("leads", LEAD_COLUMNS, lead_rows)
        self.writer.write("conversations", CONVERSATION_COLUMNS, conversation_rows)
        self.writer.write("messages", MESSAGE_COLUMNS, message_rows)
        self.writer.write("prompt_version_conversations", FACT_COLUMNS, fact_rows)
        self.writer.write("activities", ACTIVITY_COLUMNS, activity_rows)
        self.writer.write("training_examples", EXAMPLE_COLUMNS, example_rows)
        return {
            "leads": len(lead_rows),
            "conversations": len(conversation_rows),
            "messages": len(message_rows),
            "facts": len(fact_rows),
            "activities": len(activity_rows),
            "examples": len(example_rows),
        }

    def _message_counts(self, *, total: int, conversations: int, leads: list) -> list[int]:
        """Messages per conversation: a long-tailed spread summing exactly to `total`."""
        rng = self.rng
        mean = total / conversations
        raw = [
            max(1.0, rng.expovariate(1 / mean)) if rng.random() > 0.1 else rng.choice([1.0, 2.0])
            for _ in range(conversations)
        ]
        factor = total / sum(raw)
        counts = [max(1, round(x * factor)) for x in raw]
        diff = total - sum(counts)
        order = sorted(range(conversations), key=lambda i: -counts[i])
        i = 0
        while diff:
            j = order[i % conversations]
            if diff > 0:
                counts[j] += 1
                diff -= 1
            elif counts[j] > 1:
                counts[j] -= 1
                diff += 1
            i += 1
        return counts

    def _conversation(
        self,
        *,
        conversation_id: int,
        lead_id: int,
        start: dt.datetime,
        count: int,
        name: str,
        message_rows: list,
        fact_rows: list,
        activity_rows: list,
        agent_replies: list,
    ) -> dict[str, Any]:
        rng, now = self.rng, self.now
        # Offsets: a lead writes minutes to hours after the agent; the agent answers in seconds.
        offsets = [0.0]
        for k in range(1, count):
            gap = rng.uniform(1.0, 12.0) if k % 2 else min(rng.expovariate(1 / 900), 86_400 * 2)
            offsets.append(offsets[-1] + gap)
        room = (now - start).total_seconds() - 60
        if offsets[-1] > room > 0:
            offsets = [o * room / offsets[-1] for o in offsets]
        times = [start + dt.timedelta(seconds=o) for o in offsets]
        facts: dict[int, list] = {}
        replies: list[tuple[int, int, dt.datetime]] = []  # message id, version, at
        previous_id, previous_text = None, ""
        city = rng.choice(CITIES)
        for k, at in enumerate(times):
            message_id = self._take(Message)
            if k % 2 == 0:
                text = rng.choice(LEAD_LINES).format(city=city, n=rng.randint(2, 9), month=rng.choice(MONTHS))
                answered = k + 1 < count
                message_rows.append(
                    (
                        message_id,
                        conversation_id,
                        "lead",
                        text,
                        None,
                        None,
                        None,
                        "answered" if answered else "received",
                        1 if answered else 0,
                        "",
                        "",
                        None,
                        None,
                        None,
                        at,
                    )
                )
                previous_id, previous_text = message_id, text
            else:
                version_id, _ = self._version_at(at)
                text = rng.choice(AGENT_LINES).format(name=name, city=city)
                latency = int(rng.lognormvariate(7.4, 0.35))
                message_rows.append(
                    (
                        message_id,
                        conversation_id,
                        "agent",
                        text,
                        version_id,
                        previous_id,
                        None,
                        "returned" if rng.random() < 0.93 else "sent",
                        1,
                        "",
                        AGENT_MODEL,
                        rng.randint(600, 2400),
                        rng.randint(20, 160),
                        latency,
                        at,
                    )
                )
                replies.append((message_id, version_id, at))
                agent_replies.append((message_id, conversation_id, text, previous_text, at))
                span = facts.setdefault(version_id, [at, at, None])
                span[1] = at
        end = times[-1]
        status = "new" if count <= 2 else "engaged"
        handoff = ""
        if replies:
            # The version that did most of the talking sets the odds of qualifying.
            _, rate = self._version_at(replies[len(replies) // 2][2])
            if count >= 6 and rng.random() < rate * 1.6:
                reply_index = rng.randint(len(replies) // 2, len(replies) - 1)
                reply_id, version_id, reply_at = replies[reply_index]
                qualified_at = reply_at + dt.timedelta(seconds=rng.uniform(30, 600))
                qualified_at = min(qualified_at, now - dt.timedelta(seconds=1))
                facts[version_id][2] = qualified_at
                status = "converted" if rng.random() < 0.35 else "qualified"
                activity_rows.append(
                    (
                        self._take(Activity),
                        lead_id,
                        None,
                        "lead.status_changed",
                        json.dumps({"from": "engaged", "to": "qualified", "reason": "agent"}),
                        qualified_at,
                    )
                )
                if status == "converted":
                    converted_at = min(qualified_at + dt.timedelta(days=rng.uniform(1, 20)), now)
                    activity_rows.append(
                        (
                            self._take(Activity),
                            lead_id,
                            None,
                            "lead.status_changed",
                            json.dumps({"from": "qualified", "to": "converted", "reason": ""}),
                            converted_at,
                        )
                    )
            elif count >= 4 and rng.random() < 0.28:
                status = "lost"
                lost_at = min(end + dt.timedelta(days=rng.uniform(2, 30)), now)
                activity_rows.append(
                    (
                        self._take(Activity),
                        lead_id,
                        None,
                        "lead.status_changed",
                        json.dumps({"from": "engaged", "to": "lost", "reason": "no reply"}),
                        lost_at,
                    )
                )
            if status == "engaged" and rng.random() < 0.09:
                handoff = _weighted(rng, HANDOFF_REASONS)
                # The model asks for a person (lead.handed_off); now and then the agent itself gives up.
                verb = HANDOFF_VERBS[1] if handoff in AGENT_FAILURES else HANDOFF_VERBS[0]
                activity_rows.append(
                    (
                        self._take(Activity),
                        lead_id,
                        None,
                        verb,
                        json.dumps({"reason": handoff, "bot_paused": verb == HANDOFF_VERBS[0]}),
                        min(end + dt.timedelta(seconds=5), now),
                    )
                )
        for version_id, (first_at, last_at, qualified_at) in facts.items():
            fact_rows.append(
                (
                    self._take(PromptVersionConversation),
                    version_id,
                    conversation_id,
                    first_at,
                    last_at,
                    qualified_at,
                )
            )
        return {"end": end, "status": status, "handoff": handoff}

    def _examples(self, *, count: int, replies: list) -> list[tuple]:
        """Flags on agent replies (one example per reply, as training_one_example_per_reply rules) plus
        some typed by hand; when a pick lands on a reply already flagged, the example is typed by hand."""
        rng, now = self.rng, self.now
        rows = []
        flagged = self.flagged_replies
        for _ in range(count):
            kind = rng.choices(["good", "bad", "correction"], weights=[40, 35, 25])[0]
            source = rng.choice(replies) if replies and rng.random() >= 0.08 else None
            if source is not None and source[0] in flagged:
                source = None
            if source is None:
                message_id = conversation_id = None
                ai_response = rng.choice(AGENT_LINES).format(name="there", city=rng.choice(CITIES))
                user_message = rng.choice(LEAD_LINES).format(city=rng.choice(CITIES), n=3, month="May")
                created = self.begin + (now - self.begin) * math.sqrt(rng.random())
            else:
                flagged.add(source[0])
                message_id, conversation_id, ai_response, user_message, at = source
                created = at + dt.timedelta(seconds=rng.expovariate(1 / 7200))
                if created >= now:
                    created = at + (now - at) / 2
            feedback = rng.choice(FEEDBACK[kind])
            roll = rng.random()
            if roll < 0.08:
                feedback = feedback.lower()
            elif roll < 0.12:
                feedback = f"{feedback}."
            expected = rng.choice(EXPECTED).format(name="there") if kind == "correction" else ""
            submitter = rng.choices(self.submitter_ids, weights=self.submitter_weights)[0]
            wait = dt.timedelta(seconds=rng.lognormvariate(math.log(5 * 3600), 1.3))
            decided_at = created + wait
            status, reviewer, note = "pending", None, ""
            if decided_at < now and rng.random() > 0.03:
                reject_odds = {"good": 0.12, "bad": 0.25, "correction": 0.2}[kind]
                status = "rejected" if rng.random() < reject_odds else "approved"
                reviewer = rng.choices(self.reviewer_ids, weights=self.reviewer_weights)[0]
                note = rng.choice(REVIEW_NOTES)
            else:
                decided_at = None
            rows.append(
                (
                    self._take(TrainingExample),
                    conversation_id,
                    message_id,
                    submitter,
                    reviewer,
                    user_message,
                    ai_response,
                    expected,
                    feedback,
                    kind,
                    status,
                    note,
                    json.dumps({"source": "generated"}),
                    decided_at,
                    created,
                    decided_at or created,
                )
            )
        return rows
