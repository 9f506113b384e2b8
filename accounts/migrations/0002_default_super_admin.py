from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.db import migrations
from django.utils import timezone


def create_default_admin(apps, schema_editor):
    """The default super admin for development and demos. In production its password is refused at login until it
    is changed with ``manage.py set_admin_password``, and ``check --deploy`` warns while it is unchanged."""
    User = apps.get_model("accounts", "User")
    if User.objects.filter(email=settings.DEFAULT_ADMIN_EMAIL).exists():
        return
    User.objects.create(
        email=settings.DEFAULT_ADMIN_EMAIL,
        password=make_password(settings.DEFAULT_ADMIN_PASSWORD),
        role="SUPER_ADMIN",
        is_staff=True,
        is_superuser=True,
        is_active=True,
        date_joined=timezone.now(),
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_default_admin, migrations.RunPython.noop)]
