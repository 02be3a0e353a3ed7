"""Create the four roles as Groups with their permissions (the old system's row-level policies)."""

from django.db import migrations

VIEW = [
    ("leads", "view_lead"),
    ("leads", "view_conversation"),
    ("leads", "view_message"),
    ("leads", "view_activity"),
    ("prompts", "view_promptversion"),
    ("training", "view_trainingexample"),
]
OPERATE = [
    ("training", "add_trainingexample"),
    ("prompts", "add_promptversion"),
    ("leads", "change_lead"),
    ("leads", "add_message"),
]
MANAGE = [
    ("training", "change_trainingexample"),
    ("training", "delete_trainingexample"),
    ("training", "review_trainingexample"),
    ("prompts", "activate_promptversion"),
]
ADMINISTER = [
    ("auth", "view_user"),
    ("auth", "add_user"),
    ("auth", "change_user"),
    ("auth", "view_group"),
    ("leads", "view_notification"),
    ("leads", "change_conversation"),
    ("leads", "delete_lead"),
]
ROLE_PERMISSIONS = {
    "viewer": VIEW,
    "operator": VIEW + OPERATE,
    "manager": VIEW + OPERATE + MANAGE,
    "admin": VIEW + OPERATE + MANAGE + ADMINISTER,
}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after migrate finishes; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for app_label, codename in perms:
            wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0002_message_prompt_version"),
        ("prompts", "0001_initial"),
        ("training", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
