"""Spot Optimizer settings, read from the environment (see .env.example).

``ENVIRONMENT=development`` (the default) runs with safe local defaults: SQLite under ``var/``, an in-process cache
and a file-system Celery broker. ``ENVIRONMENT=production`` refuses to start without its secrets.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_int, env_list, env_rate, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

ENVIRONMENT = env_str("ENVIRONMENT", "development")
if ENVIRONMENT not in ("development", "production"):
    raise ImproperlyConfigured(f"ENVIRONMENT must be development or production, got {ENVIRONMENT!r}")
PRODUCTION = ENVIRONMENT == "production"

_DEV_SECRET = "dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"
_DEV_JWT_SECRET = _DEV_SECRET + "-jwt"
MIN_SECRET_LENGTH = 32
SECRET_KEY = env_str("SECRET_KEY")
JWT_SECRET_KEY = env_str("JWT_SECRET_KEY")
if PRODUCTION:
    for _name, _value in (("SECRET_KEY", SECRET_KEY), ("JWT_SECRET_KEY", JWT_SECRET_KEY)):
        if not _value:
            raise ImproperlyConfigured(f"production needs {_name} set in the environment")
        if _value in (_DEV_SECRET, _DEV_JWT_SECRET):
            raise ImproperlyConfigured(f"{_name} is the development default; production needs its own secret")
        if len(_value) < MIN_SECRET_LENGTH:
            raise ImproperlyConfigured(f"{_name} must be at least {MIN_SECRET_LENGTH} characters in production")
    if SECRET_KEY == JWT_SECRET_KEY:
        raise ImproperlyConfigured("SECRET_KEY and JWT_SECRET_KEY must differ")
SECRET_KEY = SECRET_KEY or _DEV_SECRET
JWT_SECRET_KEY = JWT_SECRET_KEY or _DEV_JWT_SECRET

DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", [] if PRODUCTION else ["*"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# A refused CSRF check under /api/ answers in the API's error shape (JSON), as every other API error does.
CSRF_FAILURE_VIEW = "spotopt.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "spotopt.apps.SpotoptConfig",
    "accounts",
    "audit",
    "pricing",
    "clusters",
    "templates_app",
    "hibernation",
    "agentapi",
    "savings",
    "optimization",
    "interruptions",
    "lab",
]

MIDDLEWARE = [
    "spotopt.metrics.MetricsMiddleware",
    "spotopt.middleware.RequestIdMiddleware",
    "spotopt.middleware.ProxyHeadersMiddleware",
    "spotopt.middleware.SecurityHeadersMiddleware",
    "spotopt.api.request_size.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "spotopt.urls"
WSGI_APPLICATION = "spotopt.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "spotopt.context_processors.console",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'spotopt.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a concurrent writer (web + worker + beat share the file) instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, throttling state, Celery broker --------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Fails open: a Redis outage makes reads miss, never requests fail (spotopt/cache.py).
            "BACKEND": "spotopt.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "spotopt"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded default: a broker in plain files so web, worker and beat need nothing but Python.
    _broker_dir = VAR_DIR / "broker"
    for sub in ("in", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "in"),
        "data_folder_out": str(_broker_dir / "in"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep the LOGGING below (JSON lines) in workers too, instead of Celery's own plain-text root handler: the audit
# checkpoints a worker logs must be JSON lines that verify_audit --checkpoints can read back.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Tasks that plan a cluster (minutes of CPU for a big one) go to their own queue where a deployment runs a worker
# for it (docker-compose.yml's `planner`), so that they never hold the slots the beat's ticks and job follow-ups
# need. The default, "celery", is the one queue every worker reads.
CELERY_PLANNING_QUEUE = env_str("CELERY_PLANNING_QUEUE", "celery")
CELERY_TASK_ROUTES = {
    name: {"queue": CELERY_PLANNING_QUEUE}
    for name in (
        "optimization.tasks.evaluate_cluster",
        "optimization.tasks.restore_fallback",
        "optimization.tasks.refresh_recommendation",
        "optimization.tasks.plan_after_wake",
    )
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
# The whole beat schedule lives here, in one place; each entry expires before its next run.
CELERY_BEAT_SCHEDULE: dict = {
    "discover-clusters": {
        "task": "clusters.tasks.discover_all_accounts",
        "schedule": timedelta(hours=1),
        "options": {"expires": 50 * 60},
    },
    "sync-inventory": {
        "task": "clusters.tasks.sync_all_inventories",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 4 * 60},
    },
    "sync-spot-prices": {
        "task": "pricing.tasks.sync_all_spot_prices",
        "schedule": timedelta(minutes=10),
        "options": {"expires": 9 * 60},
    },
    "hibernation-tick": {
        "task": "hibernation.tasks.tick",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    "purge-token-revocations": {
        "task": "accounts.tasks.purge_expired_token_revocations",
        "schedule": timedelta(hours=6),
        "options": {"expires": 5 * 3600},
    },
    "refresh-region-catalogs": {
        "task": "pricing.tasks.refresh_all_region_catalogs",
        "schedule": timedelta(days=1),
        "options": {"expires": 23 * 3600},
    },
    "audit-checkpoint": {
        "task": "audit.tasks.write_checkpoints",
        "schedule": timedelta(hours=1),
        "options": {"expires": 50 * 60},
    },
    "expire-agent-actions": {
        "task": "agentapi.tasks.expire_dead_actions",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    "optimization-tick": {
        "task": "optimization.tasks.tick",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    "interruptions-rebalance-uncordon": {
        "task": "interruptions.tasks.rebalance_uncordon",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    "interruptions-scheduled-replacements": {
        "task": "interruptions.tasks.scheduled_replacements",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 50},
    },
    "record-costs": {
        "task": "savings.tasks.record_costs",
        "schedule": timedelta(hours=1),
        "options": {"expires": 50 * 60},
    },
}

# --- Auth ------------------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The one credential check for the API, the console and Django admin: limits, default-password refusal, audit.
AUTHENTICATION_BACKENDS = ["accounts.backends.AccountsBackend"]
BCRYPT_ROUNDS = env_int("BCRYPT_ROUNDS", 12)
PASSWORD_HASHERS = [
    "spotopt.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.password_validation.NotOnlyWhitespaceValidator"},
    {"NAME": "accounts.password_validation.NotFromEmailValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:dashboard"
LOGOUT_REDIRECT_URL = "accounts:login"
DEFAULT_ADMIN_EMAIL = "admin@spotoptimizer.com"
DEFAULT_ADMIN_PASSWORD = "admin123"

# Requests per user (anonymous: per client address), counted in the cache; fails open when the cache is down.
API_RATE_LIMIT = env_rate("API_RATE_LIMIT", "100/min")
# Failed password checks per account and per (account, client address), counted in the database.
LOGIN_RATE_LIMIT = env_rate("LOGIN_RATE_LIMIT", "5/min")
# Failed password checks per client address over all accounts: high, so that one attacker behind a shared NAT or
# proxy does not lock out everyone else behind it.
LOGIN_ADDRESS_RATE_LIMIT = env_rate("LOGIN_ADDRESS_RATE_LIMIT", "50/min")

# Proxies (addresses or CIDR networks) whose X-Forwarded-For and X-Forwarded-Proto are believed. Empty: none, the
# peer address is the client. The image passes the same list to gunicorn's --forwarded-allow-ips.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
try:
    TRUSTED_PROXY_NETWORKS = [ipaddress.ip_network(p, strict=False) for p in TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES must be addresses or CIDR networks: {exc}") from exc

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("ACCESS_TOKEN_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("REFRESH_TOKEN_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # Access tokens carry a claim derived from the password hash, so a password change invalidates them at once.
    "CHECK_REVOKE_TOKEN": True,
    "REVOKE_TOKEN_CLAIM": "hash_password",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "spotopt.api.pagination.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["spotopt.api.throttling.ApiRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": API_RATE_LIMIT},
    "EXCEPTION_HANDLER": "spotopt.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "spotopt.api.schema.ErrorDocumentingAutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["spotopt.api.parsers.SafeJSONParser"],
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Spot Optimizer API",
    "DESCRIPTION": "Control plane for running Kubernetes on AWS Spot capacity.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No online validator badge (an image from validator.swagger.io): the docs load nothing from another host.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # ReDoc's page is templates/drf_spectacular/redoc.html, without its web fonts.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; name each choice set so that the schema (and check --deploy) stays clean.
    "ENUM_NAME_OVERRIDES": {
        "CloudAccountStatusEnum": "accounts.models.CloudAccount.Status",
        "ActionResultStatusEnum": ["succeeded", "failed"],
        "OptimizationJobStateEnum": "optimization.models.OptimizationJob.State",
        "JobStepStateEnum": "optimization.models.JobStep.State",
        "JobStepKindEnum": "optimization.models.JobStep.Kind",
        "ClusterKindEnum": "clusters.models.Cluster.Kind",
        "ClusterSourceEnum": "clusters.models.Cluster.Source",
        "InterruptionSourceEnum": "interruptions.models.Interruption.Source",
    },
}

CORS_ALLOWED_ORIGINS = env_list("CORS_ORIGINS", [])
CORS_URLS_REGEX = r"^/(api|health)/.*$"

# --- i18n, static ----------------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
# Where collectstatic writes (and whitenoise serves from in production); the image builds it at /app/staticfiles.
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Largest request body on any endpoint (API and console); bigger is a 413 (spotopt.api.request_size).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024)

# --- Security (production) -------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
# Messages live in the server-side session, never in a cookie: a new API key is shown once through a message.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# X-Forwarded-Proto is believed only when proxies are trusted, and only from them (ProxyHeadersMiddleware).
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if PRODUCTION:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# /health is probed over plain HTTP by load balancers and container health checks.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/detailed$"]

# --- AWS and the agent -----------------------------------------------------------------------------------------------
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
# AWS_REGION is read too (an alias, as the AWS SDKs read it); AWS_DEFAULT_REGION wins when both are set.
AWS_DEFAULT_REGION = env_str("AWS_DEFAULT_REGION") or env_str("AWS_REGION") or "us-east-1"
# botocore retry mode for every client ("standard" or "adaptive"); ``cloud`` adds its own throttling backoff on top.
AWS_RETRY_MODE = env_str("AWS_RETRY_MODE", "standard")
# The principal that customers' roles trust (the platform's own AWS identity). The default is moto's account.
PLATFORM_AWS_PRINCIPAL = env_str("PLATFORM_AWS_PRINCIPAL", "arn:aws:iam::123456789012:root")
# Fernet key (urlsafe base64, 32 bytes) that encrypts stored access keys; development derives one from SECRET_KEY.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")
if PRODUCTION and not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured("production needs FIELD_ENCRYPTION_KEY set in the environment")
if FIELD_ENCRYPTION_KEY:
    for _key in filter(None, (k.strip() for k in FIELD_ENCRYPTION_KEY.split(","))):
        try:
            Fernet(_key.encode())
        except ValueError as exc:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEY must be Fernet keys (urlsafe base64 of 32 bytes), comma-separated"
            ) from exc
AGENT_LEASE_SECONDS = env_int("AGENT_LEASE_SECONDS", 300)
# How often agents poll (returned to them as next_poll_seconds); an agent silent for 3x this is stale.
AGENT_POLL_SECONDS = env_int("AGENT_POLL_SECONDS", 30)
# Agents get their own, higher request rate, counted per API key.
AGENT_RATE_LIMIT = env_rate("AGENT_RATE_LIMIT", "600/min")
# Largest agent request body (a 5,000-pod snapshot is about 1.5 MiB); bigger is a 413.
AGENT_MAX_BODY_BYTES = env_int("AGENT_MAX_BODY_BYTES", 8 * 1024 * 1024)
AGENT_ACTION_DEADLINE_SECONDS = env_int("AGENT_ACTION_DEADLINE_SECONDS", 3600)
# Hibernation: a drain is given this long before the sleep proceeds despite PodDisruptionBudgets; a step waits this
# long for the agent; waking restores workloads this long after the wake time even if nodes are missing.
# --- Savings ---------------------------------------------------------------------------------------------------------
# Hourly cost rows are kept this long; daily and monthly roll-ups for good.
SAVINGS_HOURLY_RETENTION_DAYS = env_int("SAVINGS_HOURLY_RETENTION_DAYS", 90)
# /metrics (Prometheus): open in development; in production only with "Authorization: Bearer <METRICS_TOKEN>".
METRICS_TOKEN = env_str("METRICS_TOKEN")

HIBERNATION_DRAIN_TIMEOUT_SECONDS = env_int("HIBERNATION_DRAIN_TIMEOUT_SECONDS", 600)
HIBERNATION_ACTION_TIMEOUT_SECONDS = env_int("HIBERNATION_ACTION_TIMEOUT_SECONDS", 900)
HIBERNATION_READY_TIMEOUT_SECONDS = env_int("HIBERNATION_READY_TIMEOUT_SECONDS", 1800)
AGENT_IMAGE = env_str("AGENT_IMAGE", "ghcr.io/spot-optimizer/agent:0.1.0")
# The URL agents reach the platform at, for the install manifest; defaults to the URL the console is served from.
AGENT_PLATFORM_URL = env_str("AGENT_PLATFORM_URL")
# Optimization jobs: one drain attempt lasts at most this long; a drain blocked by a PDB is retried until the policy's
# drain timeout.
OPTIMIZATION_DRAIN_ATTEMPT_SECONDS = env_int("OPTIMIZATION_DRAIN_ATTEMPT_SECONDS", 120)
# Job notifications: webhooks are never posted to link-local (cloud metadata) addresses; private and loopback ones only
# when this is on (development, a chat server inside the network).
OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE = env_bool("OPTIMIZATION_WEBHOOK_ALLOW_PRIVATE", DEBUG)

# Interruptions: the SQS queue EventBridge fills in each enabled region of each linked account, how long a receive
# waits for messages (long polling, at most 20 s), how many queues are polled at once, and how many node-hours the
# Spot Advisor's figure counts for when blended with what was observed.
INTERRUPTION_QUEUE_NAME = env_str("INTERRUPTION_QUEUE_NAME", "spotopt-interruptions")
INTERRUPTION_WAIT_SECONDS = env_int("INTERRUPTION_WAIT_SECONDS", 20)
INTERRUPTION_POLL_THREADS = env_int("INTERRUPTION_POLL_THREADS", 8)
INTERRUPTION_PRIOR_NODE_HOURS = env_int("INTERRUPTION_PRIOR_NODE_HOURS", 2190)
# A scheduled retirement or maintenance gets its replacement this long before its date (at once when nearer).
INTERRUPTION_SCHEDULED_LEAD_MINUTES = env_int("INTERRUPTION_SCHEDULED_LEAD_MINUTES", 60)

# --- Audit checkpoints -----------------------------------------------------------------------------------------------
# Signs the audit chain checkpoints (HMAC-SHA256). Kept outside the database, like the other secrets: whoever can
# rewrite the audit tables must not also hold this key. Production refuses to start without a strong one.
_DEV_AUDIT_SIGNING_KEY = _DEV_SECRET + "-audit"
AUDIT_SIGNING_KEY = env_str("AUDIT_SIGNING_KEY")
if PRODUCTION and (len(AUDIT_SIGNING_KEY) < 32 or AUDIT_SIGNING_KEY == _DEV_AUDIT_SIGNING_KEY):
    raise ImproperlyConfigured("production needs AUDIT_SIGNING_KEY set in the environment (at least 32 characters)")
AUDIT_SIGNING_KEY = AUDIT_SIGNING_KEY or _DEV_AUDIT_SIGNING_KEY

# --- Health ----------------------------------------------------------------------------------------------------------
# /health/detailed shows each dependency's details (latency, backend, sanitized error) to a super admin or to a request
# carrying this token (``Authorization: Bearer <token>`` or ``X-Health-Token``); everyone else in production sees only
# each dependency's status. Empty: no token grants details.
HEALTH_TOKEN = env_str("HEALTH_TOKEN")
HEALTH_DETAILS_PUBLIC = env_bool("HEALTH_DETAILS_PUBLIC", not PRODUCTION)

# --- Logging: JSON lines with the request id ----------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "spotopt.logging.RequestIdFilter"},
        "redact": {"()": "spotopt.logging.RedactSecretsFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
