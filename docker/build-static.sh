#!/bin/sh
# The image's static files, collected with the production settings: the production storage serves hashed, compressed
# files and needs the manifest (staticfiles.json) that only this storage writes. Collecting with the development
# settings leaves no manifest, and then every page that links a static file fails.
# The secrets production insists on are throwaway values that live only for this command; none is kept in the image.
# STATIC_ROOT may point elsewhere (CI collects into a temporary directory).
set -eu
token() { python -c "import secrets; print(secrets.token_urlsafe(50))"; }
ENVIRONMENT=production \
SECRET_KEY="$(token)" \
JWT_SECRET_KEY="$(token)" \
AUDIT_SIGNING_KEY="$(token)" \
FIELD_ENCRYPTION_KEY="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
DATABASE_URL="" REDIS_URL="" \
    python manage.py collectstatic --noinput
test -s "${STATIC_ROOT:-staticfiles}/staticfiles.json"
