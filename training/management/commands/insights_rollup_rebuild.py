"""python manage.py insights_rollup_rebuild

Refills the insights rollups from training_examples (PostgreSQL), printing each table as it is written. Run
it once after migrating, after a restore, and after changing TIME_ZONE; the triggers keep them exact after.
"""

from django.core.management.base import BaseCommand, CommandError

from training.insights.rollups import RollupsUnsupported, insights_rollup_rebuild


class Command(BaseCommand):
    help = "Rebuild the insights daily rollups from the base tables (PostgreSQL only)."

    def handle(self, *args, **options):
        try:
            written = insights_rollup_rebuild(progress=self.stdout.write)
        except RollupsUnsupported as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{sum(written.values()):,} rollup rows written."))
