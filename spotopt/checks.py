"""Deploy checks (``manage.py check --deploy``) for what only an operator can set."""

from django.conf import settings
from django.core.checks import Tags, Warning, register
from django.db import DatabaseError


@register(Tags.security, deploy=True)
def default_admin_password(app_configs, **kwargs):
    from accounts.models import User

    try:
        admin = User.objects.filter(email=settings.DEFAULT_ADMIN_EMAIL).first()
    except DatabaseError:
        return []  # no database yet: nothing to check, migrate creates the account
    if admin is not None and admin.check_password(settings.DEFAULT_ADMIN_PASSWORD):
        return [
            Warning(
                "The default super admin still has its default password.",
                hint="Run: manage.py set_admin_password",
                id="spotopt.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def development_secrets(app_configs, **kwargs):
    if not settings.PRODUCTION:
        return [
            Warning(
                "ENVIRONMENT is development: development secrets and defaults are in use.",
                hint="Set ENVIRONMENT=production with SECRET_KEY and JWT_SECRET_KEY.",
                id="spotopt.W002",
            )
        ]
    return []
