from django.core.management.base import BaseCommand

from agent import selectors, turn


class Command(BaseCommand):
    help = (
        "Finish the agent turns that did not complete (model failed or timed out, process died, ManyChat "
        "refused): answer and deliver them now, in this process. The Celery beat task "
        "agent.retry_incomplete_turns does the same through the queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100, help="At most this many turns (default 100).")
        parser.add_argument("--dry-run", action="store_true", help="List the turns, change nothing.")

    def handle(self, *args, limit: int, dry_run: bool, **options):
        due = selectors.turn_list_incomplete(limit=limit)
        message_ids = due.message_ids
        self.stdout.write(
            f"{len(due.unanswered)} unanswered, {len(due.undelivered)} undelivered turn(s) due."
        )
        if dry_run:
            for message_id in message_ids:
                self.stdout.write(f"  message {message_id}")
            return
        results: dict[str, int] = {}
        for message_id in message_ids:
            try:
                outcome = turn.turn_complete(message_id=message_id).value
            except turn.DeliveryRetryable as exc:
                outcome = "delivery_pending"
                self.stderr.write(f"message {message_id}: delivery will be retried ({exc})")
            results[outcome] = results.get(outcome, 0) + 1
            self.stdout.write(f"  message {message_id}: {outcome}")
        summary = ", ".join(f"{count} {name}" for name, count in sorted(results.items())) or "nothing to do"
        self.stdout.write(self.style.SUCCESS(f"Done: {summary}."))
