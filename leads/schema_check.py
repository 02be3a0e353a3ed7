"""Compare the live database with the models: tables, columns, types, nullability, constraints, migrations.

Used by `manage.py verify_schema`; the old system's half-applied migration is exactly what it catches.
"""

from dataclasses import dataclass, field

from django.apps import apps
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.models import Model

# The eight tables of the old system, in its order, then any other table the project owns.
CORE_TABLES = (
    ("users", "auth.User"),
    ("leads", "leads.Lead"),
    ("conversations", "leads.Conversation"),
    ("messages", "leads.Message"),
    ("activities", "leads.Activity"),
    ("notifications", "leads.Notification"),
    ("prompt_versions", "prompts.PromptVersion"),
    ("training_examples", "training.TrainingExample"),
)
PROJECT_APPS = ("leads", "prompts", "training", "agent")

_FAMILIES = {
    "integer": {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
    },
    "text": {
        "CharField",
        "TextField",
        "EmailField",
        "SlugField",
        "URLField",
        "GenericIPAddressField",
        "FilePathField",
    },
    "boolean": {"BooleanField", "NullBooleanField"},
    "datetime": {"DateTimeField"},
    "date": {"DateField"},
    "time": {"TimeField"},
    "json": {"JSONField"},
    "uuid": {"UUIDField"},
    "decimal": {"DecimalField"},
    "float": {"FloatField"},
    "binary": {"BinaryField"},
    "duration": {"DurationField"},
}


def _family(internal_type: str) -> str:
    for name, members in _FAMILIES.items():
        if internal_type in members:
            return name
    return internal_type


@dataclass
class TableReport:
    label: str
    table: str
    exists: bool = True
    rows: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exists and not self.problems


@dataclass
class SchemaReport:
    tables: list[TableReport]
    unapplied_migrations: list[str]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables) and not self.unapplied_migrations


def _expected_family(model_field, connection) -> str:
    target = model_field.target_field if model_field.is_relation else model_field
    internal = target.get_internal_type()
    family = _family(internal)
    # SQLite stores JSON as text; a JSON column introspected as text there is what Django itself creates.
    return family


def _check_table(model: type[Model], label: str, connection, cursor, table_names: set[str]) -> TableReport:
    table = model._meta.db_table
    report = TableReport(label=label, table=table)
    if table not in table_names:
        report.exists = False
        report.problems.append("table is missing")
        return report
    description = {col.name: col for col in connection.introspection.get_table_description(cursor, table)}
    for model_field in model._meta.concrete_fields:
        column = model_field.column
        col = description.get(column)
        if col is None:
            report.problems.append(f"missing column {column}")
            continue
        live_type = connection.introspection.get_field_type(col.type_code, col)
        live_family = _family(live_type)
        wanted = _expected_family(model_field, connection)
        compatible = live_family == wanted or (
            connection.vendor == "sqlite" and wanted == "json" and live_family == "text"
        )
        if not compatible:
            report.problems.append(f"column {column} is {live_type}, expected {wanted}")
        if col.null_ok is not None and bool(col.null_ok) != bool(model_field.null):
            report.problems.append(
                f"column {column} is {'NULL' if col.null_ok else 'NOT NULL'}, expected "
                f"{'NULL' if model_field.null else 'NOT NULL'}"
            )
    live_constraints = connection.introspection.get_constraints(cursor, table)
    expected_names = [c.name for c in model._meta.constraints] + [i.name for i in model._meta.indexes]
    for name in expected_names:
        if name not in live_constraints and not _sqlite_check_present(connection, cursor, table, name):
            report.problems.append(f"missing constraint or index {name}")
    if report.ok:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table name from models
        report.rows = cursor.fetchone()[0]
    return report


def _sqlite_check_present(connection, cursor, table: str, name: str) -> bool:
    # SQLite's introspection does not name CHECK constraints; look for the name in the table's DDL.
    if connection.vendor != "sqlite":
        return False
    cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    row = cursor.fetchone()
    return bool(row and row[0] and f'"{name}"' in row[0])


def unapplied_migrations(connection) -> list[str]:
    # Every migration the code knows, not just the leaves: a hole in the middle of the history counts too.
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    applied = set(loader.applied_migrations)
    return [f"{app}.{name}" for app, name in sorted(loader.graph.nodes) if (app, name) not in applied]


def schema_report(*, using: str = "default") -> SchemaReport:
    connection = connections[using]
    table_names = set(connection.introspection.table_names())
    reports: list[TableReport] = []
    seen: set[str] = set()
    with connection.cursor() as cursor:
        for label, model_label in CORE_TABLES:
            model = apps.get_model(model_label)
            reports.append(_check_table(model, label, connection, cursor, table_names))
            seen.add(model._meta.db_table)
        for app_label in PROJECT_APPS:
            for model in apps.get_app_config(app_label).get_models():
                if model._meta.db_table in seen or not model._meta.managed:
                    continue
                reports.append(_check_table(model, model._meta.db_table, connection, cursor, table_names))
                seen.add(model._meta.db_table)
    return SchemaReport(tables=reports, unapplied_migrations=unapplied_migrations(connection))
