"""python manage.py scenarios_from_conversations [--since 30d] [--limit 30] [--dry-run]

Turns recent conversations that went wrong (the lead was lost, handed off to a person, or stalled after
the agent's last message) into rehearsal scenarios: the model drafts each persona, goal, opening and the
facts the lead revealed, tagged with why it was picked. Conversations already used are skipped. Progress bar.
"""

import re
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from agent.rehearsal import selectors, services

_SPAN = re.compile(r"^(\d+)([dhw])$")


def _duration(text: str) -> timedelta:
    match = _SPAN.match(text.strip())
    if not match:
        raise CommandError(f"--since {text!r}: give a span like 30d, 12h or 2w.")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[unit]


class Command(BaseCommand):
    help = "Draft rehearsal scenarios from recent lost, handed-off or stalled conversations."

    def add_arguments(self, parser):
        parser.add_argument("--since", default="30d", help="How far back: 30d (default), 12h, 2w.")
        parser.add_argument("--limit", type=int, default=30, help="At most this many scenarios (default 30).")
        parser.add_argument(
            "--stalled-after", default="24h", help="Silence after the agent's message that counts as stalled."
        )
        parser.add_argument("--dry-run", action="store_true", help="List the conversations, create nothing.")

    def handle(self, *args, since: str, limit: int, stalled_after: str, dry_run: bool, **options):
        if not 1 <= limit <= 500:
            raise CommandError("--limit: give a number from 1 to 500.")
        now = timezone.now()
        conversations = selectors.conversations_for_scenarios(
            since=now - _duration(since), limit=limit, stalled_after=now - _duration(stalled_after)
        )
        created = skipped = 0
        for pick in tqdm(conversations, desc="scenarios", unit="conversation", file=self.stderr._out):
            conversation = pick.conversation
            if dry_run:
                self.stdout.write(f"  conversation {conversation.pk} ({pick.reason})")
                continue
            try:
                draft = services.scenario_draft_from_conversation(conversation=conversation)
                data = draft.__dict__ | {"tags": [*draft.tags, pick.reason]}
                services.scenario_create(data=data)
            except ValidationError as error:
                skipped += 1
                self.stderr.write(f"  conversation {conversation.pk} skipped: {' '.join(error.messages)}")
                continue
            created += 1
        self.stdout.write(
            f"{len(conversations)} conversations found; {created} scenarios created, {skipped} skipped."
            if not dry_run
            else f"{len(conversations)} conversations would become scenarios."
        )
