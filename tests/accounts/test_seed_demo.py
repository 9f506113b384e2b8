import io

import pytest
from django.core.management import call_command

from accounts.models import User
from templates_app.models import NodeTemplate
from tests.templates_app.conftest import snapshot_catalog  # noqa: F401 - the bundled real catalog

pytestmark = pytest.mark.django_db


def test_seed_demo_is_idempotent_and_gives_a_default_template(snapshot_catalog):  # noqa: F811
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    user = User.objects.get(email="demo@spotoptimizer.com")
    assert user.check_password("demo-password-1")
    templates = NodeTemplate.objects.filter(organization=user.organization)
    assert [(t.name, t.is_default) for t in templates] == [("general-purpose", True)]
