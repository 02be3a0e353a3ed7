from django.core.management.base import BaseCommand, CommandError

from leads.schema_check import schema_report


class Command(BaseCommand):
    help = "Check that the live database matches the models: every table, column, type and constraint."

    def add_arguments(self, parser):
        parser.add_argument(
            "--database", default="default", help="Database alias to check (default: default)."
        )

    def handle(self, *args, **options):
        report = schema_report(using=options["database"])
        for table in report.tables:
            if table.ok:
                self.stdout.write(f"✅ {table.label} - {table.rows} rows")
            else:
                self.stdout.write(f"❌ {table.label} - {'; '.join(table.problems)}")
        if report.unapplied_migrations:
            self.stdout.write(f"❌ unapplied migrations: {', '.join(report.unapplied_migrations)}")
        else:
            self.stdout.write("✅ migrations - all applied")
        if not report.ok:
            raise CommandError(
                "The database does not match the code. Run `python manage.py migrate`, "
                "or see the lines marked ❌ above."
            )
        self.stdout.write(self.style.SUCCESS("Schema OK"))
