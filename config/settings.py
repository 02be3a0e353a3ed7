"""Settings, read from the environment. They fail closed: DEBUG is off unless DJANGO_DEBUG=1, and with
it off the app refuses to start without a real secret key and webhook secret.

Local use (bin/run, the test suite's config/test_settings.py) sets DJANGO_DEBUG=1; then, with nothing else
set, the app runs on SQLite, runs Celery tasks in process and answers leads with the offline responder.
Production sets the variables documented in the README.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.client_ip import trusted_proxies_parse
from config.env import env_bool, env_float, env_int, env_list, env_str, parse_model_prices

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)

_INSECURE_KEY = "django-insecure-local-development-only-key-never-use-in-production"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "" if not DEBUG else _INSECURE_KEY)
if not DEBUG and (
    len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a random value of at least 50 characters when DJANGO_DEBUG is off "
        "(the default; DJANGO_DEBUG=1 for local use)."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "leads",
    "prompts",
    "training",
    "agent",
]

MIDDLEWARE = [
    "config.health.ProbeMiddleware",
    "config.logs.RequestIdMiddleware",
    "config.metrics.WebhookMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "leads.context_processors.navigation",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------------
# PostgreSQL: each process keeps a psycopg pool (connections reused across requests, checked before each
# use so a restarted server never hands out a dead one) of at most DATABASE_POOL_MAX_SIZE connections.
# config/gunicorn.conf.py refuses to start when web + worker processes could open more than the server's
# max_connections (DATABASE_MAX_CONNECTIONS). DATABASE_POOL=0 falls back to persistent connections
# (DATABASE_CONN_MAX_AGE, still health-checked), e.g. behind PgBouncer in transaction mode.
DATABASE_POOL = env_bool("DATABASE_POOL", True)
DATABASE_POOL_MIN_SIZE = env_int("DATABASE_POOL_MIN_SIZE", 1)
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", env_int("GUNICORN_THREADS", 32))
# Seconds a request waits for a free pooled connection before the webhook answers 503.
DATABASE_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", 3.0)
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
    if DATABASE_POOL:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool is the reuse; Django refuses both at once
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": DATABASE_POOL_MIN_SIZE,
            "max_size": max(DATABASE_POOL_MIN_SIZE, DATABASE_POOL_MAX_SIZE),
            "timeout": DATABASE_POOL_TIMEOUT,
            "max_idle": 300.0,
            "reconnect_timeout": 30.0,
        }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Webhooks and page requests write concurrently even in the demo; wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
# Lets several test runs share one PostgreSQL server without clobbering each other's test database.
if env_str("DJANGO_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("DJANGO_TEST_DB_NAME")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "login"

# --- Cache (rate limits, dedupe windows) ----------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST framework ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON with a nesting limit and without NUL or lone surrogates (config.parsers): never a 500 on a body.
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # The one API edge (config/api.py): service errors → 400/403/404/409 naming the field; one pagination.
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 25,
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": (
        ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"]
        if DEBUG
        else ["rest_framework.renderers.JSONRenderer"]
    ),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DM Sales Agent API",
    "DESCRIPTION": "Training examples, prompt versions, insights and the ManyChat webhook.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema describes every endpoint: signed-in staff only (session or token), like the API itself.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The signed events we POST to the team's tools (agent/outcomes).
    "OAS_VERSION": "3.1.0",
    "WEBHOOKS": [
        f"agent.outcomes.openapi.{name}"
        for name in ("lead_qualified", "lead_booked", "lead_won", "lead_handed_off", "lead_waiting")
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.add_error_responses",
    ],
}

# --- Celery ------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", "") or None
# No broker configured: run tasks in process so the app works with nothing else installed.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "agent-retry-incomplete-turns": {
        "task": "agent.retry_incomplete_turns",
        "schedule": env_float("AGENT_RETRY_INTERVAL_SECONDS", 60.0),
    },
    "inbox-idle-hand-back": {"task": "inbox.idle_hand_back", "schedule": 60.0},
    "inbox-alert-waiting": {"task": "inbox.alert_waiting", "schedule": 60.0},
    "rehearsal-resume-stalled": {
        "task": "rehearsal.resume_stalled",
        "schedule": env_float("REHEARSAL_RESUME_INTERVAL_SECONDS", 60.0),
    },
    "prompts-reconcile-figures": {
        "task": "prompts.reconcile_figures",
        "schedule": env_float("PROMPTS_RECONCILE_INTERVAL_SECONDS", 300.0),
    },
}

# --- OpenAI / the agent ------------------------------------------------------------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY", "")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "") or None
# Only the model of NEW prompt versions (each version names its own model). Not gpt-4o-mini: OpenAI shuts it
# down on 2027-01-14 and lists gpt-6-luna as its replacement (see the README, "Governed releases").
OPENAI_MODEL = env_str("OPENAI_MODEL", "gpt-6-luna")
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 20.0)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 2)

AGENT_REPLY_DEADLINE_SECONDS = env_float("AGENT_REPLY_DEADLINE_SECONDS", 8.0)
# The deadline counts from the request's arrival (config/arrival.py: X-Request-Start, else the web worker's
# accept time). A webhook turn with less than this left before it goes the async way at once (answered later
# through sendContent) instead of starting a model call that cannot finish in time.
AGENT_MIN_MODEL_SECONDS = env_float("AGENT_MIN_MODEL_SECONDS", 2.0)
# The running experiment / active version are kept this long in each process (prompts/live.py; a release
# stamp in the shared cache invalidates them at once on every worker). 0 reads them on every turn.
PROMPT_LIVE_CACHE_SECONDS = env_float("PROMPT_LIVE_CACHE_SECONDS", 5.0)
AGENT_ASYNC_MODE = env_bool("AGENT_ASYNC_MODE", False)
AGENT_HOLDING_TEXT = env_str("AGENT_HOLDING_TEXT", "")
AGENT_FALLBACK_TEXT = env_str(
    "AGENT_FALLBACK_TEXT", "Thanks for your message! A member of our team will get back to you shortly."
)
# Sent instead of a reply that states a price, date, link or phone the catalog in force does not hold.
AGENT_GROUNDING_SAFE_TEXT = env_str(
    "AGENT_GROUNDING_SAFE_TEXT",
    "Let me check that with our team so I give you the exact details. Someone will reply here shortly.",
)
AGENT_MAX_HISTORY_MESSAGES = env_int("AGENT_MAX_HISTORY_MESSAGES", 20)
AGENT_MAX_TRAINING_EXAMPLES = env_int("AGENT_MAX_TRAINING_EXAMPLES", 12)
# ManyChat retries only a request it got no answer to within its 10 s timeout: 20 s covers that timeout and
# the retry's trip; a repeat after a reply to the lead is a new message whatever the window (agent/dedupe.py).
AGENT_DEDUPE_WINDOW_SECONDS = env_int("AGENT_DEDUPE_WINDOW_SECONDS", 20)
# Messages from one lead within this many seconds are answered once, as one turn (agent.turn.turn_burst_wait).
# Each webhook waits out the window after its message (inside ManyChat's 10 s); 0 answers each message as it
# comes.
AGENT_BURST_WINDOW_SECONDS = env_float("AGENT_BURST_WINDOW_SECONDS", 3.0)
# Draft mode (co-pilot, agent/inbox/drafts.py): the agent's replies wait as drafts for a person to send, edit
# or discard. The team's default; a lead's own setting (Lead.draft_mode) overrides it.
AGENT_DRAFT_MODE = env_bool("AGENT_DRAFT_MODE", False)
# Shadow mode: while a person handles a lead, the agent still writes what it would have said (a background
# task, one model call per lead message; nothing is sent), shown in the conversation view.
AGENT_SHADOW_MODE = env_bool("AGENT_SHADOW_MODE", True)
AGENT_WEBHOOK_MAX_BODY_BYTES = env_int("AGENT_WEBHOOK_MAX_BODY_BYTES", 64 * 1024)
# A turn that has not completed this long after the message arrived is retried (beat + retry_turns).
AGENT_RETRY_AFTER_SECONDS = env_int("AGENT_RETRY_AFTER_SECONDS", 120)
AGENT_MAX_TURN_ATTEMPTS = env_int("AGENT_MAX_TURN_ATTEMPTS", 3)
# Sends of one stored reply the retry sweep may start (each backs off: agent.selectors._due).
AGENT_MAX_DELIVERY_ATTEMPTS = env_int("AGENT_MAX_DELIVERY_ATTEMPTS", 6)
AGENT_RETRY_MAX_AGE_HOURS = env_int("AGENT_RETRY_MAX_AGE_HOURS", 24)
# Rehearsal (agent/rehearsal): plays per scenario, the release gate's margin below the compared version's
# score, the judge's agreement with the calibration set before its verdicts count, and how long a claimed
# play may go without finishing before the sweep queues it again (its worker died).
REHEARSAL_DEFAULT_REPEATS = env_int("REHEARSAL_DEFAULT_REPEATS", 3)
REHEARSAL_GATE_MARGIN = env_float("REHEARSAL_GATE_MARGIN", 0.05)
REHEARSAL_JUDGE_AGREEMENT = env_float("REHEARSAL_JUDGE_AGREEMENT", 0.8)
REHEARSAL_PLAY_STALE_SECONDS = env_int("REHEARSAL_PLAY_STALE_SECONDS", 300)
# "<count>/<seconds>" (config.ratelimit, in the cache): per subscriber on the webhook, failed logins per
# username and per IP. Empty turns a limit off.
AGENT_WEBHOOK_RATE_LIMIT = env_str("AGENT_WEBHOOK_RATE_LIMIT", "20/60")
LOGIN_RATE_LIMIT = env_str("LOGIN_RATE_LIMIT", "10/300")  # failed logins per account, from anywhere
# Failed logins per client address, across accounts: higher than the account limit, so one colleague's
# typos never lock out the others behind the same address (config.ratelimit.login_rate_limited).
LOGIN_IP_RATE_LIMIT = env_str("LOGIN_IP_RATE_LIMIT", "50/300")
PASSWORD_RESET_RATE_LIMIT = env_str("PASSWORD_RESET_RATE_LIMIT", "5/3600")  # per address and per e-mail
# Four eyes on training: when on, a manager cannot approve an example they submitted themselves (403).
TRAINING_FORBID_SELF_APPROVAL = env_bool("TRAINING_FORBID_SELF_APPROVAL", False)
# The reverse proxies / load balancers in front of the app (addresses or networks, comma-separated). Only
# a request from one of them has its X-Forwarded-For read, right to left, for the client's address
# (config.client_ip); empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = env_list("DJANGO_TRUSTED_PROXIES", [])
trusted_proxies_parse(values=TRUSTED_PROXIES)  # a typo refuses to start instead of trusting no one

# --- The inbox (agent/inbox) ---------------------------------------------------------------------
INBOX_POLL_SECONDS = env_float("INBOX_POLL_SECONDS", 3.0)  # the conversation view and the bell refresh
INBOX_IDLE_HANDBACK_MINUTES = env_int("INBOX_IDLE_HANDBACK_MINUTES", 0)  # 0: no idle hand-back
INBOX_ALERT_EMAIL_MINUTES = env_int("INBOX_ALERT_EMAIL_MINUTES", 0)  # 0: no email about waiting leads
EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "inbox@localhost")
INBOX_BASE_URL = env_str("INBOX_BASE_URL", "http://127.0.0.1:8000")  # links in alert emails

# --- ManyChat ----------------------------------------------------------------------------------------
MANYCHAT_WEBHOOK_SECRET = env_str("MANYCHAT_WEBHOOK_SECRET", "" if not DEBUG else "local-dev-webhook-secret")
MANYCHAT_WEBHOOK_SECRET_PREVIOUS = env_str("MANYCHAT_WEBHOOK_SECRET_PREVIOUS", "")
MANYCHAT_API_TOKEN = env_str("MANYCHAT_API_TOKEN", "")
MANYCHAT_API_BASE_URL = env_str("MANYCHAT_API_BASE_URL", "https://api.manychat.com")
MANYCHAT_API_TIMEOUT_SECONDS = env_float("MANYCHAT_API_TIMEOUT_SECONDS", 10.0)
# Tag and custom field the agent sets in ManyChat (they must exist in the account; empty disables).
MANYCHAT_QUALIFIED_TAG = env_str("MANYCHAT_QUALIFIED_TAG", "qualified")
MANYCHAT_STAGE_FIELD = env_str("MANYCHAT_STAGE_FIELD", "lead_stage")
MANYCHAT_HANDOFF_TAG = env_str("MANYCHAT_HANDOFF_TAG", "needs_human")
# What the agent learned, written into ManyChat custom fields: "<qualification key>:<ManyChat field>,...".
# Only fields that exist in the account are written (agent/manychat_sync.py; `manage.py manychat_check`).
MANYCHAT_FIELD_MAP = dict(
    item.split(":", 1) for item in env_list("MANYCHAT_FIELD_MAP", []) if ":" in item and item.split(":", 1)[1]
)
# A ManyChat flow started when a lead qualifies (its flow_ns, e.g. "content20240101000000_123456");
# empty: none.
MANYCHAT_QUALIFIED_FLOW_NS = env_str("MANYCHAT_QUALIFIED_FLOW_NS", "")
# The ManyChat custom field holding each contact's random token (agent/contact_token.py), e.g.
# "ai_contact_token" once that Text field exists in ManyChat; empty (the default): off.
MANYCHAT_CONTACT_TOKEN_FIELD = env_str("MANYCHAT_CONTACT_TOKEN_FIELD", "")
# ManyChat's limits are 25 requests/s per page (sendContent, sendFlow) and 10/s on subscriber endpoints;
# any one second holds at most burst + rate calls (18 + 2 = 20), leaving room for network jitter, which
# bunches arrivals (with 20 + 2 we counted up to 24 in one second at the fake server; manychat_throttle.py).
MANYCHAT_RATE_PER_SECOND = env_float("MANYCHAT_RATE_PER_SECOND", 18.0)
MANYCHAT_RATE_BURST = env_int("MANYCHAT_RATE_BURST", 2)
MANYCHAT_SUBSCRIBER_RATE_PER_SECOND = env_float("MANYCHAT_SUBSCRIBER_RATE_PER_SECOND", 8.0)
MANYCHAT_SUBSCRIBER_RATE_BURST = env_int("MANYCHAT_SUBSCRIBER_RATE_BURST", 2)
MANYCHAT_THROTTLE_MAX_WAIT_SECONDS = env_float("MANYCHAT_THROTTLE_MAX_WAIT_SECONDS", 30.0)
MANYCHAT_THROTTLE_REDIS_URL = env_str("MANYCHAT_THROTTLE_REDIS_URL", "")  # empty: REDIS_URL, else the broker
MANYCHAT_MAX_ATTEMPTS = env_int("MANYCHAT_MAX_ATTEMPTS", 3)
# Voice notes: transcribed through the OpenAI-compatible /audio/transcriptions endpoint when a model is
# named; otherwise (or when it fails) the agent asks for text ("ask_text") or hands off ("handoff").
OPENAI_TRANSCRIBE_MODEL = env_str("OPENAI_TRANSCRIBE_MODEL", "")
AGENT_VOICE_FALLBACK = env_str("AGENT_VOICE_FALLBACK", "ask_text")
AGENT_VOICE_ASK_TEXT = env_str(
    "AGENT_VOICE_ASK_TEXT", "Sorry, I can't listen to voice messages here. Could you write it instead?"
)
if not DEBUG and not MANYCHAT_WEBHOOK_SECRET:
    raise ImproperlyConfigured("MANYCHAT_WEBHOOK_SECRET must be set when DJANGO_DEBUG is off.")

# --- Security (production) ----------------------------------------------------------------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # Preload lists are very hard to leave: only on request. Off is a decision, so `check --deploy` does
    # not warn about it (security.W021).
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts, styles, fonts and XHR from our own origin only; no inline
# script or style anywhere (templates use static files; json_script data blocks are not executed).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Operations: logs, errors, metrics, health, retention -------------------------------------------------
# One JSON line per event (config/logs.py) in production; plain lines while DEBUG is on, unless LOG_FORMAT.
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
LOG_LEVEL = env_str("LOG_LEVEL", env_str("DJANGO_LOG_LEVEL", "INFO"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.logs.ContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "config.logs.JsonLineFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# Error reporting through Sentry's SDK only when a DSN is set; no message text is sent (send_default_pii off).
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:  # pragma: no cover - needs a Sentry server
    import sentry_sdk

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
        send_default_pii=False,
    )
# /metrics needs "Authorization: Bearer <METRICS_TOKEN>"; with no token it is open only while DEBUG is on.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
# Prometheus scrapes over plain HTTP inside the network (the probes are answered before the redirect).
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# USD per million tokens, "model=input/output,model=input/output"; unpriced models count tokens, not cost.
AGENT_MODEL_PRICES = parse_model_prices(
    env_str(
        "AGENT_MODEL_PRICES",
        "gpt-4o-mini=0.15/0.60,gpt-4.1-mini=0.40/1.60,gpt-5-mini=0.25/2.00,gpt-6-luna=0.10/0.50",
    )
)
# --- Cost, budgets and caps (agent/budget.py, agent/spend) -------------------------------------------------
# Daily caps, per purpose, in tokens and in USD (from AGENT_MODEL_PRICES); 0 means no cap. The day is the
# team's (TIME_ZONE). The agent's caps are checked before every model call; a turn over a cap is handed to a
# person with the reason. Evaluation, rehearsal and scoring runs are refused (409) when their cap is reached.
AGENT_DAILY_TOKEN_CAP = env_int("AGENT_DAILY_TOKEN_CAP", 20_000_000)
AGENT_DAILY_USD_CAP = env_float("AGENT_DAILY_USD_CAP", 50.0)
AGENT_LEAD_DAILY_TOKEN_CAP = env_int("AGENT_LEAD_DAILY_TOKEN_CAP", 400_000)
AGENT_LEAD_DAILY_USD_CAP = env_float("AGENT_LEAD_DAILY_USD_CAP", 1.0)
EVALUATION_DAILY_TOKEN_CAP = env_int("EVALUATION_DAILY_TOKEN_CAP", 5_000_000)
EVALUATION_DAILY_USD_CAP = env_float("EVALUATION_DAILY_USD_CAP", 10.0)
REHEARSAL_DAILY_TOKEN_CAP = env_int("REHEARSAL_DAILY_TOKEN_CAP", 5_000_000)
REHEARSAL_DAILY_USD_CAP = env_float("REHEARSAL_DAILY_USD_CAP", 10.0)
SCORING_DAILY_TOKEN_CAP = env_int("SCORING_DAILY_TOKEN_CAP", 3_000_000)
SCORING_DAILY_USD_CAP = env_float("SCORING_DAILY_USD_CAP", 5.0)
# What a turn reserves against the caps before its model call (settled to the real usage afterwards).
AGENT_TURN_ESTIMATE_TOKENS = env_int("AGENT_TURN_ESTIMATE_TOKENS", 6000)
# What the lead is told when a cap hands the turn to a person.
AGENT_BUDGET_HANDOFF_TEXT = env_str(
    "AGENT_BUDGET_HANDOFF_TEXT",
    "Thanks for your message! A member of our team will reply to you here shortly.",
)
# The month's budget in USD (every purpose together); managers are told at 80 % and 100 %, once each per
# month, and SPEND_ALERT_EMAILS (comma-separated) get an email too. 0 turns the alert off.
SPEND_MONTHLY_BUDGET_USD = env_float("SPEND_MONTHLY_BUDGET_USD", 500.0)
SPEND_ALERT_EMAILS = env_list("SPEND_ALERT_EMAILS", [])
CELERY_BEAT_SCHEDULE["spend-budget-alert"] = {
    "task": "spend.budget_alert",
    "schedule": env_float("SPEND_ALERT_INTERVAL_SECONDS", 600.0),
}
# /readyz: the broker probe timeout, the oldest Celery heartbeat accepted, and whether a stale one fails it.
READYZ_BROKER_TIMEOUT_SECONDS = env_float("READYZ_BROKER_TIMEOUT_SECONDS", 1.0)
OPS_HEARTBEAT_INTERVAL_SECONDS = env_float("OPS_HEARTBEAT_INTERVAL_SECONDS", 30.0)
OPS_HEARTBEAT_MAX_AGE_SECONDS = env_float("OPS_HEARTBEAT_MAX_AGE_SECONDS", 180.0)
READYZ_REQUIRE_WORKER = env_bool("READYZ_REQUIRE_WORKER", False)
# A queue of its own for the model-bound turn task, so turns never wait behind crediting, evaluations and
# rehearsals: set AGENT_TURN_QUEUE=turns and run one worker with `-Q turns` and another with `-Q celery`.
AGENT_TURN_QUEUE = env_str("AGENT_TURN_QUEUE", "")
if AGENT_TURN_QUEUE:
    CELERY_TASK_ROUTES = {"agent.complete_turn": {"queue": AGENT_TURN_QUEUE}}
# --- Sales outcomes (agent/outcomes) ---------------------------------------------------------------------
# The team's booking link, offered when a lead qualifies; it carries the subscriber so the booking matches.
AGENT_BOOKING_URL = env_str("AGENT_BOOKING_URL", "")
AGENT_BOOKING_TEXT = env_str("AGENT_BOOKING_TEXT", "Pick a time for a call here: {link}")
CALCOM_WEBHOOK_SECRET = env_str("CALCOM_WEBHOOK_SECRET", "")
CALENDLY_WEBHOOK_SIGNING_KEY = env_str("CALENDLY_WEBHOOK_SIGNING_KEY", "")
BOOKING_SIGNATURE_TOLERANCE_SECONDS = env_int("BOOKING_SIGNATURE_TOLERANCE_SECONDS", 180)
OUTBOUND_WEBHOOK_TIMEOUT_SECONDS = env_float("OUTBOUND_WEBHOOK_TIMEOUT_SECONDS", 10.0)
OUTBOUND_WEBHOOK_MAX_ATTEMPTS = env_int("OUTBOUND_WEBHOOK_MAX_ATTEMPTS", 12)
OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS = env_float("OUTBOUND_WEBHOOK_DISABLE_AFTER_HOURS", 24.0)
CELERY_BEAT_SCHEDULE["outcomes-dispatch-webhooks"] = {
    "task": "outcomes.dispatch_webhooks",
    "schedule": env_float("OUTBOUND_WEBHOOK_DISPATCH_SECONDS", 15.0),
}
CELERY_BEAT_SCHEDULE["ops-heartbeat"] = {"task": "ops.heartbeat", "schedule": OPS_HEARTBEAT_INTERVAL_SECONDS}
# Retention: message texts and activity details older than this many days are anonymised by a daily beat task
# (rows, counts and per-version figures stay). Empty or 0 keeps everything.
DATA_RETENTION_DAYS = env_int("DATA_RETENTION_DAYS", 0)
CELERY_BEAT_SCHEDULE["privacy-apply-retention"] = {
    "task": "privacy.apply_retention",
    "schedule": env_float("DATA_RETENTION_INTERVAL_SECONDS", 24 * 3600.0),
}
# Retrieval of approved examples (training.retrieval): with an embeddings model set, examples are ranked by
# embedding similarity on the same OpenAI-compatible server (vectors computed once per example by the
# `training.embed_examples` task); otherwise PostgreSQL full-text ranking, or a word-stem scan on SQLite.
OPENAI_EMBEDDINGS_MODEL = env_str("OPENAI_EMBEDDINGS_MODEL", "")
TRAINING_RETRIEVAL_SCAN_LIMIT = env_int("TRAINING_RETRIEVAL_SCAN_LIMIT", 5000)
CELERY_BEAT_SCHEDULE["training-embed-missing"] = {"task": "training.embed_missing", "schedule": 300.0}
# Selling tactics from outcomes (agent/suggestions/tactics.py): leads who booked or bought beside leads who
# did not (lost, or silent this many days), only with enough of each side; the model input is estimated in
# tokens (4 characters each) and refused above the cap before any call.
TACTICS_MIN_PER_SIDE = env_int("TACTICS_MIN_PER_SIDE", 20)
TACTICS_MAX_LEADS_PER_SIDE = env_int("TACTICS_MAX_LEADS_PER_SIDE", 30)
TACTICS_MESSAGES_PER_CONVERSATION = env_int("TACTICS_MESSAGES_PER_CONVERSATION", 12)
TACTICS_STALLED_DAYS = env_int("TACTICS_STALLED_DAYS", 14)
TACTICS_MAX_INPUT_TOKENS = env_int("TACTICS_MAX_INPUT_TOKENS", 40000)

# --- Governed releases (prompts/releases) ------------------------------------------------------------
# Model settings a new version starts with. gpt-6-luna reasons by default: no temperature, low effort so a
# reply fits the webhook's window.
RELEASE_DEFAULT_TEMPERATURE = env_float("RELEASE_DEFAULT_TEMPERATURE", -1.0)  # negative: leave it unset
RELEASE_DEFAULT_REASONING_EFFORT = env_str("RELEASE_DEFAULT_REASONING_EFFORT", "low")
RELEASE_DEFAULT_MAX_OUTPUT_TOKENS = env_int("RELEASE_DEFAULT_MAX_OUTPUT_TOKENS", 1000)
# The author of a proposal may not approve it.
RELEASE_TWO_PERSON_RULE = env_bool("RELEASE_TWO_PERSON_RULE", True)
# Refuse approval (409) while the rehearsal says the version is worse than the active one.
RELEASE_REHEARSAL_GATE = env_bool("RELEASE_REHEARSAL_GATE", False)
# The hook that answers "is the rehearsal worse?": a function (*, draft, against) -> GateResult-like object.
RELEASE_REHEARSAL_GATE_FUNCTION = env_str(
    "RELEASE_REHEARSAL_GATE_FUNCTION", "agent.rehearsal.selectors.rehearsal_gate"
)
# The regression watch: how long after a release it watches, the previous version's trailing window, and
# whether a significant drop of the qualification rate by at least this many points rolls back by itself.
RELEASE_WATCH_DAYS = env_int("RELEASE_WATCH_DAYS", 7)
RELEASE_WATCH_BASELINE_DAYS = env_int("RELEASE_WATCH_BASELINE_DAYS", 14)
RELEASE_AUTO_ROLLBACK = env_bool("RELEASE_AUTO_ROLLBACK", False)
RELEASE_AUTO_ROLLBACK_DROP_POINTS = env_float("RELEASE_AUTO_ROLLBACK_DROP_POINTS", 15.0)
# The model retirement watch warns this many days before a shutdown.
RELEASE_RETIREMENT_NOTICE_DAYS = env_int("RELEASE_RETIREMENT_NOTICE_DAYS", 60)
CELERY_BEAT_SCHEDULE["releases-check-experiments"] = {
    "task": "releases.check_experiments",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["releases-regression-watch"] = {"task": "releases.regression_watch", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["releases-retirement-watch"] = {
    "task": "releases.retirement_watch",
    "schedule": 24 * 3600.0,
}

# --- Follow-ups (agent/followups) -------------------------------------------------------------------------
# Hours after the agent's last unanswered message at which it follows up (one step each; empty: never). Only
# inside the channel's 24-hour window (minus the margin), never in the lead's quiet hours ("HH-HH" in the
# lead's timezone from ManyChat, else FOLLOWUP_TEAM_TIMEZONE), never once the lead replied, was handed off,
# paused, taken over or opted out, nor past a lead's daily agent-message cap or the team's daily follow-ups.
FOLLOWUP_DELAYS_HOURS = env_list("FOLLOWUP_DELAYS_HOURS", ["4", "20"])
FOLLOWUP_QUIET_HOURS = env_str("FOLLOWUP_QUIET_HOURS", "21-9")
FOLLOWUP_TEAM_TIMEZONE = env_str("FOLLOWUP_TEAM_TIMEZONE", "") or TIME_ZONE
FOLLOWUP_WINDOW_MARGIN_MINUTES = env_int("FOLLOWUP_WINDOW_MARGIN_MINUTES", 30)
FOLLOWUP_LEAD_DAILY_MESSAGE_CAP = env_int("FOLLOWUP_LEAD_DAILY_MESSAGE_CAP", 30)
FOLLOWUP_DAILY_CAP = env_int("FOLLOWUP_DAILY_CAP", 1000)
FOLLOWUP_BATCH = env_int("FOLLOWUP_BATCH", 200)
# A lead message that is one of these (in the team's languages) stops every follow-up to that lead for good.
FOLLOWUP_OPT_OUT_WORDS = env_list(
    "FOLLOWUP_OPT_OUT_WORDS",
    [
        "stop",
        "unsubscribe",
        "stopp",
        "basta",
        "para",
        "pare",
        "arrête",
        "arrêtez",
        "désabonner",
        "abmelden",
        "baja",
        "darse de baja",
        "cancelar",
        "no more",
        "stop messaging",
    ],
)
# What the active version is given in place of a lead message: this is our instruction, not the lead's words.
FOLLOWUP_INSTRUCTION = env_str(
    "FOLLOWUP_INSTRUCTION",
    "[Not from the lead: the lead has not answered your last message. Write one short, friendly follow-up "
    "in the lead's language that picks up where the conversation stopped. No new prices, dates or links. "
    "Do not qualify the lead or hand off in this message.]",
)
CELERY_BEAT_SCHEDULE["followups-send-due"] = {
    "task": "followups.send_due",
    "schedule": env_float("FOLLOWUP_SWEEP_SECONDS", 300.0),
}
# --- Every conversation scored (agent/scoring) -----------------------------------------------------------
# A conversation idle this many hours is scored against SCORING_RUBRIC (the rehearsal's check format: a
# JSON list of {"kind", "params", "name"}; empty: the rehearsal's shared checks, else the default rubric in
# agent/scoring/services.py). SCORING_SAMPLE_RATE of idle conversations are scored; failing ones and
# SCORING_REVIEW_PASSING_RATE of passing ones (picked by a hash of the conversation id: reproducible) go to
# the review queue. The judge's tokens count apart from the agent's, against SCORING_DAILY_TOKEN_CAP.
SCORING_IDLE_HOURS = env_float("SCORING_IDLE_HOURS", 12.0)
SCORING_LOOKBACK_DAYS = env_int("SCORING_LOOKBACK_DAYS", 7)
SCORING_SAMPLE_RATE = env_float("SCORING_SAMPLE_RATE", 1.0)
SCORING_REVIEW_PASSING_RATE = env_float("SCORING_REVIEW_PASSING_RATE", 0.05)
SCORING_RUBRIC = env_str("SCORING_RUBRIC", "")
SCORING_BATCH = env_int("SCORING_BATCH", 100)
CELERY_BEAT_SCHEDULE["scoring-score-idle"] = {
    "task": "scoring.score_idle",
    "schedule": env_float("SCORING_SWEEP_SECONDS", 900.0),
}
