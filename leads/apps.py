from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _sync_roles(sender, using="default", **kwargs) -> None:
    # post_migrate is sent once per app, in INSTALLED_APPS order; by the last one every permission exists.
    if sender is not list(apps.get_app_configs())[-1]:
        return
    from leads.roles import roles_sync

    roles_sync(using=using)


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads and conversations"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="leads.sync_roles")
