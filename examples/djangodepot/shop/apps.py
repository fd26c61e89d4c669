import socket

from django.apps import AppConfig
from django.db import connections, transaction
from django.db.models.signals import post_migrate

# Any fixed number: serialises concurrent `migrate` runs while they create/append to the table.
_RUNS_LOCK_KEY = 7260415

CREATE_RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS migration_runs (
    id serial PRIMARY KEY,
    ran_at timestamptz NOT NULL DEFAULT now(),
    host text NOT NULL,
    applied text NOT NULL
)
"""


def record_migration_run(sender, using="default", plan=None, **kwargs):
    """post_migrate receiver (connected for this app only, so it runs once per `migrate`).

    Appends one row to `migration_runs`: this host and the migrations this run applied
    (comma-separated `app.name`; an unapplied one is written `-app.name`; empty when the
    run had nothing to do).
    """
    names = []
    for migration, backwards in plan or []:
        name = f"{migration.app_label}.{migration.name}"
        names.append(f"-{name}" if backwards else name)
    connection = connections[using]
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_RUNS_LOCK_KEY])
            cursor.execute(CREATE_RUNS_TABLE)
            cursor.execute(
                "INSERT INTO migration_runs (host, applied) VALUES (%s, %s)",
                [socket.gethostname(), ",".join(names)],
            )


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.AutoField"

    def ready(self):
        post_migrate.connect(
            record_migration_run, sender=self, dispatch_uid="shop.record_migration_run"
        )
