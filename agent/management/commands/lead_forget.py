"""Delete a lead's personal data on request (GDPR erasure): `manage.py lead_forget <subscriber_id>`."""

from django.core.management.base import BaseCommand, CommandError

from agent.privacy.services import lead_forget
from leads.models import Lead


class Command(BaseCommand):
    help = "Anonymise a lead's names, handles, contact data and message texts everywhere they are copied."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("subscriber_id", help="the lead's ManyChat subscriber id")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args, subscriber_id: str, yes: bool, **options) -> None:  # type: ignore[no-untyped-def]
        lead = Lead.objects.filter(manychat_subscriber_id=subscriber_id).first()
        if lead is None:
            raise CommandError(f"No lead has the subscriber id {subscriber_id!r}.")
        if not yes and options.get("interactive", True):
            answer = input(
                f"Forget {lead.display_name} (lead {lead.pk}) everywhere? This cannot be undone [y/N] "
            )
            if answer.strip().lower() not in ("y", "yes"):
                raise CommandError("Nothing was changed.")
        report = lead_forget(lead=lead, actor=None)
        self.stdout.write(f"Lead {report.lead_id}: {report.messages} messages anonymised")
        for label, count in sorted(report.rows_rewritten.items()):
            self.stdout.write(f"  {label}: {count} rows rewritten")
