import os

from django.core.wsgi import get_wsgi_application

from spotopt.checks import warn_default_admin_password_at_start

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spotopt.settings")
application = get_wsgi_application()
warn_default_admin_password_at_start()
