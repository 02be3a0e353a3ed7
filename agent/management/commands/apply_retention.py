"""Anonymise message texts and activity details older than DATA_RETENTION_DAYS (or --days)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agent.privacy.services import retention_apply


class Command(BaseCommand):
    help = "Apply the retention policy now (what the daily beat task does), over all old data."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--days", type=int, default=None, help="default: DATA_RETENTION_DAYS")

    def handle(self, *args, days: int | None, **options) -> None:  # type: ignore[no-untyped-def]
        days = settings.DATA_RETENTION_DAYS if days is None else days
        if days <= 0:
            raise CommandError("Retention is off: set DATA_RETENTION_DAYS or pass --days N (N > 0).")
        report = retention_apply(days=days)
        self.stdout.write(
            f"Older than {report.cutoff}: {report.messages} messages and "
            f"{report.activities} activities anonymised"
        )
