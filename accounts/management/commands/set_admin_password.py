import getpass
import os

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.actions import AuthAction
from accounts.models import User
from accounts.services import set_password


class Command(BaseCommand):
    help = "Set the password of a super admin (the default one unless --email is given). Revokes its tokens."

    def add_arguments(self, parser):
        parser.add_argument("--email", default=settings.DEFAULT_ADMIN_EMAIL)
        parser.add_argument(
            "--password-env", default="", help="read the password from this environment variable instead of a prompt"
        )

    def handle(self, *args, email: str, password_env: str, **options):
        user = User.objects.filter(email__iexact=email, role=User.Role.SUPER_ADMIN).first()
        if user is None:
            raise CommandError(f"no super admin with email {email}")
        if password_env:
            password = os.environ.get(password_env, "")
        else:
            password = getpass.getpass("New password: ")
            if password != getpass.getpass("Again: "):
                raise CommandError("the passwords differ")
        if password == settings.DEFAULT_ADMIN_PASSWORD:
            raise CommandError("choose a password other than the default one")
        try:
            password_validation.validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        set_password(user=user, password=password, action=AuthAction.ADMIN_PASSWORD_SET, actor="manage.py")
        self.stdout.write(self.style.SUCCESS(f"Password set for {user.email}."))
